"""The connection runner's pacing and lifetime rules: backoff with jitter, the circuit breaker, scheduled reconnects."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from ingestors.binance.live import BinanceLive
from ingestors.binance.replay import ReplayServer
from ingestors.live.adapter import LiveEvent
from ingestors.live.backoff import Backoff, BreakerState, CircuitBreaker
from ingestors.live.connection import LiveConnection
from marketlake.kafka_broker import free_port


def test_backoff_delays_are_jittered_below_a_doubling_ceiling_and_reset() -> None:
    backoff = Backoff(base_s=0.5, cap_s=8.0, rng=random.Random(7))
    ceilings, delays = [], []
    for _ in range(8):
        ceilings.append(backoff.ceiling())
        delays.append(backoff.next_delay())
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    backoff.reset()
    assert backoff.ceiling() == 0.5
    with pytest.raises(ValueError, match="base"):
        Backoff(base_s=2, cap_s=1)


def test_breaker_opens_after_repeated_failures_then_probes_once_and_closes_on_success() -> None:
    now = [100.0]
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=60, clock=lambda: now[0])
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.wait_s() == 0
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and breaker.wait_s() == 60 and breaker.times_opened == 1
    now[0] += 60
    assert breaker.state is BreakerState.HALF_OPEN and breaker.wait_s() == 0
    breaker.record_failure()  # the probe failed: open again for a full cool-down
    assert breaker.state is BreakerState.OPEN and breaker.wait_s() == 60 and breaker.times_opened == 2
    now[0] += 60
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0


def test_unreachable_exchange_opens_the_breaker_without_affecting_another_feed(data_dir: Path) -> None:
    """One exchange down (nothing listens on its port) while another streams: each runner is on its own."""
    dead_port = free_port()
    with ReplayServer(data_dir, deterministic=True).running(port=free_port()) as base:
        good = BinanceLive(["BINANCE:BTC/USDT"], base.replace("http://", "ws://") + "/ws", base)
        bad = BinanceLive(["BINANCE:BTC/USDT"], f"ws://127.0.0.1:{dead_port}/ws", f"http://127.0.0.1:{dead_port}")

        async def main() -> tuple[LiveConnection, LiveConnection, int]:
            got: list[LiveEvent] = []

            async def keep(events: list[LiveEvent]) -> None:
                got.extend(events)

            async def drop(events: list[LiveEvent]) -> None:
                raise AssertionError("the dead exchange produced events")

            ok = LiveConnection(good, keep)
            down = LiveConnection(bad, drop, backoff=Backoff(base_s=0.01, cap_s=0.02),
                                  breaker=CircuitBreaker(failure_threshold=3, cooldown_s=3600))  # fmt: skip
            tasks = [asyncio.create_task(ok.run()), asyncio.create_task(down.run())]
            async with asyncio.timeout(60):
                while len(got) < 5000 or down.breaker.state is not BreakerState.OPEN:
                    await asyncio.sleep(0.05)  # polling the two runners' progress, with a deadline
            ok.stop()
            down.stop()
            await asyncio.gather(*tasks)
            return ok, down, len(got)

        ok, down, n = asyncio.run(main())
    assert down.stats.connect_failures == 3 and down.breaker.times_opened == 1 and down.stats.connects == 0
    assert ok.stats.connects == 1 and n >= 5000 and ok.stats.reconnects == 0
    print(f"dead exchange: {down.stats.connect_failures} failed connects, breaker open; live one: {n} events")


def test_connection_is_renewed_before_its_lifetime_ends(data_dir: Path) -> None:
    with ReplayServer(data_dir, deterministic=True).running(port=free_port()) as base:
        adapter = BinanceLive(["BINANCE:BTC/USDT"], base.replace("http://", "ws://") + "/ws", base, lifetime_s=0.5)

        async def main() -> LiveConnection:
            async def ignore(events: list[LiveEvent]) -> None:
                return None

            conn = LiveConnection(adapter, ignore)
            task = asyncio.create_task(conn.run())
            async with asyncio.timeout(30):
                while conn.stats.scheduled_reconnects < 2:
                    await asyncio.sleep(0.05)  # polling the runner's counters, with a deadline
            conn.stop()
            await task
            return conn

        conn = asyncio.run(main())
    assert conn.stats.scheduled_reconnects >= 2 and conn.stats.connects >= 3 and conn.stats.connect_failures == 0
    print(f"lifetime 0.5s: {conn.stats.scheduled_reconnects} scheduled reconnects, {conn.stats.connects} connects")
