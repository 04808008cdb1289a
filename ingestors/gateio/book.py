"""Gate.io spot v4 order books: spot.order_book_update diffs on a REST snapshot, chained by U/u.

Gate.io's "How to maintain local order book" (ingestors.gateio.config) is the buffered snapshot +
diff procedure of ingestors.binance.depth_sync.DepthSync under Gate.io's names, which
GateioBookSync maps onto it: updates (U/u first/last update id) are cached until
GET /api/v4/spot/order_book?with_id=true answers with baseId ("id"); cached updates with
u < baseId + 1 are in the snapshot already, the first one applied must have U <= baseId + 1 <= u,
and from then on every U must be the previous u + 1 (DepthSync.exact_continuation; an update with
u <= the book's id is a repeat and ignored). A snapshot older than the first cached update
(baseId + 1 < U) is stale: fetch another. Any other jump is a gap: a GapEvent is recorded and only
that pair fetches a new snapshot. spot.order_book pushes whole books (lastUpdateId) and just
replaces the book.

The classes are sans-IO: the live websocket loop and `marketlake verify-book` feed them the same
frames and answer `wants_snapshot` with the REST snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

from ingestors.binance.depth_sync import MAX_BUFFERED_EVENTS, DepthDiff, DepthSync, Outcome, SyncState, SyncStats
from ingestors.book import BookError
from ingestors.gaps import GapEvent
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
           "Outcome", "Push", "SyncState", "parse_trade"]


class GateioParseError(ValueError):
    """A Gate.io websocket frame or REST snapshot that does not have the documented shape."""


class Push(StrEnum):
    """What GateioBooks.on_frame made of a frame other than a spot.order_book_update (those answer with an Outcome)."""

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


def parse_trade(result: Mapping[str, Any]) -> GateioTrade:
    """The "result" of a spot.trades update."""
    try:
        return GateioTrade(str(result["currency_pair"]), str(result["id"]), str(result["price"]),
                           str(result["amount"]), str(result["side"]), str(result["create_time_ms"]))
    except (KeyError, TypeError) as exc:
        raise GateioParseError(f"spot.trades result lacks {exc}: {str(result)[:200]!r}") from None


@dataclass
class GateioBookStats(SyncStats):
    refreshes: int = 0  # spot.order_book whole books


class GateioBookSync(DepthSync):
    """One pair's book: DepthSync fed Gate.io's update and snapshot fields (event_ms: Gate.io's "t" of the last
    update applied, or the snapshot's "update" time)."""

    exact_continuation = True  # "each U must be the previous u + 1"
    diff_name = "book update"
    parse_error = GateioParseError
    stats: GateioBookStats

    def __init__(self, pair: str, *, on_gap: Callable[[GapEvent], None] | None = None,
                 max_buffer: int = MAX_BUFFERED_EVENTS) -> None:
        super().__init__(pair, ticker_for(pair), on_gap=on_gap, max_buffer=max_buffer, exchange=EXCHANGE)
        self.stats = GateioBookStats()

    @property
    def synced(self) -> bool:
        return self.state is not SyncState.AWAITING_SNAPSHOT

    def on_update(self, result: Mapping[str, Any], recv_ns: int) -> Outcome:
        """A spot.order_book_update "result" {t, s, U, u, b, a}, in the order received."""
        try:
            diff = DepthDiff(int(result["U"]), int(result["u"]), result["b"], result["a"], int(result["t"]), recv_ns)
        except (KeyError, TypeError, ValueError) as exc:
            raise GateioParseError(f"{self.symbol} book update lacks or mistypes {exc}: {str(result)[:200]!r}") from None
        if diff.first_id > diff.last_id:
            raise GateioParseError(f"{self.symbol} book update with U {diff.first_id} > u {diff.last_id}")
        return self.on_diff(diff)

    def on_snapshot(self, snapshot: Mapping[str, Any], recv_ns: int = 0) -> Outcome:
        """A GET /api/v4/spot/order_book?with_id=true answer {"id", "current", "update", "bids", "asks"} (ms times);
        then replays the cached updates."""
        if self.state is not SyncState.AWAITING_SNAPSHOT:
            return Outcome.UNWANTED_SNAPSHOT
        try:
            base_id, bids, asks = int(snapshot["id"]), snapshot["bids"], snapshot["asks"]
            ts_ms = int(snapshot.get("update") or snapshot.get("current") or recv_ns // 1_000_000)
        except (KeyError, TypeError, ValueError) as exc:
            raise GateioParseError(f"{self.symbol} snapshot lacks or mistypes {exc} (with_id=true?): "
                                   f"{str(snapshot)[:200]!r}") from None
        try:
            return self.apply_snapshot(base_id, bids, asks, ts_ms)
        except BookError as exc:
            self.book.clear()
            raise GateioParseError(f"{self.symbol} snapshot: {exc}") from None

    def on_whole_book(self, result: Mapping[str, Any]) -> Outcome | Push:
        """A spot.order_book push {t, lastUpdateId, s, bids, asks}: replaces the book unless older than it."""
        try:
            last_id, t_ms = int(result["lastUpdateId"]), int(result["t"])
            if self.synced and last_id <= self.book.update_id:
                self.stats.ignored_old += 1
                return Outcome.IGNORED_OLD
            self.book.apply_snapshot(result["bids"], result["asks"], last_id)
        except (BookError, KeyError, TypeError, ValueError) as exc:
            self.state = SyncState.AWAITING_SNAPSHOT
            raise GateioParseError(f"{self.symbol} spot.order_book push: {type(exc).__name__}: {exc}") from None
        self.state = SyncState.LIVE
        self.prev_event_ms, self.event_ms = self.event_ms, t_ms
        self.stats.refreshes += 1
        self.stats.updates_applied += 1
        return Push.REFRESH


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

    def on_frame(self, text: str | bytes, recv_ns: int) -> tuple[GateioBookSync | None, Outcome | Push]:
        """Route one frame: book updates change their pair's book; tickers, book tickers and trades are kept."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise GateioParseError(f"not JSON ({exc}): {text[:200]!r}") from None
        if not isinstance(msg, dict) or msg.get("event") != "update":
            return None, Push.NOT_BOOK  # subscribe/unsubscribe answers, pongs, errors
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
                return None, Push.TICKER
            if channel == BOOK_TICKER_CHANNEL:
                self.book_ticker = GateioBookTicker(str(result["s"]), int(result["t"]), int(result["u"]),
                                                    str(result["b"]), str(result["B"]), str(result["a"]),
                                                    str(result["A"]))
                return None, Push.BOOK_TICKER
            if channel == TRADES_CHANNEL:
                results = result if isinstance(result, list) else [result]
                self.trades = [parse_trade(r) for r in results]
                return None, Push.TRADE
            return None, Push.NOT_BOOK
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
