"""Binance spot live adapter: trades, L2 book (buffered snapshot + diff) and bookTicker, normalised.

One combined-stream connection (`/stream?streams=<sym>@trade/<sym>@depth@100ms/<sym>@bookTicker/...`,
https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams):
- `@trade` → Tick (exact decimal strings, exchange trade time);
- `@depth@100ms` → BinanceBooks (ingestors/binance/depth_sync.py): buffered until the REST
  snapshot (GET /api/v3/depth, fetched by the runner when asked), then BookUpdate snapshot=True
  for the book as soon as a snapshot is applied and one BookUpdate delta per applied diff; a sequence jump resyncs only
  that symbol and yields a StreamGap;
- `@bookTicker` → TopOfBook.
Binance pings us (the server's websocket pings are answered by the library) and cuts every
connection after 24 h: the runner reconnects on its own schedule before that (max_lifetime_s).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ingestors.binance import config as cfg
from ingestors.binance.depth_sync import BinanceBooks, BinanceDepthSync, Outcome
from ingestors.binance.parse import BinanceParseError, parse_combined_frame, parse_trade_event
from ingestors.book import Level
from ingestors.gaps import GapEvent, GapHow, stream_gap
from ingestors.live.adapter import FrameParseError, KeepAlive, LiveEvent, SnapshotRequest
from live_relay.messages import BookLevel, BookUpdate, TopOfBook

__all__ = ["BinanceLive"]

SNAPSHOT_LIMIT = 1000
LIFETIME_S = 23.5 * 3600  # Binance disconnects after 24 h; leave room


def _is_request_answer(data: str | bytes) -> bool:
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(msg, dict) and "result" in msg and "id" in msg


def _levels(levels: Sequence[Level] | Sequence[Sequence[str]]) -> tuple[BookLevel, ...]:
    return tuple(BookLevel(str(lv[0]), str(lv[1])) for lv in levels)


class BinanceLive:
    """LiveAdapter for Binance spot (see the module docstring)."""

    exchange = cfg.EXCHANGE

    def __init__(self, tickers: Sequence[str], ws_url: str, rest_url: str, *, lifetime_s: float = LIFETIME_S) -> None:
        self.symbols = [cfg.exchange_symbol(t) for t in tickers]
        self.ticker_of = {s: cfg.ticker_for(s) for s in self.symbols}
        self.base_ws = ws_url.rstrip("/").removesuffix("/ws")
        self.rest_url = rest_url.rstrip("/")
        self.keepalive = KeepAlive(ping_interval_s=20.0, ping_frame=None, pong_timeout_s=10.0, max_lifetime_s=lifetime_s)
        self.books = BinanceBooks(ticker_of=lambda s: self.ticker_of.get(s, f"{cfg.EXCHANGE}:{s}"))
        self._announced: set[str] = set()  # symbols whose synced book went out as a snapshot BookUpdate

    def ws_url(self) -> str:
        streams = "/".join(f"{s.lower()}@{kind}" for s in self.symbols for kind in ("trade", "depth@100ms", "bookTicker"))
        return f"{self.base_ws}/stream?streams={streams}"

    def subscribe_frames(self) -> Sequence[str]:
        return ()  # the combined-stream URL names the streams

    def on_connect(self, recv_ns: int) -> list[LiveEvent]:
        return []

    def on_disconnect(self, recv_ns: int) -> list[LiveEvent]:
        self._announced.clear()
        return [stream_gap(g) for g in self.books.on_disconnect(recv_ns)]

    def is_pong(self, data: str | bytes) -> bool:
        return False  # Binance keep-alive is websocket ping/pong frames, handled by the library

    def on_frame(self, data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        try:
            stream, event = parse_combined_frame(data)
        except BinanceParseError as exc:
            if _is_request_answer(data):
                return []  # a SUBSCRIBE / LIST_SUBSCRIPTIONS answer {"result": ..., "id": ...}
            raise FrameParseError("not_combined", str(exc)) from None
        kind = stream.partition("@")[2]
        try:
            if kind == "trade":
                symbol = str(event["s"])
                return [parse_trade_event(event, self.ticker_of.get(symbol, f"{cfg.EXCHANGE}:{symbol}"), recv_ns)]
            if kind.startswith("depth"):
                return self._depth(event, recv_ns)
            if kind == "bookTicker":
                symbol = str(event["s"])
                return [TopOfBook(ticker=self.ticker_of.get(symbol, f"{cfg.EXCHANGE}:{symbol}"), bid_price=event["b"],
                                  bid_size=event["B"], ask_price=event["a"], ask_size=event["A"],
                                  exchange_time_ns=0, receive_time_ns=recv_ns, sequence=int(event["u"]))]  # fmt: skip
        except BinanceParseError as exc:
            raise FrameParseError("schema", str(exc)) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameParseError("schema", f"{stream}: {type(exc).__name__} {exc}") from None
        raise FrameParseError("unknown_stream", stream)

    def _depth(self, event: dict[str, Any], recv_ns: int) -> list[LiveEvent]:
        symbol = str(event.get("s", ""))
        announced_id = self.books.syncs[symbol].book.update_id if symbol in self._announced else None
        sync, outcome = self.books.on_depth_event(event, recv_ns)
        out: list[LiveEvent] = []
        if outcome is Outcome.GAP:
            self._announced.discard(sync.symbol)
            out.append(stream_gap(sync.gaps[-1]))
        elif outcome is Outcome.STALE_SNAPSHOT and announced_id is not None:
            # The announced snapshot book was not continued by the stream (the first diff after it starts past
            # lastUpdateId + 1): to its consumers that is a gap like any other; the symbol resyncs.
            self._announced.discard(sync.symbol)
            out.append(stream_gap(GapEvent(cfg.EXCHANGE, sync.ticker, recv_ns, GapHow.SEQUENCE_JUMP, last_seen=announced_id,
                                           first_missing=announced_id + 1, next_received=int(event["U"]),
                                           detail=f"{sync.symbol}: depth stream does not continue the snapshot")))  # fmt: skip
        elif outcome is Outcome.APPLIED:
            if sync.symbol not in self._announced:  # the first diff after a snapshot bridged: the whole book
                self._announced.add(sync.symbol)
                out.append(self._snapshot_update(sync, int(event.get("E", 0)) * 1_000_000, recv_ns))
            else:
                out.append(BookUpdate(ticker=sync.ticker, snapshot=False, bids=_levels(event["b"]), asks=_levels(event["a"]),
                                      exchange_time_ns=int(event.get("E", 0)) * 1_000_000, receive_time_ns=recv_ns,
                                      update_id=sync.book.update_id))  # fmt: skip
        return out

    def _snapshot_update(self, sync: BinanceDepthSync, exchange_ns: int, recv_ns: int) -> BookUpdate:
        return BookUpdate(ticker=sync.ticker, snapshot=True, bids=_levels(sync.book.bids()), asks=_levels(sync.book.asks()),
                          exchange_time_ns=exchange_ns, receive_time_ns=recv_ns, update_id=sync.book.update_id)  # fmt: skip

    def outgoing(self) -> Sequence[str]:
        return ()  # resyncs use REST snapshots, not resubscriptions

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        return [SnapshotRequest(s, f"{self.rest_url}/api/v3/depth?symbol={s}&limit={SNAPSHOT_LIMIT}")
                for s in self.books.wanting_snapshot()]  # fmt: skip

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        sync = self.books.sync_for(request.symbol)
        try:
            outcome = sync.on_snapshot(body)
        except BinanceParseError as exc:
            raise FrameParseError("snapshot", str(exc)) from None
        if outcome is not Outcome.SNAPSHOT_APPLIED:
            return []
        # Announce the book at once, bridged by the buffered diffs or not: the snapshot is the exchange's own book
        # at lastUpdateId, and diffs set absolute quantities, so the bridging diff (U <= lastUpdateId + 1 <= u)
        # applies to it as a plain delta. Waiting for that diff would leave a quiet symbol without a book.
        self._announced.add(request.symbol)
        return [self._snapshot_update(sync, 0, recv_ns)]
