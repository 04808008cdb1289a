"""OKX v5 order books: snapshot then updates, chained by seqId/prevSeqId and checked by CRC32 where OKX sends one.

Per OKX's docs (Order book channel): after subscribing, a "snapshot" push carries
the book (prevSeqId -1), then "update" pushes carry changed levels [px, sz, _, n]
(size "0" deletes). Each update's prevSeqId must equal the seqId of the previous
push for that instId: prevSeqId == seqId is a no-change push (the book is
unchanged), and seqId may drop below prevSeqId after maintenance (a sequence
reset, still continuous). Anything else is a gap: a GapEvent is recorded and only
that instId resubscribes. Recordings made before OKX added seqId (2022) carry
none; their continuity is then proven by the checksum alone.

The checksum is a signed CRC32 of the top 25 levels interleaved
"bidPx:bidSz:askPx:askSz:..." (a shorter side just ends early), from OKX's own
strings. OKX has sent 0 since 23 June 2026: 0 means "not provided" and is not
counted as checked. A mismatch is a gap like a sequence break.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import orjson
from marketlake_native import okx_checksum

from ingestors.book import BookError, OrderBook
from ingestors.gaps import GapEvent, GapHow
from ingestors.live.adapter import excerpt
from ingestors.okx.config import (
    BOOK_DEPTHS,
    CHECKSUM_LEVELS,
    CHECKSUM_NOT_PROVIDED,
    EXCHANGE,
    INCREMENTAL_CHANNELS,
    TICKER_CHANNEL,
    OkxSymbolError,
    ticker_for,
)

__all__ = ["OkxBook", "OkxBooks", "OkxParseError", "OkxTicker", "Outcome", "book_checksum"]

log = logging.getLogger(__name__)


class OkxParseError(ValueError):
    """An OKX websocket frame that does not have the documented shape."""


class Outcome(StrEnum):
    SNAPSHOT = "snapshot"
    APPLIED = "applied"  # update applied; its checksum matched or was not provided
    SEQUENCE_GAP = "sequence_gap"  # prevSeqId did not continue the book: resubscribe this instId
    CHECKSUM_FAILED = "checksum_failed"  # our book disagrees with OKX's checksum: resubscribe this instId
    SKIPPED = "skipped"  # update for a book that waits for a fresh snapshot
    TICKER = "ticker"  # a tickers push: OkxBooks.ticker holds its best bid/ask
    NOT_BOOK = "not_book"  # events (subscribe, error), trades, other channels


class OkxTicker(NamedTuple):
    """Best bid/ask of one tickers push, strings as OKX sent them; ts is OKX's time in ms."""

    inst_id: str
    ts_ms: int
    bid_price: str
    bid_size: str
    ask_price: str
    ask_size: str


def book_checksum(book: OrderBook, levels: int = CHECKSUM_LEVELS) -> int:
    """OKX's signed CRC32 of the top `levels` bids and asks, interleaved ("bid:size:ask:size:..."), from the exchange's
    own strings, computed in the compiled book."""
    return okx_checksum(book, levels)


@dataclass
class OkxBookStats:
    updates_applied: int = 0
    snapshots: int = 0
    no_change: int = 0  # prevSeqId == seqId pushes
    sequence_checked: int = 0
    checksum_checked: int = 0
    checksum_not_provided: int = 0  # checksum 0 (OKX since June 2026) or absent
    checksum_failures: int = 0
    skipped: int = 0
    resyncs: int = 0
    unreadable: int = 0  # pushes that could not be read (each costs the book a fresh snapshot)


class OkxBook:
    """One instId's book on one book channel."""

    def __init__(self, inst_id: str, channel: str, *, on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.inst_id = inst_id
        self.channel = channel
        self.ticker = ticker_for(inst_id)
        self.book = OrderBook(self.ticker, depth_limit=BOOK_DEPTHS[channel])
        self.synced = False  # False until a snapshot arrives, and again after a gap
        self.seq_id: int | None = None  # seqId of the last push applied (None: the feed sends none)
        self.ts_ms = 0  # OKX's time (ms) of the last push applied
        self.prev_ts_ms = 0  # of the push before it: a push nets the changes of (prev_ts_ms, ts_ms]
        self.stats = OkxBookStats()
        self.gaps: list[GapEvent] = []
        self._on_gap = on_gap

    @property
    def wants_resubscribe(self) -> bool:
        """True when the live client should unsubscribe and subscribe this instId again (a fresh snapshot)."""
        return not self.synced and self.stats.snapshots + self.stats.unreadable > 0

    def _unreadable(self, recv_ns: int, what: str, exc: Exception) -> OkxParseError:
        """A push this book cannot read: a synced book has lost what it changed (a gap); either way it needs a
        fresh snapshot. Returns the error to raise."""
        self.stats.unreadable += 1
        detail = f"{self.inst_id} {self.channel}: unreadable {what} ({type(exc).__name__}: {exc})"
        if self.synced:
            self._gap(GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.UNREADABLE, last_seen=self.seq_id, detail=detail),
                      Outcome.SEQUENCE_GAP)
        else:
            self.book.clear()
        return OkxParseError(detail)

    def on_snapshot(self, data: Mapping[str, Any], recv_ns: int) -> Outcome:
        try:
            self.book.apply_snapshot(data["bids"], data["asks"])
        except (BookError, KeyError, TypeError) as exc:
            raise self._unreadable(recv_ns, "snapshot", exc) from None
        self.synced = True
        self.stats.snapshots += 1
        self.seq_id = _optional_int(data.get("seqId"))
        self.prev_ts_ms = self.ts_ms = int(data.get("ts", 0))
        self.book.update_id = self.seq_id or 0
        return self._check(data, recv_ns, Outcome.SNAPSHOT)

    def on_update(self, data: Mapping[str, Any], recv_ns: int) -> Outcome:
        if not self.synced:
            self.stats.skipped += 1
            return Outcome.SKIPPED
        seq_id, prev_seq_id = _optional_int(data.get("seqId")), _optional_int(data.get("prevSeqId"))
        if prev_seq_id is not None and self.seq_id is not None:
            self.stats.sequence_checked += 1
            if prev_seq_id != self.seq_id:
                return self._gap(GapEvent(
                    EXCHANGE, self.ticker, recv_ns, GapHow.SEQUENCE_JUMP, last_seen=self.seq_id,
                    next_received=seq_id, detail=f"{self.inst_id} {self.channel}: prevSeqId {prev_seq_id} does not "
                                                 f"continue the book's seqId {self.seq_id}"), Outcome.SEQUENCE_GAP)
            self.stats.no_change += prev_seq_id == seq_id
        try:
            self.book.apply_delta(data["bids"], data["asks"])  # all or nothing
        except (BookError, KeyError, TypeError) as exc:
            raise self._unreadable(recv_ns, "update", exc) from None
        self.seq_id = seq_id
        self.book.update_id = seq_id or 0
        self.prev_ts_ms, self.ts_ms = self.ts_ms, int(data.get("ts", self.ts_ms))
        self.stats.updates_applied += 1
        return self._check(data, recv_ns, Outcome.APPLIED)

    def _check(self, data: Mapping[str, Any], recv_ns: int, outcome: Outcome) -> Outcome:
        """Compare OKX's checksum with ours when OKX provided one (non-zero)."""
        theirs = _optional_int(data.get("checksum"))
        if theirs is None or theirs == CHECKSUM_NOT_PROVIDED:
            self.stats.checksum_not_provided += 1
            return outcome
        self.stats.checksum_checked += 1
        ours = book_checksum(self.book)
        if ours == theirs:
            return outcome
        self.stats.checksum_failures += 1
        return self._gap(GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.CHECKSUM_MISMATCH, last_seen=self.seq_id,
                                  detail=f"{self.inst_id} {self.channel}: OKX checksum {theirs}, our book's {ours}"),
                         Outcome.CHECKSUM_FAILED)

    def _gap(self, gap: GapEvent, outcome: Outcome) -> Outcome:
        if gap.how != GapHow.RECONNECT:  # a lost connection resubscribes everything
            log.warning("%s: resubscribing this instId only", gap.detail)
        self.stats.resyncs += 1
        self.gaps.append(gap)
        self.book.clear()
        self.synced = False
        self.seq_id = None
        if self._on_gap is not None:
            self._on_gap(gap)
        return outcome

    def on_disconnect(self, recv_ns: int) -> GapEvent | None:
        """The connection dropped: a synced book cannot know what it missed; it waits for a new snapshot."""
        if not self.synced:
            return None
        self._gap(GapEvent(EXCHANGE, self.ticker, recv_ns, GapHow.RECONNECT, last_seen=self.seq_id,
                           detail=f"{self.inst_id} {self.channel}: connection lost"), Outcome.SEQUENCE_GAP)
        return self.gaps[-1]


def _optional_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


class OkxBooks:
    """Every book of one public websocket connection, keyed by (channel, instId); each resyncs on its own."""

    def __init__(self, *, on_gap: Callable[[GapEvent], None] | None = None) -> None:
        self.books: dict[tuple[str, str], OkxBook] = {}
        self.ticker: OkxTicker | None = None  # the last tickers push
        self._on_gap = on_gap

    def on_frame(self, text: str | bytes, recv_ns: int) -> tuple[OkxBook | None, Outcome]:
        """Route one frame: book pushes change their instId's book; tickers set `ticker`; the rest is NOT_BOOK."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise OkxParseError(f"not JSON ({exc}): {text[:200]!r}") from None
        return self.on_message(msg, recv_ns)

    def on_message(self, msg: Any, recv_ns: int) -> tuple[OkxBook | None, Outcome]:
        """on_frame for a frame already decoded (the live adapter decodes each frame once)."""
        if not isinstance(msg, dict) or "event" in msg or "arg" not in msg:
            return None, Outcome.NOT_BOOK  # subscribe/unsubscribe/error events, pong
        try:
            channel, inst_id, data = msg["arg"]["channel"], msg["arg"]["instId"], msg["data"]
            if channel == TICKER_CHANNEL:
                d = data[0]
                self.ticker = OkxTicker(inst_id, int(d["ts"]), d["bidPx"], d["bidSz"], d["askPx"], d["askSz"])
                return None, Outcome.TICKER
            if channel not in BOOK_DEPTHS:
                return None, Outcome.NOT_BOOK
            book = self.books.get((channel, inst_id))
            if book is None:
                book = self.books[(channel, inst_id)] = OkxBook(inst_id, channel, on_gap=self._on_gap)
            action = msg.get("action") if channel in INCREMENTAL_CHANNELS else None
            if len(data) != 1:
                raise OkxParseError(f"book push for {inst_id} with {len(data)} data objects: {excerpt(msg)}")
            if action in (None, "snapshot"):
                return book, book.on_snapshot(data[0], recv_ns)
            if action != "update":
                raise OkxParseError(f"unknown book action {action!r} for {inst_id}: {excerpt(msg)}")
            return book, book.on_update(data[0], recv_ns)
        except (BookError, KeyError, IndexError, TypeError, ValueError, OkxSymbolError) as exc:
            if isinstance(exc, OkxParseError):
                raise
            raise OkxParseError(f"malformed OKX push ({type(exc).__name__}: {exc}): {excerpt(msg)}") from None

    def wanting_resubscribe(self) -> list[tuple[str, str]]:
        """(channel, instId) of every book that lost sync and needs a fresh snapshot."""
        return [key for key, book in self.books.items() if book.wants_resubscribe]

    def on_disconnect(self, recv_ns: int) -> list[GapEvent]:
        """Every book on the connection waits for a new snapshot; returns the gaps of those that were synced."""
        return [g for book in self.books.values() if (g := book.on_disconnect(recv_ns)) is not None]

    @property
    def gaps(self) -> list[GapEvent]:
        return [g for book in self.books.values() for g in book.gaps]
