"""HTX (Huobi) spot order books: whole-book depth pushes, or mbp increments chained by seqNum/prevSeqNum.

Per HTX's docs (ingestors.huobi.config): market.$symbol.depth.step0 pushes the whole book (150
levels) each time, with a "version" that only grows; each push replaces the book, an older version
is stale and ignored, and a lost push loses nothing (the next one is whole). market.$symbol.mbp.$levels
pushes increments {seqNum, prevSeqNum, bids, asks} (size 0 deletes): they are cached until the
snapshot asked with {"req": topic} arrives ({"rep": topic, "data": {seqNum, bids, asks}}); cached
increments with seqNum <= the snapshot's are in it already, the first one applied must have
prevSeqNum == the snapshot's seqNum, and every later prevSeqNum must equal the seqNum before it.
Anything else is a gap: a GapEvent is recorded and only that symbol asks for a new snapshot.
market.$symbol.mbp.refresh.$levels pushes whole books with seqNum. Frames are gzip-compressed JSON;
prices and sizes are JSON numbers, kept as their exact text ("9.121E-7" stays "9.121E-7").
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from ingestors.book import BookError, OrderBook, to_decimal
from ingestors.gaps import GapEvent, GapHow
from ingestors.huobi.config import EXCHANGE, HuobiSymbolError, book_depth, split_channel, ticker_for

__all__ = ["HuobiBbo", "HuobiBook", "HuobiBooks", "HuobiParseError", "HuobiTrade", "Outcome", "decode_frame",
           "load_frame", "parse_trades"]

log = logging.getLogger(__name__)

MAX_BUFFERED_UPDATES = 10_000  # mbp increments cached while waiting for the req snapshot


class HuobiParseError(ValueError):
    """An HTX websocket frame that does not have the documented shape."""


class Outcome(StrEnum):
    REFRESH = "refresh"  # a whole book (depth.stepN, mbp.refresh.N) replaced the book
    SNAPSHOT = "snapshot"  # the req answer of an mbp book was applied (and the cached increments after it)
    BUFFERED = "buffered"  # an mbp increment cached until the snapshot arrives
    DROPPED = "dropped"  # an increment (seqNum) or whole book (version) already in the book
    APPLIED = "applied"  # an mbp increment continued the book
    SEQUENCE_GAP = "sequence_gap"  # prevSeqNum did not continue the book: this symbol asks for a new snapshot
    STALE_SNAPSHOT = "stale_snapshot"  # the req answer is older than the cached increments: ask again
    BBO = "bbo"  # a market.$symbol.bbo push: HuobiBooks.bbo holds it
    TRADE = "trade"  # a trade.detail push: HuobiBooks.trades holds its trades
    PING = "ping"  # {"ping": ts}: the client answers {"pong": ts}
    NOT_BOOK = "not_book"  # sub/unsub answers, errors, other channels


class HuobiTrade(NamedTuple):
    """One trade of a trade.detail push; price and amount are the exchange's number text."""

    symbol: str
    trade_id: str  # "tradeId", HTX's unique trade id
    price: str
    amount: str
    side: str  # "buy" | "sell": the taker's side
    ts_ms: int


class HuobiBbo(NamedTuple):
    """A market.$symbol.bbo push; quote_time_ms is HTX's time of that top."""

    symbol: str
    quote_time_ms: int
    seq_id: int
    bid_price: str
    bid_size: str
    ask_price: str
    ask_size: str


def decode_frame(data: bytes | str) -> str:
    """A websocket frame as text: binary frames are gzip-compressed JSON."""
    if isinstance(data, str):
        return data
    try:
        return gzip.decompress(data).decode()
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise HuobiParseError(f"binary frame that is not gzip-compressed text ({exc}): {data[:60]!r}") from None


def load_frame(data: bytes | str) -> Any:
    """Decode one frame; numbers with a fraction or exponent stay their exact text, integers stay whole."""
    text = decode_frame(data)
    try:
        return json.loads(text, parse_float=str)
    except json.JSONDecodeError as exc:
        raise HuobiParseError(f"not JSON ({exc}): {text[:200]!r}") from None


def _num(value: Any) -> str:
    """A JSON number's exact text (load_frame keeps fractions as text); a string that is no number is refused."""
    if isinstance(value, str):
        try:
            to_decimal(value)
        except BookError:
            raise HuobiParseError(f"not a number: {value!r}") from None
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise HuobiParseError(f"not a number: {value!r}")


def _levels(raw: Any) -> list[list[str]]:
    if raw is None:
        return []
    try:
        return [[_num(level[0]), _num(level[1])] for level in raw]
    except (IndexError, KeyError, TypeError) as exc:
        raise HuobiParseError(f"malformed levels ({type(exc).__name__}: {exc}): {str(raw)[:200]!r}") from None


def parse_trades(msg: Mapping[str, Any]) -> list[HuobiTrade]:
    """The trades of one market.$symbol.trade.detail push, oldest first as sent."""
    try:
        symbol, topic = split_channel(str(msg["ch"]))
        if topic != "trade.detail":
            raise HuobiParseError(f"not a trade.detail push: {msg['ch']!r}")
        return [HuobiTrade(symbol, str(d["tradeId"]), _num(d["price"]), _num(d["amount"]), str(d["direction"]),
                           int(d["ts"])) for d in msg["tick"]["data"]]
    except (KeyError, TypeError, ValueError, HuobiSymbolError) as exc:
        if isinstance(exc, HuobiParseError):
            raise
        raise HuobiParseError(f"malformed trade.detail push ({type(exc).__name__}: {exc}): {str(msg)[:200]!r}") from None


class _Increment(NamedTuple):
    seq_num: int
    prev_seq_num: int
    bids: list[list[str]]
    asks: list[list[str]]
    ts_ms: int
    recv_ns: int


@dataclass
class HuobiBookStats:
    updates_applied: int = 0  # whole-book pushes and mbp increments that changed the book
    refreshes: int = 0  # of which whole books
    snapshots: int = 0  # mbp req answers applied
    dropped: int = 0
    stale_snapshots: int = 0
    sequence_checked: int = 0
    resyncs: int = 0


class HuobiBook:
    """One symbol's book on one book topic (depth.stepN, mbp.N or mbp.refresh.N)."""

    def __init__(self, symbol: str, topic: str, ticker: str, *, on_gap: Callable[[GapEvent], None] | None = None,
                 max_buffer: int = MAX_BUFFERED_UPDATES) -> None:
        depth = book_depth(topic)
        if depth is None:
            raise HuobiSymbolError(f"not an HTX book topic: {topic!r}")
        self.symbol, self.topic, self.ticker = symbol, topic, ticker
        self.kind, levels = depth
        self.book = OrderBook(ticker, depth_limit=levels)
        self.synced = False  # False until a whole book or snapshot arrives, and again after a gap
        self.seq_num: int | None = None  # mbp: seqNum of the book; depth: version of the last push
        self.ts_ms = 0  # HTX's time (ms) of the last push applied
        self.prev_ts_ms = 0  # of the push before it: a push nets the changes of (prev_ts_ms, ts_ms]
        self.stats = HuobiBookStats()
        self.gaps: list[GapEvent] = []
        self._on_gap = on_gap
        self._buffer: deque[_Increment] = deque(maxlen=max_buffer)

    @property
    def wants_snapshot(self) -> bool:
        """True when the live client should send {"req": "market.<symbol>.<topic>"} (mbp books only)."""
        return self.kind == "mbp" and not self.synced and bool(self._buffer)

    def on_whole_book(self, tick: Mapping[str, Any], ts_ms: int) -> Outcome:
        """A depth.stepN (version) or mbp.refresh.N (seqNum) push: the whole book."""
        seq = int(tick["version"] if self.kind == "depth" else tick["seqNum"])
        if self.seq_num is not None and seq <= self.seq_num:
            self.stats.dropped += 1
            return Outcome.DROPPED
        self._replace(tick, seq, ts_ms)
        self.stats.updates_applied += 1
        self.stats.refreshes += 1
        return Outcome.REFRESH

    def on_snapshot(self, data: Mapping[str, Any], recv_ns: int) -> Outcome:
        """The req answer of an mbp book; the cached increments after it are applied."""
        seq = int(data["seqNum"])
        if self._buffer and self._buffer[0].prev_seq_num > seq:
            self.stats.stale_snapshots += 1
            log.info("%s %s: snapshot seqNum %d is older than the cached increments: asking again",
                     self.symbol, self.topic, seq)
            return Outcome.STALE_SNAPSHOT
        self._replace(data, seq, int(data.get("ts", self.ts_ms)))
        self.stats.snapshots += 1
        pending, self._buffer = self._buffer, deque(maxlen=self._buffer.maxlen)
        outcome = Outcome.SNAPSHOT
        for inc in pending:
            if self._increment(inc) is Outcome.SEQUENCE_GAP:
                outcome = Outcome.SEQUENCE_GAP
        return outcome

    def on_update(self, tick: Mapping[str, Any], ts_ms: int, recv_ns: int) -> Outcome:
        """An mbp increment, in the order received."""
        inc = _Increment(int(tick["seqNum"]), int(tick["prevSeqNum"]), _levels(tick.get("bids")),
                         _levels(tick.get("asks")), ts_ms, recv_ns)
        if not self.synced:
            self._buffer.append(inc)
            return Outcome.BUFFERED
        return self._increment(inc)

    def _increment(self, inc: _Increment) -> Outcome:
        if not self.synced:  # a gap earlier in the cached increments: this one waits for the next snapshot
            self._buffer.append(inc)
            return Outcome.BUFFERED
        assert self.seq_num is not None
        if inc.seq_num <= self.seq_num:
            self.stats.dropped += 1
            return Outcome.DROPPED
        self.stats.sequence_checked += 1
        if inc.prev_seq_num != self.seq_num:
            gap = GapEvent(EXCHANGE, self.ticker, inc.recv_ns, GapHow.SEQUENCE_JUMP, last_seen=self.seq_num,
                           next_received=inc.seq_num, detail=f"{self.symbol} {self.topic}: prevSeqNum "
                                                             f"{inc.prev_seq_num} does not continue the book's "
                                                             f"seqNum {self.seq_num}")
            self._gap(gap)
            self._buffer.append(inc)
            return Outcome.SEQUENCE_GAP
        self.book.apply_delta(inc.bids, inc.asks)  # all or nothing (BookError)
        self.seq_num = self.book.update_id = inc.seq_num
        self.prev_ts_ms, self.ts_ms = self.ts_ms, inc.ts_ms
        self.stats.updates_applied += 1
        return Outcome.APPLIED

    def _replace(self, data: Mapping[str, Any], seq: int, ts_ms: int) -> None:
        try:
            self.book.apply_snapshot(_levels(data.get("bids")), _levels(data.get("asks")), seq)
        except BookError:
            self.synced = False  # the old book is gone and the new one unreadable
            raise
        self.synced, self.seq_num = True, seq
        self.prev_ts_ms, self.ts_ms = self.ts_ms, ts_ms

    def _gap(self, gap: GapEvent) -> None:
        log.warning("%s: asking for a new snapshot of this symbol only", gap.detail)
        self.stats.resyncs += 1
        self.gaps.append(gap)
        self.book.clear()
        self.synced = False
        self.seq_num = None
        self._buffer.clear()
        if self._on_gap is not None:
            self._on_gap(gap)

    def on_disconnect(self, recv_ns: int) -> GapEvent | None:
        """The connection dropped: an mbp book cannot know what it missed (a whole-book topic loses nothing)."""
        if not self.synced or self.kind != "mbp":
            self._buffer.clear()
            return None
        self._gap(GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.RECONNECT, last_seen=self.seq_num,
                           detail=f"{self.symbol} {self.topic}: connection lost"))
        return self.gaps[-1]


class HuobiBooks:
    """Every book of one HTX websocket connection, keyed by (symbol, topic); each resyncs on its own."""

    def __init__(self, *, instruments: Mapping[str, Mapping[str, Any]] | None = None,
                 on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.books: dict[tuple[str, str], HuobiBook] = {}
        self.instruments = instruments if instruments is not None else {}  # GET /v1/common/symbols entries
        self.bbo: HuobiBbo | None = None  # the last bbo push
        self.trades: list[HuobiTrade] = []  # the trades of the last trade.detail push
        self.ping: int | None = None  # the last server ping's value, to answer {"pong": ping}
        self._on_gap = on_gap

    def ticker_of(self, symbol: str) -> str:
        return ticker_for(symbol, self.instruments.get(symbol))

    def book_for(self, symbol: str, topic: str) -> HuobiBook:
        book = self.books.get((symbol, topic))
        if book is None:
            book = self.books[(symbol, topic)] = HuobiBook(symbol, topic, self.ticker_of(symbol), on_gap=self._on_gap)
        return book

    def on_frame(self, data: bytes | str, recv_ns: int) -> tuple[HuobiBook | None, Outcome]:
        """Route one frame (gzip bytes as received, or its text) to its book, bbo or trades."""
        msg = load_frame(data)
        if not isinstance(msg, dict):
            raise HuobiParseError(f"not a JSON object: {str(msg)[:200]!r}")
        try:
            if "ping" in msg:
                self.ping = int(msg["ping"])
                return None, Outcome.PING
            if "rep" in msg:
                symbol, topic = split_channel(str(msg["rep"]))
                depth = book_depth(topic)
                if msg.get("status", "ok") != "ok" or depth is None or depth[0] != "mbp":
                    return None, Outcome.NOT_BOOK
                book = self.book_for(symbol, topic)
                return book, book.on_snapshot(msg["data"], recv_ns)
            if "ch" not in msg:
                return None, Outcome.NOT_BOOK  # sub/unsub answers, errors, pongs
            symbol, topic = split_channel(str(msg["ch"]))
            tick, ts_ms = msg["tick"], int(msg.get("ts", 0))
            if topic == "trade.detail":
                self.trades = parse_trades(msg)
                return None, Outcome.TRADE
            if topic == "bbo":
                self.bbo = HuobiBbo(symbol, int(tick["quoteTime"]), int(tick["seqId"]), _num(tick["bid"]),
                                    _num(tick["bidSize"]), _num(tick["ask"]), _num(tick["askSize"]))
                return None, Outcome.BBO
            if book_depth(topic) is None:
                return None, Outcome.NOT_BOOK
            book = self.book_for(symbol, topic)
            if book.kind == "mbp":
                return book, book.on_update(tick, ts_ms, recv_ns)
            return book, book.on_whole_book(tick, ts_ms)
        except (BookError, KeyError, IndexError, TypeError, ValueError, HuobiSymbolError) as exc:
            if isinstance(exc, HuobiParseError):
                raise
            raise HuobiParseError(f"malformed HTX push ({type(exc).__name__}: {exc}): {str(msg)[:200]!r}") from None

    def wanting_snapshot(self) -> list[tuple[str, str]]:
        """(symbol, topic) of every mbp book that should send {"req": "market.<symbol>.<topic>"}."""
        return [key for key, book in self.books.items() if book.wants_snapshot]

    def on_disconnect(self, recv_ns: int) -> list[GapEvent]:
        """Every mbp book on the connection waits for a new snapshot; returns the gaps of those that were synced."""
        return [g for book in self.books.values() if (g := book.on_disconnect(recv_ns)) is not None]

    @property
    def gaps(self) -> list[GapEvent]:
        return [g for book in self.books.values() for g in book.gaps]
