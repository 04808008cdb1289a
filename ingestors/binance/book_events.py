"""The live events of buffered-snapshot + diff books (Binance, and MEXC, which documents the same procedure).

Wraps BinanceBooks (ingestors/binance/depth_sync.py) for a live adapter: which REST snapshots to
fetch, and the BookUpdate / StreamGap events each diff or snapshot makes. A book goes out whole
(BookUpdate snapshot=True) as soon as its REST snapshot applies, bridged by the buffered diffs or
not: the snapshot is the exchange's own book at lastUpdateId and diffs set absolute quantities, so
the bridging diff (U <= lastUpdateId + 1 <= u) applies to it as a plain delta; waiting for that diff
would leave a quiet symbol without a book. After that, one delta per applied diff. A jump, or an
announced snapshot that the stream does not continue, is a StreamGap, and only that symbol resyncs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingestors.binance.depth_sync import BinanceBooks, BinanceDepthSync, DepthDiff, Outcome
from ingestors.binance.parse import BinanceParseError
from ingestors.book import Level
from ingestors.gaps import GapEvent, GapHow, stream_gap
from ingestors.live.adapter import FrameParseError, LiveEvent, SnapshotRequest
from live_relay.messages import BookLevel, BookUpdate

__all__ = ["DiffBookEvents", "levels"]


def levels(rows: Sequence[Level] | Sequence[Sequence[str]]) -> tuple[BookLevel, ...]:
    return tuple(BookLevel(str(lv[0]), str(lv[1])) for lv in rows)


class DiffBookEvents:
    """A connection's diff books and the events they make; `snapshot_url(symbol)` is the REST depth URL."""

    def __init__(self, books: BinanceBooks, exchange: str, snapshot_url: Any) -> None:
        self.books = books
        self.exchange = exchange
        self.snapshot_url = snapshot_url
        self.announced: set[str] = set()  # symbols whose synced book went out as a snapshot BookUpdate

    def on_disconnect(self, recv_ns: int) -> list[LiveEvent]:
        self.announced.clear()
        return [stream_gap(g) for g in self.books.on_disconnect(recv_ns)]

    def on_diff(self, symbol: str, diff: DepthDiff, recv_ns: int) -> list[LiveEvent]:
        """One depth event of `symbol` (exchange time: diff.event_ms)."""
        announced_id = self.books.syncs[symbol].book.update_id if symbol in self.announced else None
        sync = self.books.sync_for(symbol)
        outcome = sync.on_diff(diff)
        exchange_ns = diff.event_ms * 1_000_000
        if outcome is Outcome.GAP:
            self.announced.discard(symbol)
            return [stream_gap(sync.gaps[-1])]
        if outcome is Outcome.STALE_SNAPSHOT and announced_id is not None:
            # The announced snapshot book was not continued by the stream (the first diff after it starts past
            # lastUpdateId + 1): to its consumers that is a gap like any other; the symbol resyncs.
            self.announced.discard(symbol)
            return [stream_gap(GapEvent(self.exchange, sync.ticker, recv_ns, GapHow.SEQUENCE_JUMP, last_seen=announced_id,
                                        first_missing=announced_id + 1, next_received=diff.first_id,
                                        detail=f"{symbol}: depth stream does not continue the snapshot"))]  # fmt: skip
        if outcome is not Outcome.APPLIED:
            return []
        if symbol not in self.announced:  # the first diff after a snapshot bridged: the whole book
            self.announced.add(symbol)
            return [self._whole_book(sync, exchange_ns, recv_ns)]
        return [BookUpdate(ticker=sync.ticker, snapshot=False, bids=levels(diff.bids), asks=levels(diff.asks),
                           exchange_time_ns=exchange_ns, receive_time_ns=recv_ns, update_id=sync.book.update_id)]  # fmt: skip

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        return [SnapshotRequest(s, self.snapshot_url(s)) for s in self.books.wanting_snapshot()]

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        sync = self.books.sync_for(request.symbol)
        try:
            outcome = sync.on_snapshot(body)
        except BinanceParseError as exc:
            raise FrameParseError("snapshot", str(exc)) from None
        if outcome is not Outcome.SNAPSHOT_APPLIED:
            return []
        self.announced.add(request.symbol)
        return [self._whole_book(sync, 0, recv_ns)]

    @staticmethod
    def _whole_book(sync: BinanceDepthSync, exchange_ns: int, recv_ns: int) -> BookUpdate:
        return BookUpdate(ticker=sync.ticker, snapshot=True, bids=levels(sync.book.bids()), asks=levels(sync.book.asks()),
                          exchange_time_ns=exchange_ns, receive_time_ns=recv_ns, update_id=sync.book.update_id)  # fmt: skip
