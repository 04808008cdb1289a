"""Gate.io spot v4 order books: spot.order_book_update diffs on a REST snapshot, chained by U/u.

Per Gate.io's "How to maintain local order book" (ingestors.gateio.config): updates are cached
until GET /api/v4/spot/order_book?with_id=true answers with baseId ("id"); cached updates with
u < baseId + 1 are in the snapshot already, the first one applied must have U <= baseId + 1 <= u,
and from then on every U must be the previous u + 1 (an update with u <= the book's id is a repeat
and ignored). A snapshot older than the first cached update (baseId + 1 < U) is stale: fetch
another. Any other jump is a gap: a GapEvent is recorded and only that pair fetches a new
snapshot. spot.order_book pushes whole books (lastUpdateId) and just replaces the book.

The classes are sans-IO: the live websocket loop and `marketlake verify-book` feed them the same
frames and answer `wants_snapshot` with the REST snapshot.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

from ingestors.book import BookError, OrderBook
from ingestors.gaps import GapEvent, GapHow
from ingestors.gateio.config import (
    BOOK_CHANNEL,
    BOOK_TICKER_CHANNEL,
    BOOK_UPDATE_CHANNEL,
    EXCHANGE,
    TICKERS_CHANNEL,
    TRADES_CHANNEL,
    GateioSymbolError,
    ticker_for,
)

__all__ = ["GateioBookSync", "GateioBookTicker", "GateioBooks", "GateioParseError", "GateioTicker", "GateioTrade",
           "Outcome", "SyncState", "parse_trade"]

log = logging.getLogger(__name__)

MAX_BUFFERED_UPDATES = 10_000  # while waiting for a snapshot


class GateioParseError(ValueError):
    """A Gate.io websocket frame or REST snapshot that does not have the documented shape."""


class SyncState(StrEnum):
    AWAITING_SNAPSHOT = "awaiting_snapshot"  # caching updates until a snapshot arrives
    BRIDGING = "bridging"  # snapshot applied; waiting for the update that spans baseId + 1
    LIVE = "live"  # every update continues the book


class Outcome(StrEnum):
    BUFFERED = "buffered"
    DROPPED = "dropped"  # u < baseId + 1: already in the snapshot
    APPLIED = "applied"
    IGNORED_OLD = "ignored_old"  # u <= the live book's id: a repeat
    GAP = "gap"  # U is not the previous u + 1: this pair fetches a new snapshot; a GapEvent was recorded
    SNAPSHOT_APPLIED = "snapshot_applied"
    STALE_SNAPSHOT = "stale_snapshot"  # older than the cached updates: fetch another
    UNWANTED_SNAPSHOT = "unwanted_snapshot"  # the book was not waiting for one; nothing changed
    REFRESH = "refresh"  # a spot.order_book whole book replaced the book
    TICKER = "ticker"  # spot.tickers: GateioBooks.ticker holds its best bid/ask prices
    BOOK_TICKER = "book_ticker"  # spot.book_ticker: GateioBooks.book_ticker holds it
    TRADE = "trade"  # spot.trades: GateioBooks.trades holds its trades
    NOT_BOOK = "not_book"  # subscribe answers, pongs, errors, candlesticks


class GateioTrade(NamedTuple):
    """One spot.trades trade, strings as Gate.io sent them."""

    pair: str
    trade_id: str
    price: str
    amount: str
    side: str  # "buy" | "sell": the taker's side
    create_time_ms: str  # ms with a fraction, e.g. "1619093543708.2642"


class GateioTicker(NamedTuple):
    """Best bid/ask prices of a spot.tickers push; time_ms is the frame's whole-second "time" in ms."""

    pair: str
    time_ms: int
    bid_price: str
    ask_price: str


class GateioBookTicker(NamedTuple):
    """A spot.book_ticker push: the top at the book's update id u."""

    pair: str
    t_ms: int
    update_id: int
    bid_price: str
    bid_size: str
    ask_price: str
    ask_size: str


class _Update(NamedTuple):
    first_id: int  # U
    last_id: int  # u
    bids: list[list[str]]
    asks: list[list[str]]
    t_ms: int
    recv_ns: int


def parse_trade(result: Mapping[str, Any]) -> GateioTrade:
    """The "result" of a spot.trades update."""
    try:
        return GateioTrade(str(result["currency_pair"]), str(result["id"]), str(result["price"]),
                           str(result["amount"]), str(result["side"]), str(result["create_time_ms"]))
    except (KeyError, TypeError) as exc:
        raise GateioParseError(f"spot.trades result lacks {exc}: {str(result)[:200]!r}") from None


@dataclass
class GateioBookStats:
    updates_applied: int = 0
    dropped: int = 0
    ignored_old: int = 0
    snapshots_applied: int = 0
    stale_snapshots: int = 0
    refreshes: int = 0
    resyncs: int = 0


class GateioBookSync:
    """One pair's book following Gate.io's cached-updates + snapshot procedure."""

    def __init__(self, pair: str, *, on_gap: Callable[[GapEvent], None] | None = None,
                 max_buffer: int = MAX_BUFFERED_UPDATES) -> None:
        self.pair = pair
        self.ticker = ticker_for(pair)
        self.book = OrderBook(self.ticker)
        self.state = SyncState.AWAITING_SNAPSHOT
        self.ts_ms = 0  # Gate.io's time (ms) of the last update applied
        self.prev_ts_ms = 0  # of the one before: an update nets the changes of (prev_ts_ms, ts_ms]
        self.stats = GateioBookStats()
        self.gaps: list[GapEvent] = []
        self._on_gap = on_gap
        self._buffer: deque[_Update] = deque(maxlen=max_buffer)

    @property
    def wants_snapshot(self) -> bool:
        """True when the caller should GET /api/v4/spot/order_book?with_id=true for this pair."""
        return self.state is SyncState.AWAITING_SNAPSHOT and bool(self._buffer)

    @property
    def synced(self) -> bool:
        return self.state is not SyncState.AWAITING_SNAPSHOT

    @property
    def is_live(self) -> bool:
        return self.state is SyncState.LIVE

    def on_update(self, result: Mapping[str, Any], recv_ns: int) -> Outcome:
        """A spot.order_book_update "result", in the order received."""
        try:
            update = _Update(int(result["U"]), int(result["u"]), result["b"], result["a"], int(result["t"]), recv_ns)
        except (KeyError, TypeError, ValueError) as exc:
            raise GateioParseError(f"{self.pair} book update lacks or mistypes {exc}: {str(result)[:200]!r}") from None
        if update.first_id > update.last_id:
            raise GateioParseError(f"{self.pair} book update with U {update.first_id} > u {update.last_id}")
        return self._on_update(update)

    def _on_update(self, update: _Update) -> Outcome:
        if self.state is SyncState.AWAITING_SNAPSHOT:
            self._buffer.append(update)
            return Outcome.BUFFERED
        book_id = self.book.update_id
        if update.last_id < book_id + 1:
            if self.state is SyncState.BRIDGING:
                self.stats.dropped += 1
                return Outcome.DROPPED
            self.stats.ignored_old += 1
            return Outcome.IGNORED_OLD
        bridging = self.state is SyncState.BRIDGING
        if (update.first_id <= book_id + 1) if bridging else (update.first_id == book_id + 1):
            try:
                self.book.apply_delta(update.bids, update.asks)  # all or nothing
            except BookError as exc:  # the book stays at book_id; the next update reveals the gap
                raise GateioParseError(f"{self.pair} book update U={update.first_id} u={update.last_id}: {exc}") from None
            self.book.update_id = update.last_id
            self.prev_ts_ms, self.ts_ms = self.ts_ms, update.t_ms
            self.stats.updates_applied += 1
            self.state = SyncState.LIVE
            return Outcome.APPLIED
        if bridging and update.first_id > book_id + 1:  # the snapshot came before any update: older than the stream
            self.stats.stale_snapshots += 1
            self._restart(update)
            return Outcome.STALE_SNAPSHOT
        gap = GapEvent(EXCHANGE, self.ticker, update.recv_ns, GapHow.SEQUENCE_JUMP, last_seen=book_id,
                       first_missing=book_id + 1, next_received=update.first_id,
                       detail=f"{self.pair}: book update U={update.first_id} u={update.last_id} after book id {book_id}")
        log.warning("gap in %s book: %s; fetching a new snapshot of this pair only", self.pair, gap.detail)
        self.stats.resyncs += 1
        self.gaps.append(gap)
        self._restart(update)
        if self._on_gap is not None:
            self._on_gap(gap)
        return Outcome.GAP

    def on_snapshot(self, snapshot: Mapping[str, Any], recv_ns: int) -> Outcome:
        """A GET /api/v4/spot/order_book?with_id=true answer {"id", "current", "update", "bids", "asks"};
        then replays the cached updates."""
        if self.state is not SyncState.AWAITING_SNAPSHOT:
            return Outcome.UNWANTED_SNAPSHOT
        try:
            base_id, bids, asks = int(snapshot["id"]), snapshot["bids"], snapshot["asks"]
        except (KeyError, TypeError, ValueError) as exc:
            raise GateioParseError(f"{self.pair} snapshot lacks or mistypes {exc} (with_id=true?): "
                                   f"{str(snapshot)[:200]!r}") from None
        if self._buffer and base_id + 1 < self._buffer[0].first_id:
            self.stats.stale_snapshots += 1
            log.info("%s snapshot %d is older than the first cached update U=%d: refetching",
                     self.pair, base_id, self._buffer[0].first_id)
            return Outcome.STALE_SNAPSHOT
        try:
            self.book.apply_snapshot(bids, asks, base_id)
        except BookError as exc:
            self.book.clear()
            raise GateioParseError(f"{self.pair} snapshot: {exc}") from None
        self.state = SyncState.BRIDGING
        self.stats.snapshots_applied += 1
        self.ts_ms = int(snapshot.get("update") or snapshot.get("current") or recv_ns // 1_000_000)
        self.prev_ts_ms = self.ts_ms - 1
        pending, self._buffer = self._buffer, deque(maxlen=self._buffer.maxlen)
        outcomes = [self._on_update(update) for update in pending]
        if self.state is SyncState.AWAITING_SNAPSHOT:  # a cached update did not continue it: not applied after all
            return Outcome.GAP if Outcome.GAP in outcomes else Outcome.STALE_SNAPSHOT
        return Outcome.SNAPSHOT_APPLIED

    def on_whole_book(self, result: Mapping[str, Any]) -> Outcome:
        """A spot.order_book push {t, lastUpdateId, s, bids, asks}: replaces the book unless older than it."""
        try:
            last_id, t_ms = int(result["lastUpdateId"]), int(result["t"])
            if self.synced and last_id <= self.book.update_id:
                self.stats.ignored_old += 1
                return Outcome.IGNORED_OLD
            self.book.apply_snapshot(result["bids"], result["asks"], last_id)
        except (BookError, KeyError, TypeError, ValueError) as exc:
            self.state = SyncState.AWAITING_SNAPSHOT
            raise GateioParseError(f"{self.pair} spot.order_book push: {type(exc).__name__}: {exc}") from None
        self.state = SyncState.LIVE
        self.prev_ts_ms, self.ts_ms = self.ts_ms, t_ms
        self.stats.refreshes += 1
        self.stats.updates_applied += 1
        return Outcome.REFRESH

    def on_disconnect(self, recv_ns: int) -> GapEvent | None:
        """The connection dropped: a synced book cannot know what it missed, so it restarts (and records a gap)."""
        gap = None
        if self.state is not SyncState.AWAITING_SNAPSHOT:
            gap = GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.RECONNECT, last_seen=self.book.update_id,
                           first_missing=self.book.update_id + 1, detail=f"{self.pair}: connection lost")
            self.stats.resyncs += 1
            self.gaps.append(gap)
            if self._on_gap is not None:
                self._on_gap(gap)
        self.book.clear()
        self._buffer.clear()
        self.state = SyncState.AWAITING_SNAPSHOT
        return gap

    def _restart(self, update: _Update) -> None:
        self.book.clear()
        self._buffer.clear()
        self._buffer.append(update)
        self.state = SyncState.AWAITING_SNAPSHOT


class GateioBooks:
    """Every book of one Gate.io websocket connection, by currency pair; each resyncs on its own."""

    def __init__(self, *, on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.syncs: dict[str, GateioBookSync] = {}
        self.ticker: GateioTicker | None = None  # the last spot.tickers push
        self.book_ticker: GateioBookTicker | None = None  # the last spot.book_ticker push
        self.trades: list[GateioTrade] = []  # the trades of the last spot.trades push
        self._on_gap = on_gap

    def sync_for(self, pair: str) -> GateioBookSync:
        sync = self.syncs.get(pair)
        if sync is None:
            sync = self.syncs[pair] = GateioBookSync(pair, on_gap=self._on_gap)
        return sync

    def on_frame(self, text: str | bytes, recv_ns: int) -> tuple[GateioBookSync | None, Outcome]:
        """Route one frame: book updates change their pair's book; tickers, book tickers and trades are kept."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise GateioParseError(f"not JSON ({exc}): {text[:200]!r}") from None
        if not isinstance(msg, dict) or msg.get("event") != "update":
            return None, Outcome.NOT_BOOK  # subscribe/unsubscribe answers, pongs, errors
        try:
            channel, result = msg["channel"], msg["result"]
            if channel == BOOK_UPDATE_CHANNEL:
                sync = self.sync_for(str(result["s"]))
                return sync, sync.on_update(result, recv_ns)
            if channel == BOOK_CHANNEL:
                sync = self.sync_for(str(result["s"]))
                return sync, sync.on_whole_book(result)
            if channel == TICKERS_CHANNEL:
                self.ticker = GateioTicker(str(result["currency_pair"]), int(msg["time"]) * 1000,
                                           str(result["highest_bid"]), str(result["lowest_ask"]))
                return None, Outcome.TICKER
            if channel == BOOK_TICKER_CHANNEL:
                self.book_ticker = GateioBookTicker(str(result["s"]), int(result["t"]), int(result["u"]),
                                                    str(result["b"]), str(result["B"]), str(result["a"]),
                                                    str(result["A"]))
                return None, Outcome.BOOK_TICKER
            if channel == TRADES_CHANNEL:
                results = result if isinstance(result, list) else [result]
                self.trades = [parse_trade(r) for r in results]
                return None, Outcome.TRADE
            return None, Outcome.NOT_BOOK
        except (KeyError, IndexError, TypeError, ValueError, GateioSymbolError) as exc:
            if isinstance(exc, GateioParseError):
                raise
            raise GateioParseError(f"malformed Gate.io push ({type(exc).__name__}: {exc}): {text[:200]!r}") from None

    def on_snapshot(self, pair: str, snapshot: Mapping[str, Any], recv_ns: int) -> Outcome:
        """Feed a REST snapshot to the pair's book."""
        return self.sync_for(pair).on_snapshot(snapshot, recv_ns)

    def wanting_snapshot(self) -> list[str]:
        """Pairs whose book waits for a REST snapshot."""
        return [p for p, sync in self.syncs.items() if sync.wants_snapshot]

    def on_disconnect(self, recv_ns: int) -> list[GapEvent]:
        """Every book on the connection restarts; returns the gaps of those that were synced."""
        return [g for sync in self.syncs.values() if (g := sync.on_disconnect(recv_ns)) is not None]

    @property
    def gaps(self) -> list[GapEvent]:
        return [g for sync in self.syncs.values() for g in sync.gaps]
