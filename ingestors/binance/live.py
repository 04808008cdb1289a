"""Binance spot live adapter: trades, L2 book (buffered snapshot + diff) and bookTicker, normalised.

One combined-stream connection (`/stream?streams=<sym>@trade/<sym>@depth@100ms/<sym>@bookTicker/...`,
https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams):
- `@trade` → Tick (exact decimal strings, exchange trade time);
- `@depth@100ms` → BinanceBooks (ingestors/binance/depth_sync.py) via book_events.DiffBookEvents: buffered until the REST
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

import msgspec
import orjson

from ingestors.binance import config as cfg
from ingestors.binance.book_events import DiffBookEvents
from ingestors.binance.depth_sync import BinanceBooks, parse_depth_event
from ingestors.binance.parse import BOOK_TICKER, TRADE, BinanceParseError, decode_event, decode_frame, trade_tick
from ingestors.live.adapter import FrameParseError, KeepAlive, LiveEvent, SnapshotRequest
from live_relay.messages import TopOfBook

__all__ = ["BinanceLive"]

SNAPSHOT_LIMIT = 1000
LIFETIME_S = 23.5 * 3600  # Binance disconnects after 24 h; leave room


def _is_request_answer(data: str | bytes) -> bool:
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(msg, dict) and "result" in msg and "id" in msg


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
        self.book_events = DiffBookEvents(self.books, cfg.EXCHANGE,
                                          lambda s: f"{self.rest_url}/api/v3/depth?symbol={s}&limit={SNAPSHOT_LIMIT}")

    def ws_url(self) -> str:
        streams = "/".join(f"{s.lower()}@{kind}" for s in self.symbols for kind in ("trade", "depth@100ms", "bookTicker"))
        return f"{self.base_ws}/stream?streams={streams}"

    def subscribe_frames(self) -> Sequence[str]:
        return ()  # the combined-stream URL names the streams

    def on_connect(self, recv_ns: int) -> list[LiveEvent]:
        return []

    def on_disconnect(self, recv_ns: int) -> list[LiveEvent]:
        return self.book_events.on_disconnect(recv_ns)

    def is_pong(self, data: str | bytes) -> bool:
        return False  # Binance keep-alive is websocket ping/pong frames, handled by the library

    def on_frame(self, data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        try:
            frame = decode_frame(data)
        except BinanceParseError as exc:
            if _is_request_answer(data):
                return []  # a SUBSCRIBE / LIST_SUBSCRIPTIONS answer {"result": ..., "id": ...}
            raise FrameParseError("not_combined", str(exc)) from None
        stream = frame.stream
        kind = stream.partition("@")[2]
        try:
            if kind == "trade":
                trade = decode_event(TRADE, frame)
                return [trade_tick(trade, self._ticker(trade.s), recv_ns)]
            if kind.startswith("depth"):
                event = msgspec.json.decode(frame.data)
                return self.book_events.on_diff(str(event["s"]), parse_depth_event(event, recv_ns), recv_ns)
            if kind == "bookTicker":
                top = decode_event(BOOK_TICKER, frame)
                return [TopOfBook(ticker=self._ticker(top.s), bid_price=top.b, bid_size=top.B, ask_price=top.a,
                                  ask_size=top.A, exchange_time_ns=0, receive_time_ns=recv_ns, sequence=top.u)]
        except BinanceParseError as exc:
            raise FrameParseError("schema", str(exc)) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameParseError("schema", f"{stream}: {type(exc).__name__} {exc}") from None
        raise FrameParseError("unknown_stream", stream)

    def _ticker(self, symbol: str) -> str:
        return self.ticker_of.get(symbol) or f"{cfg.EXCHANGE}:{symbol}"

    def outgoing(self) -> Sequence[str]:
        return ()  # resyncs use REST snapshots, not resubscriptions

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        return self.book_events.snapshot_requests()

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        return self.book_events.on_snapshot(request, body, recv_ns)
