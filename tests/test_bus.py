"""The sidecar's event bus: required subscribers lose nothing and pace the producer; optional ones never slow it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from live_relay.bus import BusClosedError, BusDrainTimeout, EndOfStream, EventBus, Subscription
from live_relay.messages import OHLC, Tick

DEADLINE_S = 10.0


def run(coro: Coroutine[Any, Any, None]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(30):
            await coro

    asyncio.run(bounded())


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run until the condition holds (polling, with a deadline)."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0)  # a yield to the other tasks, not a timed wait


async def collect(sub: Subscription[Any], out: list[Any]) -> None:
    while batch := await sub.get_batch():
        out.extend(batch)


def test_required_subscribers_get_100k_events_complete_and_in_order() -> None:
    async def main() -> None:
        bus: EventBus[int] = EventBus()
        subs = [bus.subscribe(f"required-{i}", required=True, capacity=cap) for i, cap in enumerate((1, 64, 4096))]
        got: list[list[int]] = [[] for _ in subs]
        readers = [asyncio.create_task(collect(s, g)) for s, g in zip(subs, got, strict=True)]
        n = 100_000
        for i in range(0, n // 2):
            await bus.publish(i)
        for start in range(n // 2, n, 500):  # the second half in batches
            await bus.publish_batch(list(range(start, start + 500)))
        await bus.close()
        await asyncio.gather(*readers)
        for sub, g in zip(subs, got, strict=True):
            assert g == list(range(n)), sub.name
            assert (sub.stats.queued, sub.stats.taken, sub.stats.dropped) == (n, n, 0)
        assert bus.published == n

    run(main())


async def timed_run(n: int, with_stalled: bool) -> tuple[float, Subscription[int] | None, list[list[int]]]:
    """CPU seconds for two required readers to receive n events, optionally beside an optional subscriber that never reads.

    The whole bus runs on this one thread, so its CPU time is what the subscribers cost; wall time on
    this shared machine mostly measures other processes.
    """
    bus: EventBus[int] = EventBus()
    stalled = bus.subscribe("stalled", required=False, capacity=100) if with_stalled else None
    subs = [bus.subscribe(f"reader-{i}", required=True, capacity=256) for i in range(2)]
    got: list[list[int]] = [[], []]
    readers = [asyncio.create_task(collect(s, g)) for s, g in zip(subs, got, strict=True)]
    started = time.thread_time()
    for i in range(n):
        await bus.publish(i)
    await bus.close()
    await asyncio.gather(*readers)
    return time.thread_time() - started, stalled, got


def test_an_optional_subscriber_that_stops_reading_slows_no_one_and_its_drops_are_counted() -> None:
    async def main() -> None:
        n = 30_000
        without, with_stalled = [], []
        for _ in range(3):  # interleaved, best of three each: the machine is shared
            without.append((await timed_run(n, False))[0])
            seconds, stalled, got = await timed_run(n, True)
            with_stalled.append(seconds)
            assert all(g == list(range(n)) for g in got)
            assert stalled is not None
            assert stalled.qsize() == 100
            assert (stalled.stats.queued, stalled.stats.dropped_full, stalled.stats.dropped_paused) == (100, n - 100, 0)
        rate_without, rate_with = n / min(without), n / min(with_stalled)
        print(f"readers' throughput: {rate_without:,.0f} ev/CPU-s alone, {rate_with:,.0f} beside a stalled subscriber")
        assert rate_with >= 0.8 * rate_without

    run(main())


def test_a_slow_required_subscriber_holds_the_producer_back_and_loses_nothing() -> None:
    async def main() -> None:
        bus: EventBus[int] = EventBus()
        slow = bus.subscribe("slow", required=True, capacity=8)
        fast = bus.subscribe("fast", required=False, capacity=1000)
        progress = [0]

        async def produce() -> None:
            for i in range(200):
                await bus.publish(i)
                progress[0] += 1

        producer = asyncio.create_task(produce())
        await until(lambda: slow.qsize() == 8, "the slow subscriber's queue to fill")
        for _ in range(20):
            await asyncio.sleep(0)
        assert progress[0] == 8 and not producer.done()  # the producer waits for the slow reader
        got = [await slow.get() for _ in range(5)]
        await until(lambda: progress[0] == 13, "the producer to use the 5 freed places")
        assert not producer.done()
        slow_task = asyncio.create_task(collect(slow, got))
        await producer
        await bus.close()
        await slow_task
        assert got == list(range(200))
        assert slow.stats.dropped == 0 and fast.stats.dropped == 0

    run(main())


def test_publish_batch_gives_each_subscriber_its_share_in_order_and_optional_ones_drop_the_excess() -> None:
    async def main() -> None:
        bus: EventBus[object] = EventBus()
        ticks = bus.subscribe("ticks", required=True, capacity=3, types=[Tick])
        small = bus.subscribe("small", required=False, capacity=4)
        events: list[object] = [Tick(trade_id=str(i)) if i % 2 else OHLC(open_time=i) for i in range(10)]
        got: list[object] = []
        reader = asyncio.create_task(collect(ticks, got))
        await bus.publish_batch(events)
        await bus.close()
        await reader
        assert got == [e for e in events if isinstance(e, Tick)]
        assert await small.get_batch() == events[:4]
        assert (small.stats.queued, small.stats.dropped_full) == (4, 6)
        assert bus.published == 10

    run(main())


def test_paused_required_subscriber_buffers_then_blocks_and_resumes_with_everything() -> None:
    async def main() -> None:
        bus: EventBus[int] = EventBus()
        sub = bus.subscribe("writer", required=True, capacity=5)
        sub.pause()
        pending = asyncio.create_task(sub.get())
        progress = [0]

        async def produce() -> None:
            for i in range(8):
                await bus.publish(i)
                progress[0] += 1

        producer = asyncio.create_task(produce())
        await until(lambda: sub.qsize() == 5, "five events buffered for the paused subscriber")
        for _ in range(20):
            await asyncio.sleep(0)
        assert not pending.done() and progress[0] == 5 and not producer.done()
        sub.resume()
        got = [await pending]
        await collect_n(sub, got, 8)
        await producer
        assert got == list(range(8)) and sub.stats.dropped == 0

    run(main())


async def collect_n(sub: Subscription[int], out: list[int], n: int) -> None:
    while len(out) < n:
        out.extend(await sub.get_batch(n - len(out)))


def test_paused_optional_subscriber_drops_and_counts_then_receives_again_after_resume() -> None:
    async def main() -> None:
        bus: EventBus[int] = EventBus()
        sub = bus.subscribe("dashboard", required=False, capacity=100)
        await bus.publish(0)
        sub.pause()
        for i in range(1, 11):
            await bus.publish(i)
        assert sub.qsize() == 1 and sub.stats.dropped_paused == 10 and sub.stats.dropped_full == 0
        sub.resume()
        await bus.publish(11)
        assert await sub.get_batch() == [0, 11]
        assert sub.stats.dropped == 10

    run(main())


def test_close_waits_for_required_readers_to_finish_then_ends_every_stream() -> None:
    async def main() -> None:
        bus: EventBus[int] = EventBus()
        req = bus.subscribe("kafka-writer", required=True, capacity=16)
        opt = bus.subscribe("zmq", required=False, capacity=10_000)
        idle = bus.subscribe("idle-required", required=True, types=[str])  # never reads, is owed nothing
        processed: list[int] = []

        async def writer() -> None:
            async for event in req:
                await asyncio.sleep(0)  # some work that yields, as a Kafka write would
                processed.append(event)

        for i in range(10):
            await bus.publish(i)
        closer = asyncio.create_task(bus.close())
        for _ in range(50):
            await asyncio.sleep(0)
        assert not closer.done()  # the writer has not read its 10 events yet
        with pytest.raises(BusClosedError):
            await bus.publish(10)
        task = asyncio.create_task(writer())
        await closer
        assert processed == list(range(10))  # close returned only after the writer processed the last event
        assert idle.stats.queued == 0
        await task
        assert await opt.get_batch(10_000) == list(range(10))  # optional readers still get what was queued
        assert await opt.get_batch() == []
        with pytest.raises(EndOfStream):
            await req.get()
        with pytest.raises(BusClosedError):
            bus.subscribe("late", required=False)

    run(main())


def test_close_gives_up_on_a_required_subscriber_that_never_reads_and_names_it() -> None:
    async def main() -> None:
        bus: EventBus[int] = EventBus()
        bus.subscribe("stuck", required=True, capacity=10)
        for i in range(3):
            await bus.publish(i)
        with pytest.raises(BusDrainTimeout, match=r"'stuck': 3"):
            await bus.close(timeout=0.2)

    run(main())


class LiquidationTick(Tick):
    """A Tick subclass: subscribers of Tick receive it too."""


def test_subscribers_receive_only_the_event_types_they_asked_for() -> None:
    async def main() -> None:
        bus: EventBus[object] = EventBus()
        ticks = bus.subscribe("ticks", required=True, types=[Tick])
        candles = bus.subscribe("candles", required=False, types=[OHLC])
        everything = bus.subscribe("all", required=True)
        events: list[object] = [Tick(trade_id="1"), OHLC(open_time=1), "status", LiquidationTick(trade_id="2"), OHLC(open_time=2)]
        for e in events:
            await bus.publish(e)
        assert await ticks.get_batch() == [events[0], events[3]]
        assert await candles.get_batch() == [events[1], events[4]]
        assert await everything.get_batch() == events
        assert candles.stats.dropped == 0

    run(main())
