"""Bybit v5 orderbook.N books: snapshot then deltas, continuity by the update id "u", restarts by "u" = 1.

Per Bybit's docs (v5 websocket, Orderbook): subscribing gives a snapshot, then deltas of
changed levels (size "0" deletes). Every snapshot replaces the book, whatever its u: after
a service restart Bybit re-sends a snapshot with u = 1, which must overwrite the local book
(it is a reset, not a gap). A delta must carry u = previous u + 1; a delta with u at or
below the book's u is a repeat and ignored; a larger jump, or a delta with u = 1 (a restart
announced without a snapshot), is a gap: a GapEvent is recorded and only that topic
resubscribes. "seq" is the cross sequence of the matching engine; it is kept per book
(`cross_seq`) because the tickers stream's "cs" is on the same scale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

from ingestors.book import BookError, OrderBook
from ingestors.bybit.config import (
    EXCHANGE,
    RESTART_UPDATE_ID,
    TICKER_BBO_FIELDS,
    BybitSymbolError,
    book_depth,
    ticker_for,
)
from ingestors.gaps import GapEvent, GapHow
from ingestors.live.adapter import excerpt

__all__ = ["BybitBook", "BybitBooks", "BybitParseError", "BybitTicker", "Outcome"]

log = logging.getLogger(__name__)


class BybitParseError(ValueError):
    """A Bybit websocket frame that does not have the documented shape."""


class Outcome(StrEnum):
    SNAPSHOT = "snapshot"
    RESTART = "restart"  # a snapshot with u = 1 replaced a live book (Bybit restarted its service)
    APPLIED = "applied"
    IGNORED_OLD = "ignored_old"  # a delta at or below the book's u
    GAP = "gap"  # u did not continue the book: resubscribe this topic
    SKIPPED = "skipped"  # delta for a book that waits for a snapshot
    TICKER = "ticker"  # a tickers push with top-of-book fields: BybitBooks.ticker holds the merged state
    NOT_BOOK = "not_book"  # op answers, trades, klines, tickers without bid1/ask1 (spot)


class BybitTicker(NamedTuple):
    """Best bid/ask of a symbol after a tickers push (deltas merged into the last snapshot), strings as sent."""

    symbol: str
    cross_seq: int  # "cs"
    ts_ms: int
    bid_price: str
    bid_size: str
    ask_price: str
    ask_size: str


@dataclass
class BybitBookStats:
    updates_applied: int = 0
    snapshots: int = 0
    restarts: int = 0
    ignored_old: int = 0
    skipped: int = 0
    resyncs: int = 0
    unreadable: int = 0  # messages that could not be read (each costs the book a fresh snapshot)


class BybitBook:
    """One symbol's book on one orderbook.<depth> topic of one category."""

    def __init__(self, symbol: str, depth: int, ticker: str, *, on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.symbol = symbol
        self.depth = depth
        self.ticker = ticker
        self.book = OrderBook(ticker, depth_limit=depth)  # update_id is Bybit's u
        self.cross_seq = 0  # "seq" of the last message applied
        self.prev_cross_seq = 0  # "seq" of the message before it: the book's state covers (prev_cross_seq, cross_seq]
        self.synced = False
        self.stats = BybitBookStats()
        self.gaps: list[GapEvent] = []
        self._on_gap = on_gap

    @property
    def wants_resubscribe(self) -> bool:
        return not self.synced and self.stats.snapshots + self.stats.unreadable > 0

    def _unreadable(self, recv_ns: int, what: str, exc: Exception) -> BybitParseError:
        """A message this book cannot read: a synced book has lost what it changed (a gap); either way it needs a
        fresh snapshot. Returns the error to raise."""
        self.stats.unreadable += 1
        detail = f"{self.symbol} orderbook.{self.depth}: unreadable {what} ({type(exc).__name__}: {exc})"
        if self.synced:
            self._lose_sync(GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.UNREADABLE, last_seen=self.book.update_id,
                                     first_missing=self.book.update_id + 1, detail=detail))
        else:
            self.book.clear()
        return BybitParseError(detail)

    def on_message(self, kind: str, data: Mapping[str, Any], recv_ns: int) -> Outcome:
        """One orderbook message: kind is its "type" ("snapshot" | "delta"), data its "data" object."""
        u, seq = int(data["u"]), int(data["seq"])
        if kind == "snapshot":
            restart = self.synced and u == RESTART_UPDATE_ID
            try:
                self.book.apply_snapshot(data["b"], data["a"], u)
            except (BookError, KeyError, TypeError) as exc:
                raise self._unreadable(recv_ns, "snapshot", exc) from None
            self.synced = True
            self.stats.snapshots += 1
            self._advance(seq)
            if restart:
                self.stats.restarts += 1
                log.info("%s orderbook.%d: Bybit restarted (u = 1): book replaced by the new snapshot",
                         self.symbol, self.depth)
                return Outcome.RESTART
            return Outcome.SNAPSHOT
        if kind != "delta":
            raise BybitParseError(f"{self.symbol}: unknown orderbook message type {kind!r}")
        if not self.synced:
            self.stats.skipped += 1
            return Outcome.SKIPPED
        last = self.book.update_id
        if u == RESTART_UPDATE_ID or u > last + 1:
            what = "a delta with u = 1 (service restart without a snapshot)" if u == RESTART_UPDATE_ID else f"u {u}"
            gap = GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.SEQUENCE_JUMP, last_seen=last, first_missing=last + 1,
                           next_received=u, detail=f"{self.symbol} orderbook.{self.depth}: {what} after u {last}")
            self._lose_sync(gap)
            return Outcome.GAP
        if u <= last:
            self.stats.ignored_old += 1
            return Outcome.IGNORED_OLD
        try:
            self.book.apply_delta(data["b"], data["a"])  # all or nothing
        except (BookError, KeyError, TypeError) as exc:
            raise self._unreadable(recv_ns, "delta", exc) from None
        self.book.update_id = u
        self._advance(seq)
        self.stats.updates_applied += 1
        return Outcome.APPLIED

    def _advance(self, seq: int) -> None:
        self.prev_cross_seq, self.cross_seq = self.cross_seq, seq

    def _lose_sync(self, gap: GapEvent) -> None:
        if gap.how != GapHow.RECONNECT:  # a lost connection resubscribes everything
            log.warning("%s: resubscribing this topic only", gap.detail)
        self.stats.resyncs += 1
        self.gaps.append(gap)
        self.book.clear()
        self.synced = False
        self.cross_seq = self.prev_cross_seq = 0
        if self._on_gap is not None:
            self._on_gap(gap)

    def on_disconnect(self, recv_ns: int) -> GapEvent | None:
        """The connection dropped: a synced book waits for the snapshot of the new subscription."""
        if not self.synced:
            return None
        self._lose_sync(GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.RECONNECT, last_seen=self.book.update_id,
                                 detail=f"{self.symbol} orderbook.{self.depth}: connection lost"))
        return self.gaps[-1]


class BybitBooks:
    """Every book of one public websocket connection (one category), keyed by topic; each resyncs on its own."""

    def __init__(self, category: str, *, instruments: Mapping[str, Mapping[str, Any]] | None = None,
                 on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.category = category
        self.books: dict[str, BybitBook] = {}
        self.ticker: BybitTicker | None = None  # the top of book after the last tickers push that changed it
        self._tops: dict[str, dict[str, str]] = {}  # symbol -> merged bid1/ask1 fields
        self._instruments = instruments or {}
        self._tickers: dict[str, str] = {}
        self._on_gap = on_gap

    def ticker_of(self, symbol: str) -> str:
        ticker = self._tickers.get(symbol)  # every trade maps its symbol: once per symbol is enough
        if ticker is None:
            ticker = self._tickers[symbol] = ticker_for(symbol, self.category, self._instruments.get(symbol))
        return ticker

    def on_frame(self, text: str | bytes, recv_ns: int) -> tuple[BybitBook | None, Outcome]:
        """Route one frame: orderbook messages change their topic's book; tickers update `ticker`."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise BybitParseError(f"not JSON ({exc}): {text[:200]!r}") from None
        return self.on_message(msg, recv_ns)

    def on_message(self, msg: Any, recv_ns: int) -> tuple[BybitBook | None, Outcome]:
        """on_frame for a frame already decoded (the live adapter decodes each frame once)."""
        topic = msg.get("topic") if isinstance(msg, dict) else None
        if not isinstance(topic, str):
            return None, Outcome.NOT_BOOK  # {"op": "subscribe" | "pong", "success": ...}
        try:
            if topic.startswith("orderbook."):
                book = self.books.get(topic)
                if book is None:  # the topic is read once, when its book is made
                    depth, symbol = book_depth(self.category, topic)
                    book = self.books[topic] = BybitBook(symbol, depth, self.ticker_of(symbol), on_gap=self._on_gap)
                return book, book.on_message(msg["type"], msg["data"], recv_ns)
            if topic.startswith("tickers."):
                return None, self._on_ticker(msg)
        except (BookError, BybitSymbolError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, BybitParseError):
                raise
            raise BybitParseError(f"malformed Bybit {topic} message ({type(exc).__name__}: {exc}): {excerpt(msg)}") from None
        return None, Outcome.NOT_BOOK

    def _on_ticker(self, msg: Mapping[str, Any]) -> Outcome:
        data = msg["data"]
        symbol = str(data["symbol"])
        changed = {k: str(data[k]) for k in TICKER_BBO_FIELDS if k in data}
        if msg["type"] == "snapshot":
            self._tops[symbol] = changed
        elif symbol in self._tops:
            self._tops[symbol].update(changed)
        top = self._tops.get(symbol, {})
        if not changed or len(top) < len(TICKER_BBO_FIELDS):
            return Outcome.NOT_BOOK
        # "cs" (cross sequence) is documented for spot/linear/inverse tickers; 0 where a category sends none
        self.ticker = BybitTicker(symbol, int(msg.get("cs") or 0), int(msg["ts"]), *(top[k] for k in TICKER_BBO_FIELDS))
        return Outcome.TICKER

    def wanting_resubscribe(self) -> list[str]:
        """Topics whose book lost sync and needs a fresh snapshot."""
        return [topic for topic, book in self.books.items() if book.wants_resubscribe]

    def on_disconnect(self, recv_ns: int) -> list[GapEvent]:
        self._tops.clear()
        return [g for book in self.books.values() if (g := book.on_disconnect(recv_ns)) is not None]

    @property
    def gaps(self) -> list[GapEvent]:
        return [g for book in self.books.values() for g in book.gaps]
