"""Coinbase Advanced Trade l2_data books, kept in sync by the connection's sequence_num and heartbeats.

Per Coinbase's docs: after subscribing to "level2", each product's first l2_data event is
a "snapshot", then "update" events set levels (side "bid" | "offer", new_quantity "0"
removes the level). Every message of a connection carries sequence_num, counting all
channels together. A jump means messages were lost, and they cannot be attributed to a
product: every synced book of that connection records a GapEvent and waits for the
snapshot of a new subscription (the live client subscribes one level2 product per
connection, so a gap costs one product). A sequence_num at or below the last one is a
repeat and ignored. Heartbeats (one a second) prove the connection is alive: `stale()`
tells the live client when to reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

from ingestors.book import BookError, OrderBook
from ingestors.coinbase.config import (
    ASK_SIDE,
    BID_SIDE,
    EXCHANGE,
    HEARTBEAT_TIMEOUT_S,
    HEARTBEATS_CHANNEL,
    L2_CHANNEL,
    TICKER_CHANNEL,
    CoinbaseSymbolError,
    ticker_for,
    time_ns,
)
from ingestors.gaps import GapEvent, GapHow

__all__ = ["CoinbaseBook", "CoinbaseBooks", "CoinbaseParseError", "CoinbaseTicker", "Outcome"]

log = logging.getLogger(__name__)


class CoinbaseParseError(ValueError):
    """A Coinbase websocket message that does not have the documented shape."""


class Outcome(StrEnum):
    SNAPSHOT = "snapshot"
    APPLIED = "applied"
    SKIPPED = "skipped"  # update for a book that waits for a snapshot
    IGNORED_OLD = "ignored_old"  # sequence_num at or below the last one seen
    TICKER = "ticker"  # CoinbaseBooks.tickers holds this message's best bid/ask per product
    HEARTBEAT = "heartbeat"
    NOT_BOOK = "not_book"  # subscriptions, market_trades, candles, errors


class CoinbaseTicker(NamedTuple):
    """Best bid/ask of one ticker event, strings as sent; time_ns is the message's timestamp."""

    product_id: str
    time_ns: int
    bid_price: str
    bid_size: str
    ask_price: str
    ask_size: str


@dataclass
class CoinbaseBookStats:
    updates_applied: int = 0
    snapshots: int = 0
    skipped: int = 0
    resyncs: int = 0


class CoinbaseBook:
    """One product's level2 book."""

    def __init__(self, product_id: str, *, on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.product_id = product_id
        self.ticker = ticker_for(product_id)
        self.book = OrderBook(self.ticker)  # update_id: sequence_num of the last message applied
        self.synced = False
        self.first_event_ns = self.last_event_ns = 0  # event_time span of the last event applied
        self.stats = CoinbaseBookStats()
        self.gaps: list[GapEvent] = []
        self._on_gap = on_gap

    @property
    def wants_resubscribe(self) -> bool:
        return not self.synced and self.stats.snapshots > 0

    def on_event(self, event: Mapping[str, Any], sequence_num: int) -> Outcome:
        """One l2_data event {"type", "product_id", "updates": [{side, event_time, price_level, new_quantity}]}."""
        kind, updates = event["type"], event["updates"]
        if kind not in ("snapshot", "update"):
            raise CoinbaseParseError(f"{self.product_id}: unknown l2_data event type {kind!r}")
        if kind == "update" and not self.synced:
            self.stats.skipped += 1
            return Outcome.SKIPPED
        bids: list[tuple[str, str]] = []
        asks: list[tuple[str, str]] = []
        for u in updates:
            side = u["side"]
            if side not in (BID_SIDE, ASK_SIDE):
                raise CoinbaseParseError(f"{self.product_id}: unknown side {side!r} in {u!r}")
            (bids if side == BID_SIDE else asks).append((u["price_level"], u["new_quantity"]))
        times = [time_ns(t) for t in {u["event_time"] for u in updates}]  # a snapshot has one time for all levels
        if kind == "snapshot":
            try:
                self.book.apply_snapshot(bids, asks, sequence_num)
            except BookError:
                self.synced = False
                raise
            self.synced = True
            self.stats.snapshots += 1
        else:
            self.book.apply_delta(bids, asks)  # all or nothing (BookError)
            self.book.update_id = sequence_num
            self.stats.updates_applied += 1
        if times:
            self.first_event_ns, self.last_event_ns = min(times), max(times)
        return Outcome.SNAPSHOT if kind == "snapshot" else Outcome.APPLIED

    def lose_sync(self, gap: GapEvent) -> None:
        log.warning("%s: resubscribing %s", gap.detail, self.product_id)
        self.stats.resyncs += 1
        self.gaps.append(gap)
        self.book.clear()
        self.synced = False
        if self._on_gap is not None:
            self._on_gap(gap)


class CoinbaseBooks:
    """Every level2 book of one Advanced Trade websocket connection, and the connection's sequence."""

    def __init__(self, *, on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.books: dict[str, CoinbaseBook] = {}
        self.sequence_num: int | None = None  # last sequence_num of this connection
        self.tickers: list[CoinbaseTicker] = []  # of the last ticker message
        self.heartbeat_counter: int | None = None
        self.last_heartbeat_ns = 0  # local receive time of the last heartbeat
        self.sequence_gaps = 0
        self.message: Any = None  # the last frame, decoded
        self._on_gap = on_gap

    def on_frame(self, text: str | bytes, recv_ns: int) -> tuple[list[CoinbaseBook], Outcome]:
        """One message: check the connection's sequence, then route it. Returns the books it changed."""
        try:
            msg = self.message = orjson.loads(text)  # kept: the live adapter reads the same message, decoded once
        except orjson.JSONDecodeError as exc:
            raise CoinbaseParseError(f"not JSON ({exc}): {text[:200]!r}") from None
        if not isinstance(msg, dict) or "sequence_num" not in msg:
            return [], Outcome.NOT_BOOK  # {"type": "error", ...} and anything without a sequence
        try:
            sequence_num, channel = int(msg["sequence_num"]), msg["channel"]
            if self.sequence_num is not None and sequence_num <= self.sequence_num:
                return [], Outcome.IGNORED_OLD
            if self.sequence_num is not None and sequence_num > self.sequence_num + 1:
                self._gap(self.sequence_num, sequence_num, recv_ns)
            self.sequence_num = sequence_num
            if channel == L2_CHANNEL:
                return self._on_l2(msg["events"], sequence_num)
            if channel == TICKER_CHANNEL:
                at = time_ns(msg["timestamp"])
                self.tickers = [CoinbaseTicker(t["product_id"], at, t["best_bid"], t["best_bid_quantity"], t["best_ask"],
                                               t["best_ask_quantity"]) for e in msg["events"] for t in e["tickers"]]
                return [], Outcome.TICKER
            if channel == HEARTBEATS_CHANNEL:
                self.heartbeat_counter = int(msg["events"][0]["heartbeat_counter"])
                self.last_heartbeat_ns = recv_ns
                return [], Outcome.HEARTBEAT
        except (BookError, CoinbaseSymbolError, KeyError, IndexError, TypeError, ValueError) as exc:
            if isinstance(exc, CoinbaseParseError):
                raise
            raise CoinbaseParseError(f"malformed Coinbase message ({type(exc).__name__}: {exc}): {text[:200]!r}") from None
        return [], Outcome.NOT_BOOK

    def _on_l2(self, events: list[Mapping[str, Any]], sequence_num: int) -> tuple[list[CoinbaseBook], Outcome]:
        changed, outcome = [], Outcome.SKIPPED
        for event in events:
            product_id = str(event["product_id"])
            book = self.books.get(product_id)
            if book is None:
                book = self.books[product_id] = CoinbaseBook(product_id, on_gap=self._on_gap)
            outcome = book.on_event(event, sequence_num)
            if outcome is not Outcome.SKIPPED:
                changed.append(book)
        return changed, outcome

    def _gap(self, last: int, received: int, recv_ns: int) -> None:
        """Messages last+1 .. received-1 of this connection are lost: none of its books can be trusted."""
        self.sequence_gaps += 1
        for book in self.books.values():
            if book.synced:
                book.lose_sync(GapEvent(
                    EXCHANGE, book.ticker, recv_ns, GapHow.SEQUENCE_JUMP, last_seen=last, first_missing=last + 1,
                    next_received=received, detail=f"connection sequence_num jumped from {last} to {received}: "
                                                   f"{received - last - 1} message(s) of any product lost"))

    def stale(self, now_ns: int, timeout_s: float = HEARTBEAT_TIMEOUT_S) -> bool:
        """True when heartbeats have stopped for `timeout_s` (the live client should reconnect)."""
        return self.last_heartbeat_ns > 0 and now_ns - self.last_heartbeat_ns > timeout_s * 1e9

    def wanting_resubscribe(self) -> list[str]:
        """Products whose book lost sync and needs the snapshot of a new level2 subscription."""
        return [p for p, book in self.books.items() if book.wants_resubscribe]

    def on_disconnect(self, recv_ns: int) -> list[GapEvent]:
        """The connection dropped: sequence_num starts again on the next one, every synced book resyncs."""
        gaps = []
        for book in self.books.values():
            if book.synced:
                book.lose_sync(GapEvent(EXCHANGE, book.ticker, recv_ns, GapHow.RECONNECT, last_seen=self.sequence_num,
                                        detail=f"{book.product_id}: connection lost"))
                gaps.append(book.gaps[-1])
        self.sequence_num = None
        self.heartbeat_counter = None
        return gaps

    @property
    def gaps(self) -> list[GapEvent]:
        return [g for book in self.books.values() for g in book.gaps]
