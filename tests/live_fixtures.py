"""Running a live adapter against a replay server until a condition holds: shared by the live-feed tests."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ingestors.live.adapter import LiveAdapter, LiveEvent
from ingestors.live.backoff import Backoff
from ingestors.live.connection import LiveConnection
from live_relay.messages import BookUpdate, StreamGap


@dataclass
class Collected:
    events: list[LiveEvent] = field(default_factory=list)
    counts: Counter[tuple[type, str]] = field(default_factory=Counter)  # (event type, ticker) so far
    snapshots: int = 0  # snapshot BookUpdates so far
    gapped: set[str] = field(default_factory=set)  # tickers with a reported gap
    resynced: set[str] = field(default_factory=set)  # ... whose book was announced again after it

    async def emit(self, events: list[LiveEvent]) -> None:
        self.events.extend(events)
        self.counts.update((type(e), e.ticker) for e in events)
        for e in events:
            if isinstance(e, StreamGap):
                self.gapped.add(e.ticker)
            elif isinstance(e, BookUpdate) and e.snapshot:
                self.snapshots += 1
                if e.ticker in self.gapped:
                    self.resynced.add(e.ticker)

    def of(self, kind: type, ticker: str | None = None) -> list:  # noqa: ANN401 - test helper
        return [e for e in self.events if isinstance(e, kind) and (ticker is None or e.ticker == ticker)]


def run_feed(adapter: LiveAdapter, until: Callable[[Collected, LiveConnection], bool],
             timeout: float = 60.0) -> tuple[Collected, LiveConnection]:  # fmt: skip
    """Run `adapter` on a real connection until `until` holds (checked on every batch); fail after `timeout`."""
    collected = Collected()

    async def main() -> LiveConnection:
        done = asyncio.Event()

        async def emit(events: list[LiveEvent]) -> None:
            await collected.emit(events)
            if until(collected, conn):
                done.set()

        conn = LiveConnection(adapter, emit, backoff=Backoff(base_s=0.05, cap_s=0.2))
        task = asyncio.create_task(conn.run())
        try:
            await asyncio.wait_for(done.wait(), timeout)
        finally:
            conn.stop()
            await task
        return conn

    return collected, asyncio.run(main())
