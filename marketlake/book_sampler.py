"""Periodic book snapshots from the live BookUpdate stream: what `market.book_snapshots` stores.

The live feeds send a whole book once (snapshot=True, on every (re)sync) and
then only deltas, so a book at a given time can only be known by replaying
every update since the last sync. The Kafka writer, which sees every event of
the live process in order, keeps each ticker's book here and emits a sampled
snapshot (BookUpdate snapshot=True, the best `levels` levels a side) on a fixed
grid of exchange time:

  the snapshot at grid time b (a multiple of `every_ns`) is the book after every
  update whose time is < b, emitted when the first update with time >= b arrives.

Time is the update's exchange time, or its receive time when the exchange sends
none, so a replayed recording gives the same snapshots as the live run did. One
clock per ticker: once a ticker's updates carry exchange time, updates without
it (Binance announces a REST snapshot, which has no time) apply but do not move
the grid, and the switch from receive to exchange time starts the grid afresh
at that update (receive time can be years after the exchange time of a replay).
Quiet spells emit one snapshot (at the latest grid time passed), not one per
grid step. A StreamGap or an unreadable update makes the book unknown until the
feed's next snapshot=True update; nothing is sampled meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingestors.book import BookError, OrderBook
from live_relay.messages import BookLevel, BookUpdate, StreamGap

__all__ = ["BookSampler"]


@dataclass
class _Tracked:
    book: OrderBook
    live: bool = False  # the book is known (a snapshot arrived since start or since the last gap)
    last_grid: int = -1  # the grid time of the last snapshot emitted (or of the sync)
    exchange_clock: bool = False  # the ticker's updates carry exchange time: the grid follows it alone


class BookSampler:
    """Feed it every BookUpdate and StreamGap in order; it returns the sampled snapshots that became due."""

    def __init__(self, every_ns: int, levels: int) -> None:
        if every_ns <= 0 or levels <= 0:
            raise ValueError(f"sampling needs a positive period and depth, got {every_ns} ns, {levels} levels")
        self.every_ns, self.levels = every_ns, levels
        self._tickers: dict[str, _Tracked] = {}
        self.sequence = 0
        self.sampled = 0

    def on_event(self, event: object) -> BookUpdate | None:
        """The snapshot that `event` made due (emitted before the event is applied), if any."""
        if isinstance(event, StreamGap):
            tracked = self._tickers.get(event.ticker)
            if tracked is not None:
                tracked.live = False
            return None
        if not isinstance(event, BookUpdate):
            return None
        tracked = self._tickers.get(event.ticker)
        if tracked is None:
            tracked = self._tickers[event.ticker] = _Tracked(OrderBook(event.ticker))
        due: BookUpdate | None = None
        at = self._clock(tracked, event)
        if at is not None:
            grid = at - at % self.every_ns
            if tracked.live and grid > tracked.last_grid:
                due = self._snapshot(tracked.book, grid, event.receive_time_ns)
            tracked.last_grid = max(tracked.last_grid, grid)
        levels = ([(x.price, x.size) for x in event.bids], [(x.price, x.size) for x in event.asks])
        try:
            if event.snapshot:
                tracked.book.apply_snapshot(*levels, event.update_id)
                tracked.live = True
            elif tracked.live:
                tracked.book.apply_delta(*levels)
                tracked.book.update_id = event.update_id or tracked.book.update_id
        except BookError:
            tracked.book.clear()
            tracked.live = False
        return due

    def _clock(self, tracked: _Tracked, event: BookUpdate) -> int | None:
        """The event's time on the ticker's clock, or None when it has none there."""
        if event.exchange_time_ns:
            if not tracked.exchange_clock:  # from here on exchange time: the grid starts again at this update
                tracked.exchange_clock = True
                tracked.last_grid = event.exchange_time_ns - event.exchange_time_ns % self.every_ns
            return event.exchange_time_ns
        return None if tracked.exchange_clock else event.receive_time_ns

    def _snapshot(self, book: OrderBook, grid_ns: int, receive_ns: int) -> BookUpdate:
        bids, asks = book.top(self.levels)
        self.sequence += 1
        self.sampled += 1
        return BookUpdate(ticker=book.ticker, snapshot=True, bids=tuple(BookLevel(x.price, x.size) for x in bids),
                          asks=tuple(BookLevel(x.price, x.size) for x in asks), exchange_time_ns=grid_ns,
                          receive_time_ns=receive_ns, update_id=book.update_id, sequence=self.sequence)  # fmt: skip
