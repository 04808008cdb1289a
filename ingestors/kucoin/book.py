"""KuCoin spot level2 order books: a REST snapshot with its sequence, then buffered l2updates chained by sequence.

Per KuCoin's docs (Level2 Market Data): subscribe "/market/level2:{symbol}" and buffer its
trade.l2update pushes; GET /api/v1/market/orderbook/level2_{20,100} (or the full
/api/v3/market/orderbook/level2) answers {sequence, bids, asks}; replay the buffer dropping
every change whose sequence is at or below the book's; from then on each push's
sequenceStart must be at most the book's sequence + 1. Each change is [price, size,
sequence]: price "0" only moves the sequence on, size "0" removes the price, anything else
sets it. A jump is a gap: a GapEvent is recorded and only that symbol fetches a new snapshot
(the push that revealed it is buffered for it). A snapshot older than the buffer's first push
is stale: another one is needed.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

from ingestors.book import BookError, OrderBook, to_decimal
from ingestors.gaps import GapEvent, GapHow
from ingestors.kucoin.config import (
    EXCHANGE,
    L2_SUBJECT,
    MATCH_SUBJECT,
    MAX_BUFFERED,
    NO_PRICE,
    OK_CODE,
    TICKER_SUBJECT,
    KucoinSymbolError,
    ticker_for,
)

__all__ = ["KucoinBook", "KucoinBooks", "KucoinParseError", "KucoinTicker", "KucoinTrade", "Outcome", "parse_trade"]

log = logging.getLogger(__name__)


class KucoinParseError(ValueError):
    """A KuCoin websocket frame or REST answer that does not have the documented shape."""


class Outcome(StrEnum):
    SNAPSHOT = "snapshot"  # snapshot applied (and the buffer replayed onto it)
    STALE_SNAPSHOT = "stale_snapshot"  # older than the buffered pushes: fetch another
    APPLIED = "applied"
    DROPPED = "dropped"  # every change at or below the book's sequence
    BUFFERED = "buffered"  # kept until the symbol's snapshot arrives
    SEQUENCE_GAP = "sequence_gap"  # sequenceStart past the book's sequence + 1: fetch a new snapshot
    TICKER = "ticker"  # KucoinBooks.ticker holds its best bid/ask
    TRADE = "trade"  # KucoinBooks.trade holds the match
    NOT_BOOK = "not_book"  # welcome, ack, pong, candles


class KucoinTicker(NamedTuple):
    """Best bid/ask of one trade.ticker push, strings as KuCoin sent them."""

    symbol: str
    sequence: int
    time_ms: int
    bid_price: str
    bid_size: str
    ask_price: str
    ask_size: str


class KucoinTrade(NamedTuple):
    """One trade.l3match push, strings as KuCoin sent them; side is the taker's."""

    symbol: str
    trade_id: str
    sequence: int
    time_ns: int
    price: str
    size: str
    side: str


def parse_trade(data: Mapping[str, Any]) -> KucoinTrade:
    """The data of a trade.l3match push -> KucoinTrade (price and size exactly KuCoin's strings)."""
    try:
        price, size, side = data["price"], data["size"], data["side"]
        if not isinstance(price, str) or not isinstance(size, str) or side not in ("buy", "sell"):
            raise KucoinParseError(f"match with price {price!r}, size {size!r}, side {side!r}")
        if to_decimal(price) <= 0 or to_decimal(size) <= 0:
            raise KucoinParseError(f"match with price {price} and size {size}")
        return KucoinTrade(data["symbol"], data["tradeId"], int(data["sequence"]), int(data["time"]), price, size, side)
    except (KeyError, TypeError, ValueError, BookError) as exc:
        if isinstance(exc, KucoinParseError):
            raise
        raise KucoinParseError(f"malformed match ({type(exc).__name__}: {exc}): {dict(data)!r}") from None


@dataclass
class KucoinBookStats:
    updates_applied: int = 0
    snapshots: int = 0
    stale_snapshots: int = 0
    changes_applied: int = 0
    no_price_changes: int = 0  # price "0": sequence only
    dropped: int = 0  # pushes wholly at or below the book's sequence
    resyncs: int = 0


class KucoinBook:
    """One symbol's level2 book."""

    def __init__(self, symbol: str, *, on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.symbol = symbol
        self.ticker = ticker_for(symbol)
        self.book = OrderBook(self.ticker)
        self.synced = False  # False until a snapshot arrives, and again after a gap
        self.seq = 0  # sequence the book reflects
        self.stats = KucoinBookStats()
        self.gaps: list[GapEvent] = []
        self._buffer: deque[tuple[Mapping[str, Any], int]] = deque(maxlen=MAX_BUFFERED)
        self._on_gap = on_gap

    @property
    def wants_snapshot(self) -> bool:
        return not self.synced

    def on_update(self, data: Mapping[str, Any], recv_ns: int) -> Outcome:
        if not self.synced:
            self._buffer.append((data, recv_ns))
            return Outcome.BUFFERED
        return self._apply(data, recv_ns)

    def on_snapshot(self, data: Mapping[str, Any], recv_ns: int) -> Outcome:
        """A REST snapshot {sequence, bids, asks}; the buffered pushes are replayed onto it."""
        seq = int(data["sequence"])
        if self._buffer and int(self._buffer[0][0]["sequenceStart"]) > seq + 1:
            self.stats.stale_snapshots += 1
            return Outcome.STALE_SNAPSHOT
        self.book.apply_snapshot(data["bids"], data["asks"], update_id=seq)
        self.seq, self.synced = seq, True
        self.stats.snapshots += 1
        buffered, self._buffer = list(self._buffer), deque(maxlen=MAX_BUFFERED)
        for n, (update, at_ns) in enumerate(buffered):
            if self._apply(update, at_ns) is Outcome.SEQUENCE_GAP:
                self._buffer.extend(buffered[n + 1:])
                return Outcome.SEQUENCE_GAP
        return Outcome.SNAPSHOT

    def _apply(self, data: Mapping[str, Any], recv_ns: int) -> Outcome:
        start, end = int(data["sequenceStart"]), int(data["sequenceEnd"])
        if end <= self.seq:
            self.stats.dropped += 1
            return Outcome.DROPPED
        if start > self.seq + 1:
            self._gap(GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.SEQUENCE_JUMP, last_seen=self.seq,
                               first_missing=self.seq + 1, next_received=start,
                               detail=f"{self.symbol} level2: sequenceStart {start} after the book's {self.seq}"))
            self._buffer.append((data, recv_ns))
            return Outcome.SEQUENCE_GAP
        changes = sorted((int(c[2]), is_bid, c[0], c[1]) for is_bid, side in ((True, "bids"), (False, "asks"))
                         for c in data["changes"][side])
        levels = [(is_bid, price, size) for seq, is_bid, price, size in changes if seq > self.seq]
        self.stats.no_price_changes += sum(price == NO_PRICE for _, price, _ in levels)
        bids = [(p, s) for is_bid, p, s in levels if is_bid and p != NO_PRICE]
        asks = [(p, s) for is_bid, p, s in levels if not is_bid and p != NO_PRICE]
        self.stats.changes_applied += self.book.apply_delta(bids, asks)  # all or nothing (BookError)
        self.seq = self.book.update_id = end
        self.stats.updates_applied += 1
        return Outcome.APPLIED

    def _gap(self, gap: GapEvent) -> None:
        log.warning("%s: fetching a new snapshot for this symbol only", gap.detail)
        self.stats.resyncs += 1
        self.gaps.append(gap)
        self.book.clear()
        self.synced = False
        self.seq = 0
        self._buffer.clear()
        if self._on_gap is not None:
            self._on_gap(gap)

    def on_disconnect(self, recv_ns: int) -> GapEvent | None:
        """The connection dropped: a synced book cannot know what it missed; it waits for a new snapshot."""
        if not self.synced:
            self._buffer.clear()
            return None
        self._gap(GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.RECONNECT, last_seen=self.seq,
                           detail=f"{self.symbol} level2: connection lost"))
        return self.gaps[-1]


class KucoinBooks:
    """Every level2 book of one websocket connection, keyed by symbol; each resyncs on its own."""

    def __init__(self, *, on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.books: dict[str, KucoinBook] = {}
        self.ticker: KucoinTicker | None = None  # the last trade.ticker push
        self.trade: KucoinTrade | None = None  # the last trade.l3match push
        self._on_gap = on_gap

    def book_for(self, symbol: str) -> KucoinBook:
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = KucoinBook(symbol, on_gap=self._on_gap)
        return book

    def on_frame(self, text: str | bytes, recv_ns: int) -> tuple[KucoinBook | None, Outcome]:
        """Route one frame: l2updates to their symbol's book; tickers set `ticker`, matches `trade`."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise KucoinParseError(f"not JSON ({exc}): {text[:200]!r}") from None
        if not isinstance(msg, dict) or msg.get("type") != "message":
            return None, Outcome.NOT_BOOK  # welcome, ack, pong, error
        try:
            subject, data = msg["subject"], msg["data"]
            if subject == L2_SUBJECT:
                book = self.book_for(data["symbol"])
                return book, book.on_update(data, recv_ns)
            if subject == TICKER_SUBJECT:
                symbol = msg["topic"].partition(":")[2]
                self.ticker = KucoinTicker(symbol, int(data["sequence"]), int(data["time"]), data["bestBid"],
                                           data["bestBidSize"], data["bestAsk"], data["bestAskSize"])
                return None, Outcome.TICKER
            if subject == MATCH_SUBJECT:
                self.trade = parse_trade(data)
                return None, Outcome.TRADE
            return None, Outcome.NOT_BOOK
        except (BookError, KeyError, IndexError, TypeError, ValueError, KucoinSymbolError) as exc:
            if isinstance(exc, KucoinParseError):
                raise
            raise KucoinParseError(f"malformed KuCoin push ({type(exc).__name__}: {exc}): {text[:200]!r}") from None

    def on_snapshot(self, symbol: str, body: str | bytes, recv_ns: int) -> tuple[KucoinBook, Outcome]:
        """A REST order-book answer {"code": "200000", "data": {sequence, bids, asks}} for `symbol`."""
        try:
            msg = orjson.loads(body)
            if msg.get("code") != OK_CODE:
                raise KucoinParseError(f"{symbol} snapshot: KuCoin error {msg.get('code')}: {msg.get('msg')}")
            book = self.book_for(symbol)
            return book, book.on_snapshot(msg["data"], recv_ns)
        except (orjson.JSONDecodeError, BookError, KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, KucoinParseError):
                raise
            raise KucoinParseError(f"malformed KuCoin snapshot ({type(exc).__name__}: {exc}): {body[:200]!r}") from None

    def wanting_snapshot(self) -> list[str]:
        """Symbols whose book waits for a (new) REST snapshot."""
        return [symbol for symbol, book in self.books.items() if book.wants_snapshot]

    def on_disconnect(self, recv_ns: int) -> list[GapEvent]:
        return [g for book in self.books.values() if (g := book.on_disconnect(recv_ns)) is not None]

    @property
    def gaps(self) -> list[GapEvent]:
        return [g for book in self.books.values() for g in book.gaps]
