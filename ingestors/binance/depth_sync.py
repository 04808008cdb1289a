"""Local order books kept by the buffered snapshot + diff procedure, exactly as Binance documents it.

"How to manage a local order book correctly"
(https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams):
buffer the <symbol>@depth diff events, fetch a REST depth snapshot, refetch it
while it is older than the first buffered event (lastUpdateId + 1 < U), drop
buffered events with u <= lastUpdateId, the first applied event must span
lastUpdateId + 1 (U <= lastUpdateId + 1 <= u), then every event must continue
where the book is (U <= book id + 1; an event with u <= book id is old and
ignored). A jump is a gap: it is recorded as a GapEvent and only that symbol's
book restarts the procedure; every other symbol keeps its book.

DepthSync is that procedure on wire-independent input: diffs as DepthDiff (U..u),
snapshots as (update id, bids, asks) through `apply_snapshot`. Each exchange maps
its wire fields onto those and says where its rule differs (DepthSync's class
attributes):
- BinanceDepthSync: Binance's depthUpdate events and GET /api/v3/depth answers.
  MEXC spot documents the same procedure with U = fromVersion and u = toVersion
  and the same REST snapshot (ingestors/mexc/live.py): `exchange` names whose
  GapEvents and default tickers these are.
- GateioBookSync (ingestors/gateio/book.py): spot.order_book_update U/u on the
  REST snapshot's "id" (baseId); once live, Gate.io wants each U to be exactly
  the previous u + 1 (`exact_continuation`).

The classes are sans-IO: the live websocket loop and `marketlake verify-book`
feed them the same frames and answer `wants_snapshot` with a REST snapshot.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple

from ingestors.binance.config import EXCHANGE, SymbolError, ticker_for
from ingestors.binance.parse import BinanceParseError
from ingestors.book import BookError, OrderBook
from ingestors.gaps import GapEvent, GapHow

__all__ = ["BinanceBooks", "BinanceDepthSync", "DepthDiff", "DepthSync", "Outcome", "SyncState", "SyncStats",
           "parse_depth_event"]

log = logging.getLogger(__name__)

MAX_BUFFERED_EVENTS = 10_000  # while waiting for a snapshot; older events fall off (a snapshot must be newer anyway)


class DepthDiff(NamedTuple):
    """One diff (Binance: a depthUpdate event): update ids U..u and the levels ([price, qty] strings) they set."""

    first_id: int  # U
    last_id: int  # u
    bids: list[list[str]]
    asks: list[list[str]]
    event_ms: int  # the exchange's time of it
    recv_ns: int


def parse_depth_event(d: Mapping[str, Any], recv_ns: int = 0) -> DepthDiff:
    """A <symbol>@depth / @depth@100ms event {"e": "depthUpdate", "E", "s", "U", "u", "b", "a"}."""
    try:
        if d["e"] != "depthUpdate":
            raise BinanceParseError(f"not a depthUpdate event: {d!r:.200}")
        diff = DepthDiff(int(d["U"]), int(d["u"]), d["b"], d["a"], int(d["E"]), recv_ns)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BinanceParseError):
            raise
        raise BinanceParseError(f"depth event lacks or mistypes {exc}: {d!r:.200}") from None
    if diff.first_id > diff.last_id:
        raise BinanceParseError(f"depth event with U {diff.first_id} > u {diff.last_id}: {d!r:.200}")
    return diff


class SyncState(StrEnum):
    AWAITING_SNAPSHOT = "awaiting_snapshot"  # buffering events until a fresh enough snapshot arrives
    BRIDGING = "bridging"  # snapshot applied; waiting for the event that spans lastUpdateId + 1
    LIVE = "live"  # every event continues the book


class Outcome(StrEnum):
    """What one event or snapshot did to the book."""

    BUFFERED = "buffered"
    DROPPED = "dropped"  # u <= the snapshot's lastUpdateId: already in the snapshot
    APPLIED = "applied"
    IGNORED_OLD = "ignored_old"  # u <= the live book's id: a repeat
    GAP = "gap"  # the book restarts the sync; a GapEvent was recorded
    SNAPSHOT_APPLIED = "snapshot_applied"
    STALE_SNAPSHOT = "stale_snapshot"  # older than the buffered events: fetch another
    UNWANTED_SNAPSHOT = "unwanted_snapshot"  # the book was not waiting for one; nothing changed


@dataclass
class SyncStats:
    updates_applied: int = 0
    dropped: int = 0
    ignored_old: int = 0
    snapshots_applied: int = 0
    stale_snapshots: int = 0
    resyncs: int = 0


class DepthSync:
    """One symbol's book following the buffered snapshot + diff procedure (see the module docstring).

    Wire-independent: feed it DepthDiffs (on_diff) and snapshots (apply_snapshot); a subclass reads its
    exchange's wire format and sets the exchange's rule and names in the class attributes below.
    `event_ms` is the exchange time (ms) of the book's state: of the last diff applied, or of the snapshot
    (0 when the snapshot carries none); `prev_event_ms` is that of the state before, so the last diff
    applied nets the changes of (prev_event_ms, event_ms].
    """

    exact_continuation: ClassVar[bool] = False
    """Once live, must a diff start exactly at book id + 1 (U == previous u + 1; Gate.io)? Then one that
    overlaps the book (U <= book id < u) is a gap. If not (Binance, MEXC), any U <= book id + 1 continues
    the book. The diff bridging a snapshot needs U <= id + 1 <= u either way."""
    diff_name: ClassVar[str] = "diff"  # one diff in gap details and errors
    parse_error: ClassVar[type[ValueError]] = ValueError  # what a diff or snapshot the book cannot take raises

    def __init__(self, symbol: str, ticker: str | None = None, *, on_gap: Callable[[GapEvent], None] | None = None,
                 max_buffer: int = MAX_BUFFERED_EVENTS, exchange: str = EXCHANGE) -> None:
        self.symbol = symbol
        self.exchange = exchange  # the name its GapEvents and default ticker carry
        self.ticker = ticker or f"{exchange}:{symbol}"
        self.book = OrderBook(self.ticker)
        self.state = SyncState.AWAITING_SNAPSHOT
        self.stats = SyncStats()
        self.gaps: list[GapEvent] = []
        self.event_ms = 0
        self.prev_event_ms = 0
        self._on_gap = on_gap
        self._buffer: deque[DepthDiff] = deque(maxlen=max_buffer)

    @property
    def wants_snapshot(self) -> bool:
        """True when the caller should fetch a REST snapshot for this symbol (after the first buffered event)."""
        return self.state is SyncState.AWAITING_SNAPSHOT and bool(self._buffer)

    @property
    def is_live(self) -> bool:
        return self.state is SyncState.LIVE

    def on_diff(self, diff: DepthDiff) -> Outcome:
        """Feed one diff, in the order received."""
        if self.state is SyncState.AWAITING_SNAPSHOT:
            return self._buffer_event(diff)
        book_id = self.book.update_id
        if diff.last_id <= book_id:
            if self.state is SyncState.BRIDGING:
                self.stats.dropped += 1
                return Outcome.DROPPED
            self.stats.ignored_old += 1
            return Outcome.IGNORED_OLD
        exact = self.exact_continuation and self.state is SyncState.LIVE
        if (diff.first_id == book_id + 1) if exact else (diff.first_id <= book_id + 1):
            try:
                self.book.apply_delta(diff.bids, diff.asks)  # all or nothing
            except BookError as exc:  # the book stays at book_id; the next event will reveal the gap
                raise self.parse_error(f"{self.symbol} {self.diff_name} U={diff.first_id} u={diff.last_id}: {exc}") from None
            self.book.update_id = diff.last_id
            self.prev_event_ms, self.event_ms = self.event_ms, diff.event_ms
            self.stats.updates_applied += 1
            self.state = SyncState.LIVE
            return Outcome.APPLIED
        if self.state is SyncState.BRIDGING:
            # Only reachable when the snapshot came before any event: it is older than the stream.
            self.stats.stale_snapshots += 1
            self._restart(diff)
            return Outcome.STALE_SNAPSHOT
        gap = GapEvent(self.exchange, self.ticker, diff.recv_ns, GapHow.SEQUENCE_JUMP, last_seen=book_id,
                       first_missing=book_id + 1, next_received=diff.first_id,
                       detail=f"{self.symbol}: {self.diff_name} U={diff.first_id} u={diff.last_id} after book id {book_id}")
        log.warning("gap: %s; resyncing this symbol only", gap.detail)
        self.stats.resyncs += 1
        self.gaps.append(gap)
        self._restart(diff)
        if self._on_gap is not None:
            self._on_gap(gap)
        return Outcome.GAP

    def apply_snapshot(self, update_id: int, bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]],
                       event_ms: int = 0) -> Outcome:
        """Feed a REST snapshot, taken apart: the book at `update_id` (levels [price, qty, ...] a side), the
        exchange's time of it if known; then replays the buffered events. A malformed level raises BookError
        and changes nothing."""
        if self.state is not SyncState.AWAITING_SNAPSHOT:
            return Outcome.UNWANTED_SNAPSHOT
        if self._buffer and update_id + 1 < self._buffer[0].first_id:
            self.stats.stale_snapshots += 1
            log.info("%s snapshot %d is older than the first buffered event U=%d: refetching",
                     self.symbol, update_id, self._buffer[0].first_id)
            return Outcome.STALE_SNAPSHOT
        self.book.apply_snapshot(bids, asks, update_id)
        self.prev_event_ms, self.event_ms = event_ms - 1, event_ms
        self.state = SyncState.BRIDGING
        self.stats.snapshots_applied += 1
        pending, self._buffer = self._buffer, deque(maxlen=self._buffer.maxlen)
        for diff in pending:
            self.on_diff(diff)
        return Outcome.SNAPSHOT_APPLIED

    def on_disconnect(self, recv_ns: int) -> GapEvent | None:
        """The connection dropped: a live book cannot know what it missed, so it restarts (and records a gap)."""
        gap = None
        if self.state is not SyncState.AWAITING_SNAPSHOT:
            gap = GapEvent(self.exchange, self.ticker, recv_ns, GapHow.RECONNECT, last_seen=self.book.update_id,
                           first_missing=self.book.update_id + 1, detail=f"{self.symbol}: connection lost")
            self.stats.resyncs += 1
            self.gaps.append(gap)
            if self._on_gap is not None:
                self._on_gap(gap)
        self.book.clear()
        self._buffer.clear()
        self.state = SyncState.AWAITING_SNAPSHOT
        return gap

    def _buffer_event(self, diff: DepthDiff) -> Outcome:
        if self._buffer and diff.first_id != self._buffer[-1].last_id + 1:
            if diff.last_id <= self._buffer[-1].last_id:
                self.stats.ignored_old += 1
                return Outcome.IGNORED_OLD
            # Events before a jump can never be bridged to: the snapshot must be newer than this one.
            log.info("%s: buffered depth events jump to U=%d; keeping only the newer ones", self.symbol, diff.first_id)
            self._buffer.clear()
        self._buffer.append(diff)
        return Outcome.BUFFERED

    def _restart(self, diff: DepthDiff) -> None:
        self.book.clear()
        self._buffer.clear()
        self._buffer.append(diff)
        self.state = SyncState.AWAITING_SNAPSHOT


class BinanceDepthSync(DepthSync):
    """One Binance (or MEXC) symbol's book: DepthSync fed GET /api/v3/depth answers."""

    diff_name = "depth event"
    parse_error = BinanceParseError

    def on_snapshot(self, snapshot: Mapping[str, Any]) -> Outcome:
        """Feed a GET /api/v3/depth answer {"lastUpdateId", "bids", "asks"}; then replays the buffered events."""
        if self.state is not SyncState.AWAITING_SNAPSHOT:
            return Outcome.UNWANTED_SNAPSHOT
        try:
            last_update_id, bids, asks = int(snapshot["lastUpdateId"]), snapshot["bids"], snapshot["asks"]
        except (KeyError, TypeError, ValueError) as exc:
            raise BinanceParseError(f"{self.symbol} depth snapshot lacks or mistypes {exc}: {snapshot!r:.200}") from None
        return self.apply_snapshot(last_update_id, bids, asks)


def _ticker(symbol: str) -> str:
    try:
        return ticker_for(symbol)
    except SymbolError:
        return f"{EXCHANGE}:{symbol}"


class BinanceBooks:
    """The books of every symbol on one connection; each symbol syncs (and resyncs) on its own."""

    def __init__(self, *, on_gap: Callable[[GapEvent], None] | None = None,
                 ticker_of: Callable[[str], str] = _ticker, exchange: str = EXCHANGE) -> None:
        self.syncs: dict[str, BinanceDepthSync] = {}
        self._on_gap = on_gap
        self._ticker_of = ticker_of
        self.exchange = exchange

    def sync_for(self, symbol: str) -> BinanceDepthSync:
        sync = self.syncs.get(symbol)
        if sync is None:
            sync = self.syncs[symbol] = BinanceDepthSync(symbol, self._ticker_of(symbol), on_gap=self._on_gap,
                                                         exchange=self.exchange)
        return sync

    def on_depth_event(self, data: Mapping[str, Any], recv_ns: int) -> tuple[BinanceDepthSync, Outcome]:
        """Route one depthUpdate event to its symbol's book."""
        diff = parse_depth_event(data, recv_ns)
        sync = self.sync_for(str(data["s"]))
        return sync, sync.on_diff(diff)

    def wanting_snapshot(self) -> list[str]:
        """Symbols whose book waits for a REST depth snapshot."""
        return [s for s, sync in self.syncs.items() if sync.wants_snapshot]

    def on_disconnect(self, recv_ns: int) -> list[GapEvent]:
        """Every book on the connection restarts; returns the gaps of those that were live."""
        return [g for sync in self.syncs.values() if (g := sync.on_disconnect(recv_ns)) is not None]

    @property
    def gaps(self) -> list[GapEvent]:
        return [g for sync in self.syncs.values() for g in sync.gaps]
