"""Kraken websocket v1 order books, verified by Kraken's CRC32 checksum after every update.

Per Kraken's docs (https://docs.kraken.com/api/docs/guides/spot-ws-book-v1): a
snapshot [channelID, {"as": [...], "bs": [...]}, "book-N", pair] starts a book;
updates [channelID, {"a"|"b": [[price, volume, time(, "r")], ...]}, ({"b": ...},)
{"c": checksum}, "book-N", pair] set levels (volume 0 deletes), then the book is
truncated to the subscribed depth N. The checksum is CRC32 of the top 10 asks
(lowest first) then the top 10 bids (highest first), each level written as its
price and then its volume string with the '.' removed and leading zeros
stripped, as an unsigned 32-bit integer. A mismatch means the book is wrong:
it is a gap, recorded as a GapEvent, and only that pair resubscribes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from marketlake_native import kraken_checksum

from ingestors.book import BookError, OrderBook
from ingestors.gaps import GapEvent, GapHow
from ingestors.kraken.config import CHECKSUM_LEVELS, EXCHANGE, KrakenSymbolError, book_depth, ticker_for
from ingestors.live.adapter import excerpt

__all__ = ["KrakenBook", "KrakenBooks", "KrakenParseError", "Outcome", "book_checksum"]

log = logging.getLogger(__name__)


class KrakenParseError(ValueError):
    """A Kraken websocket frame that does not have the documented shape."""


class Outcome(StrEnum):
    SNAPSHOT = "snapshot"
    APPLIED = "applied"  # update applied and its checksum matched
    CHECKSUM_FAILED = "checksum_failed"  # a gap: the pair must resubscribe
    SKIPPED = "skipped"  # update for a book that waits for a fresh snapshot
    NOT_BOOK = "not_book"  # events, heartbeats, trades, tickers


def book_checksum(book: OrderBook, levels: int = CHECKSUM_LEVELS) -> int:
    """Kraken's CRC32 of the book's top `levels` asks then bids, from the exchange's own strings (each with the '.'
    removed and leading zeros stripped), computed in the compiled book: it runs after every update."""
    return kraken_checksum(book, levels)


@dataclass
class KrakenBookStats:
    updates_applied: int = 0
    snapshots: int = 0
    checksum_checked: int = 0
    checksum_failures: int = 0
    skipped: int = 0
    resyncs: int = 0


class KrakenBook:
    """One pair's book on one book-N subscription."""

    def __init__(self, pair: str, depth: int, *, on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.pair = pair
        self.ticker = ticker_for(pair)
        self.book = OrderBook(self.ticker, depth_limit=depth)
        self.synced = False  # False until a snapshot arrives, and again after a checksum mismatch
        self.stats = KrakenBookStats()
        self.gaps: list[GapEvent] = []
        self._on_gap = on_gap

    @property
    def wants_resubscribe(self) -> bool:
        """True when the live client should unsubscribe and subscribe this pair again (a fresh snapshot)."""
        return not self.synced and self.stats.snapshots > 0

    def on_snapshot(self, payload: Mapping[str, Any]) -> Outcome:
        try:
            self.book.apply_snapshot(payload.get("bs", ()), payload.get("as", ()))
        except BookError:
            self.synced = False  # the old book is gone and the new one unreadable
            raise
        self.synced = True
        self.stats.snapshots += 1
        return Outcome.SNAPSHOT

    def on_update(self, payloads: list[Mapping[str, Any]], recv_ns: int) -> Outcome:
        """Apply the update dicts of one frame, then check the frame's checksum."""
        if not self.synced:
            self.stats.skipped += 1
            return Outcome.SKIPPED
        # All levels of the frame, then one truncation and the checksum (Kraken: "process all price level
        # updates in a message before calculating the checksum").
        if len(payloads) == 1:  # the usual frame: one side's levels and the checksum in one object
            only = payloads[0]
            self.book.apply_delta(only.get("b", ()), only.get("a", ()))
            checksum = only.get("c")
        else:
            self.book.apply_delta([lv for p in payloads for lv in p.get("b", ())],
                                  [lv for p in payloads for lv in p.get("a", ())])
            checksum = next((p["c"] for p in reversed(payloads) if "c" in p), None)
        self.stats.updates_applied += 1
        if checksum is None:
            return Outcome.APPLIED
        self.stats.checksum_checked += 1
        ours = book_checksum(self.book)
        if str(ours) == str(checksum):
            return Outcome.APPLIED
        self.stats.checksum_failures += 1
        self.stats.resyncs += 1
        gap = GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.CHECKSUM_MISMATCH,
                       detail=f"{self.pair}: Kraken checksum {checksum}, our book's {ours}")
        log.warning("%s: resubscribing this pair only", gap.detail)
        self.gaps.append(gap)
        self.book.clear()
        self.synced = False
        if self._on_gap is not None:
            self._on_gap(gap)
        return Outcome.CHECKSUM_FAILED


class KrakenBooks:
    """Every book of one websocket v1 connection, keyed by (channel name, pair)."""

    def __init__(self, *, on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.books: dict[tuple[str, str], KrakenBook] = {}
        self._on_gap = on_gap

    def on_frame(self, text: str | bytes, recv_ns: int) -> tuple[KrakenBook | None, Outcome]:
        """Route one frame: book snapshots and updates change their pair's book; the rest is NOT_BOOK."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise KrakenParseError(f"not JSON ({exc}): {text[:200]!r}") from None
        return self.on_message(msg, recv_ns)

    def on_message(self, msg: Any, recv_ns: int) -> tuple[KrakenBook | None, Outcome]:
        """on_frame for a frame already decoded (the live adapter decodes each frame once)."""
        if not isinstance(msg, list):
            return None, Outcome.NOT_BOOK  # systemStatus, subscriptionStatus, heartbeat
        if len(msg) < 4 or not isinstance(msg[-2], str) or not isinstance(msg[-1], str):
            raise KrakenParseError(f"channel message without channel name and pair: {excerpt(msg)}")
        channel, pair = msg[-2], msg[-1]
        if not channel.startswith("book"):
            return None, Outcome.NOT_BOOK
        payloads = msg[1:-2]
        if not payloads or any(type(p) is not dict for p in payloads):
            raise KrakenParseError(f"book message for {pair} without level objects: {excerpt(msg)}")
        book = self.books.get((channel, pair))
        if book is None:
            try:
                book = KrakenBook(pair, book_depth(channel), on_gap=self._on_gap)
            except KrakenSymbolError as exc:
                raise KrakenParseError(str(exc)) from None
            self.books[(channel, pair)] = book
        try:
            if "as" in payloads[0] or "bs" in payloads[0]:
                return book, book.on_snapshot(payloads[0])
            return book, book.on_update(payloads, recv_ns)
        except (BookError, TypeError) as exc:
            raise KrakenParseError(f"malformed book levels for {pair} ({exc}): {excerpt(msg)}") from None

    @property
    def gaps(self) -> list[GapEvent]:
        return [g for book in self.books.values() for g in book.gaps]
