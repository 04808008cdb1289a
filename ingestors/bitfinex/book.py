"""Bitfinex websocket v2 order books (book channel, P0): snapshot then levels, checked by sequence and CRC32.

Per Bitfinex's docs (Books, WebSocket Checksum, Configuration): {"event": "subscribed",
"channel": "book", "chanId": N, "symbol": ..., "len": ...} names a channel; its first frame
[N, [[PRICE, COUNT, AMOUNT], ...]] is the snapshot, then [N, [PRICE, COUNT, AMOUNT]] sets one
level (AMOUNT > 0 a bid, < 0 an ask; COUNT 0 deletes it, AMOUNT 1 or -1 naming the side).
[N, "hb"] is a heartbeat. With OB_CHECKSUM, [N, "cs", checksum] carries a signed CRC32 of the
top 25 levels interleaved "bidPrice:bidAmount:askPrice:askAmount:..." (a shorter side ends
early, ask amounts negative): a mismatch is a gap, and only that symbol resubscribes (a new
chanId). With SEQ_ALL, every channel frame of the connection ends with one sequence number
counting all channels: a jump says a frame was lost but not whose, so every book of the
connection resyncs.

Numbers are JSON numbers; each is kept as the exact text Bitfinex sent ("2e-8" stays "2e-8"):
that is what the checksum is computed from and what trades carry.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from ingestors.bitfinex.config import (
    BOOK_CHANNEL,
    CHECKSUM,
    CHECKSUM_LEVELS,
    DEFAULT_BOOK_LEN,
    EXCHANGE,
    FLAG_SEQ_ALL,
    HEARTBEAT,
    TICKER_CHANNEL,
    TRADE_EXECUTED,
    TRADE_UPDATED,
    TRADES_CHANNEL,
    BitfinexSymbolError,
    ticker_for,
)
from ingestors.book import BookError, OrderBook, to_decimal
from ingestors.gaps import GapEvent, GapHow

__all__ = ["BitfinexBook", "BitfinexBooks", "BitfinexParseError", "BitfinexTicker", "BitfinexTrade", "Outcome",
           "book_checksum", "load_frame", "parse_trade"]

log = logging.getLogger(__name__)


class BitfinexParseError(ValueError):
    """A Bitfinex websocket frame that does not have the documented shape."""


class Outcome(StrEnum):
    SNAPSHOT = "snapshot"
    APPLIED = "applied"  # one level set or deleted
    CHECKSUM = "checksum"  # a "cs" frame that matched our book
    CHECKSUM_FAILED = "checksum_failed"  # our book disagrees with Bitfinex's checksum: resubscribe this symbol
    SEQUENCE_GAP = "sequence_gap"  # the connection's sequence jumped: every book resubscribes
    SKIPPED = "skipped"  # book frame for a book that waits for a fresh snapshot
    HEARTBEAT = "heartbeat"
    TICKER = "ticker"  # BitfinexBooks.ticker holds its best bid/ask
    TRADES = "trades"  # BitfinexBooks.trades holds the frame's trades
    NOT_BOOK = "not_book"  # events, "tu" repeats, frames of channels not (yet) subscribed


class BitfinexTicker(NamedTuple):
    """Best bid/ask of one ticker frame, the numbers' text as Bitfinex sent it."""

    symbol: str
    bid_price: str
    bid_size: str
    ask_price: str
    ask_size: str


class BitfinexTrade(NamedTuple):
    """One trade [ID, MTS, AMOUNT, PRICE]: size is AMOUNT's text without its sign, side the taker's."""

    symbol: str
    trade_id: str
    mts: int
    price: str
    size: str
    side: str  # "buy" (AMOUNT > 0) or "sell"


def load_frame(text: str | bytes) -> Any:
    """JSON with every number kept as its exact text."""
    try:
        return json.loads(text, parse_float=str, parse_int=str)
    except ValueError as exc:
        raise BitfinexParseError(f"not JSON ({exc}): {text[:200]!r}") from None


def parse_trade(symbol: str, row: Sequence[Any]) -> BitfinexTrade:
    """[ID, MTS, AMOUNT, PRICE] (numbers as text) -> BitfinexTrade."""
    if not isinstance(row, list) or len(row) != 4 or not all(isinstance(x, str) for x in row):
        raise BitfinexParseError(f"{symbol}: not a trade [ID, MTS, AMOUNT, PRICE]: {row!r}")
    trade_id, mts, amount, price = row
    sign = to_decimal(amount)
    if sign == 0 or to_decimal(price) <= 0:
        raise BitfinexParseError(f"{symbol}: trade {trade_id} with amount {amount} at price {price}")
    return BitfinexTrade(symbol, trade_id, int(mts), price, amount.lstrip("-"), "buy" if sign > 0 else "sell")


def book_checksum(book: OrderBook, levels: int = CHECKSUM_LEVELS) -> int:
    """Bitfinex's signed CRC32 of the top `levels` bids and asks, interleaved, asks' amounts negative."""
    bids, asks = book.top(levels)
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        if i < len(bids):
            parts += (bids[i].price, bids[i].size)
        if i < len(asks):
            parts += (asks[i].price, "-" + asks[i].size)
    value = zlib.crc32(":".join(parts).encode("ascii"))
    return value - (1 << 32) if value >= 1 << 31 else value


def _levels(rows: Sequence[Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Snapshot rows [PRICE, COUNT, AMOUNT] -> (bids, asks) of (price, unsigned amount)."""
    bids: list[tuple[str, str]] = []
    asks: list[tuple[str, str]] = []
    for row in rows:
        price, _count, amount = row
        (asks if amount.startswith("-") else bids).append((price, amount.lstrip("-")))
    return bids, asks


@dataclass
class BitfinexBookStats:
    updates_applied: int = 0
    snapshots: int = 0
    heartbeats: int = 0
    checksum_checked: int = 0
    checksum_failures: int = 0
    skipped: int = 0
    resyncs: int = 0
    unreadable: int = 0  # book frames that could not be read (each costs the book a fresh snapshot)


class BitfinexBook:
    """One symbol's book on one connection (each resubscription gives it a new chanId)."""

    def __init__(self, symbol: str, depth: int = DEFAULT_BOOK_LEN, *,
                 on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.symbol = symbol
        self.ticker = ticker_for(symbol)
        self.book = OrderBook(self.ticker, depth_limit=depth)
        self.chan_id: int | None = None
        self.synced = False  # False until a snapshot arrives, and again after a gap
        self.seq: int | None = None  # connection sequence of the last frame applied (None without SEQ_ALL)
        self.stats = BitfinexBookStats()
        self.gaps: list[GapEvent] = []
        self._on_gap = on_gap

    @property
    def wants_resubscribe(self) -> bool:
        """True when the live client should unsubscribe and subscribe this symbol again (a fresh snapshot)."""
        return not self.synced and self.stats.snapshots + self.stats.unreadable > 0

    def _unreadable(self, recv_ns: int, what: str, exc: Exception) -> BitfinexParseError:
        """A book frame this book cannot read: a synced book has lost what it changed (a gap); either way it needs a
        fresh snapshot. Returns the error to raise."""
        self.stats.unreadable += 1
        detail = f"{self.symbol} book: unreadable {what} ({type(exc).__name__}: {exc})"
        if self.synced:
            self.gap(GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.UNREADABLE, last_seen=self.seq, detail=detail))
        else:
            self.book.clear()
        return BitfinexParseError(detail)

    def on_snapshot(self, rows: Sequence[Any], seq: int | None, recv_ns: int = 0) -> Outcome:
        try:
            self.book.apply_snapshot(*_levels(rows), update_id=seq or 0)
        except (BookError, ValueError, TypeError) as exc:
            raise self._unreadable(recv_ns, "snapshot", exc) from None
        self.synced, self.seq = True, seq
        self.stats.snapshots += 1
        return Outcome.SNAPSHOT

    def on_level(self, row: Sequence[Any], seq: int | None, recv_ns: int = 0) -> Outcome:
        if not self.synced:
            self.stats.skipped += 1
            return Outcome.SKIPPED
        try:
            price, count, amount = row
            is_bid = not amount.startswith("-")
            if int(count) > 0:
                if to_decimal(amount) == 0:
                    raise BookError(f"{self.symbol}: level {price} with count {count} and amount 0")
                self.book.set_level(is_bid, price, amount.lstrip("-"))
            else:
                self.book.set_level(is_bid, price, "0")
        except (BookError, ValueError, TypeError, AttributeError) as exc:
            raise self._unreadable(recv_ns, "level", exc) from None
        self.seq = seq
        self.book.update_id = seq or 0
        self.stats.updates_applied += 1
        return Outcome.APPLIED

    def on_checksum(self, theirs: int, recv_ns: int) -> Outcome:
        if not self.synced:
            self.stats.skipped += 1
            return Outcome.SKIPPED
        self.stats.checksum_checked += 1
        ours = book_checksum(self.book)
        if ours == theirs:
            return Outcome.CHECKSUM
        self.stats.checksum_failures += 1
        self.gap(GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.CHECKSUM_MISMATCH, last_seen=self.seq,
                          detail=f"{self.symbol} book: Bitfinex checksum {theirs}, our book's {ours}"))
        return Outcome.CHECKSUM_FAILED

    def gap(self, gap: GapEvent) -> None:
        """The book is unproven: record the gap and wait for a fresh snapshot (a resubscription)."""
        log.warning("%s: resubscribing", gap.detail)
        self.stats.resyncs += 1
        self.gaps.append(gap)
        self.book.clear()
        self.synced = False
        self.seq = None
        if self._on_gap is not None:
            self._on_gap(gap)

    def on_disconnect(self, recv_ns: int) -> GapEvent | None:
        """The connection dropped: a synced book cannot know what it missed; it waits for a new snapshot."""
        if not self.synced:
            return None
        self.gap(GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.RECONNECT, last_seen=self.seq,
                          detail=f"{self.symbol} book: connection lost"))
        return self.gaps[-1]


class BitfinexBooks:
    """Every channel of one public websocket connection: books by symbol, tickers and trades."""

    def __init__(self, *, on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.books: dict[str, BitfinexBook] = {}  # by Bitfinex symbol
        self.channels: dict[int, tuple[str, str]] = {}  # chanId -> (channel, symbol)
        self.flags = 0  # conf flags in force (from Bitfinex's "conf" answer)
        self.seq: int | None = None  # the connection's last SEQ_ALL number
        self.ticker: BitfinexTicker | None = None  # the last ticker frame
        self.trades: list[BitfinexTrade] = []  # the last trades frame's trades
        self._on_gap = on_gap

    def on_frame(self, text: str | bytes, recv_ns: int) -> tuple[BitfinexBook | None, Outcome]:
        """Route one frame; a sequence jump makes every book a gap before the frame itself is applied."""
        msg = load_frame(text)
        try:
            if isinstance(msg, dict):
                return None, self._event(msg)
            if not isinstance(msg, list) or len(msg) < 2:
                raise BitfinexParseError("not an event or a channel frame")
            seq, jumped = None, False
            if self.flags & FLAG_SEQ_ALL:
                seq, msg = int(msg[-1]), msg[:-1]
                jumped = self.seq is not None and seq != self.seq + 1
                if jumped:
                    self._sequence_gap(seq, recv_ns)
                self.seq = seq
            book, outcome = self._channel_frame(int(msg[0]), msg[1:], seq, recv_ns)
            return book, Outcome.SEQUENCE_GAP if jumped and outcome is not Outcome.SNAPSHOT else outcome
        except (BookError, KeyError, IndexError, TypeError, ValueError, BitfinexSymbolError) as exc:
            if isinstance(exc, BitfinexParseError):
                raise BitfinexParseError(f"{exc}: {text[:200]!r}") from None
            raise BitfinexParseError(f"malformed Bitfinex frame ({type(exc).__name__}: {exc}): {text[:200]!r}") from None

    def _event(self, msg: dict[str, Any]) -> Outcome:
        event = msg.get("event")
        if event == "conf" and msg.get("status") == "OK":
            self.flags = int(msg.get("flags", 0))
        elif event == "subscribed":
            chan_id, channel, symbol = int(msg["chanId"]), str(msg["channel"]), str(msg["symbol"])
            self.channels[chan_id] = (channel, symbol)
            if channel == BOOK_CHANNEL:
                book = self.books.get(symbol)
                if book is None:
                    depth = int(msg.get("len", DEFAULT_BOOK_LEN))
                    book = self.books[symbol] = BitfinexBook(symbol, depth, on_gap=self._on_gap)
                book.chan_id = chan_id
        elif event == "unsubscribed":
            self.channels.pop(int(msg.get("chanId", -1)), None)
        return Outcome.NOT_BOOK

    def _channel_frame(self, chan_id: int, body: list[Any], seq: int | None,
                       recv_ns: int) -> tuple[BitfinexBook | None, Outcome]:
        key = self.channels.get(chan_id)
        if key is None:  # Bitfinex can send a channel's heartbeats before its "subscribed" answer
            return None, Outcome.NOT_BOOK
        channel, symbol = key
        payload = body[0]
        if payload == HEARTBEAT:
            if channel == BOOK_CHANNEL:
                self.books[symbol].stats.heartbeats += 1
            return None, Outcome.HEARTBEAT
        if channel == BOOK_CHANNEL:
            book = self.books[symbol]
            if payload == CHECKSUM:
                return book, book.on_checksum(int(body[1]), recv_ns)
            if not isinstance(payload, list) or len(body) != 1:
                raise BitfinexParseError(f"{symbol} book: unknown frame")
            if not payload or isinstance(payload[0], list):
                if not all(isinstance(r, list) and len(r) == 3 for r in payload):
                    raise BitfinexParseError(f"{symbol} book: snapshot rows are not [PRICE, COUNT, AMOUNT]")
                return book, book.on_snapshot(payload, seq, recv_ns)
            if len(payload) != 3:
                raise BitfinexParseError(f"{symbol} book: level is not [PRICE, COUNT, AMOUNT]")
            return book, book.on_level(payload, seq, recv_ns)
        if channel == TICKER_CHANNEL and isinstance(payload, list):
            self.ticker = BitfinexTicker(symbol, *payload[:4])
            return None, Outcome.TICKER
        if channel == TRADES_CHANNEL:
            if payload == TRADE_EXECUTED:
                self.trades = [parse_trade(symbol, body[1])]
            elif payload == TRADE_UPDATED:  # the same trade again, once settled
                return None, Outcome.NOT_BOOK
            elif isinstance(payload, list):
                self.trades = [parse_trade(symbol, row) for row in payload]
            else:
                raise BitfinexParseError(f"{symbol} trades: unknown frame")
            return None, Outcome.TRADES
        return None, Outcome.NOT_BOOK

    def _sequence_gap(self, seq: int, recv_ns: int) -> None:
        for book in self.books.values():
            if book.synced:
                book.gap(GapEvent(
                    EXCHANGE, book.ticker, recv_ns, GapHow.SEQUENCE_JUMP, last_seen=self.seq,
                    first_missing=None if self.seq is None else self.seq + 1, next_received=seq,
                    detail=f"{book.symbol} book: connection sequence {seq} after {self.seq}; the lost frame may be "
                           "this channel's"))

    def wanting_resubscribe(self) -> list[str]:
        """Symbols of every book that lost sync and needs a fresh snapshot."""
        return [symbol for symbol, book in self.books.items() if book.wants_resubscribe]

    def on_disconnect(self, recv_ns: int) -> list[GapEvent]:
        """Every book waits for a new snapshot (on a new connection); returns the gaps of those that were synced."""
        self.channels.clear()
        self.seq = None
        return [g for book in self.books.values() if (g := book.on_disconnect(recv_ns)) is not None]

    @property
    def gaps(self) -> list[GapEvent]:
        return [g for book in self.books.values() for g in book.gaps]
