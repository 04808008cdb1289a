"""MEXC spot live adapter: aggregated deals, L2 book (buffered snapshot + diff) and bookTicker, normalised.

One connection to wss://wbs-api.mexc.com/ws (https://www.mexc.com/api-docs/spot-v3/websocket-market-streams),
{"method":"SUBSCRIPTION","params":[...]} per symbol for three protobuf channels (config.CHANNEL_TEMPLATES;
at most 30 subscriptions a connection, so at most 10 symbols an adapter), each answered
{"id":0,"code":0,"msg":"<params>"}; binary frames are PushDataV3ApiWrapper (codec.py):
- aggre.deals → one Tick per deal. MEXC's deals carry no trade id, so ours is content-derived and stable:
  "<time ms>-<n>-<price>-<quantity>", n counting earlier deals with the same time, price, quantity and side
  on this connection (almost always 0). Any client of the same stream derives the same ids, whatever
  the frame boundaries; identical deals in one millisecond stay distinct.
- aggre.depth → BinanceBooks (ingestors/binance/depth_sync.py), because MEXC's "How to properly maintain
  a local copy of the order book" is Binance's procedure with U = fromVersion and u = toVersion: buffer,
  GET /api/v3/depth?limit=1000 (fetched by the runner when asked), drop toVersion <= lastUpdateId, bridge
  lastUpdateId + 1, then fromVersion = previous toVersion + 1; a jump resyncs only that symbol (StreamGap).
  BookUpdate snapshot=True once a snapshot applies, one delta per applied push after it.
- aggre.bookTicker → TopOfBook (no sequence on this channel: 0).
Keep-alive: we send {"method":"PING"} (answered {"id":0,"code":0,"msg":"PONG"}); MEXC cuts a connection
after 24 h, the runner reconnects before (max_lifetime_s). A subscription answer with code != 0 is a
FrameParseError("subscription_error").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ingestors.binance.book_events import DiffBookEvents
from ingestors.binance.depth_sync import BinanceBooks, DepthDiff
from ingestors.binance.parse import BinanceParseError
from ingestors.live.adapter import FrameParseError, KeepAlive, LiveEvent, SnapshotRequest
from ingestors.mexc import codec
from ingestors.mexc import config as cfg
from live_relay.messages import Tick, TopOfBook

__all__ = ["MexcLive", "deal_ids"]

SNAPSHOT_LIMIT = 1000
LIFETIME_S = 23.5 * 3600  # MEXC disconnects after 24 h; leave room
SEEN_WINDOW_MS = 60_000  # deal-id occurrence counters older than this (by deal time) are forgotten


def deal_ids(deals: Sequence[codec.Deal], seen: dict[tuple[int, str, str, int], int]) -> list[str]:
    """Trade ids of deals in stream order (see the module docstring); `seen` carries the counts between frames."""
    out = []
    for d in deals:
        key = (d.time_ms, d.price, d.quantity, d.trade_type)
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append(f"{d.time_ms}-{n}-{d.price}-{d.quantity}")
    return out


class MexcLive:
    """LiveAdapter for MEXC spot (see the module docstring)."""

    exchange = cfg.EXCHANGE

    def __init__(self, tickers: Sequence[str], ws_url: str, rest_url: str, *, lifetime_s: float = LIFETIME_S,
                 interval: str = cfg.DEFAULT_INTERVAL) -> None:
        self.symbols = [cfg.exchange_symbol(t) for t in tickers]
        if len(self.symbols) * len(cfg.CHANNEL_TEMPLATES) > cfg.WS_MAX_SUBSCRIPTIONS.value:
            raise ValueError(f"{len(self.symbols)} symbols need {len(self.symbols) * 3} subscriptions; MEXC allows "
                             f"{cfg.WS_MAX_SUBSCRIPTIONS.value} a connection ({cfg.WS_MAX_SUBSCRIPTIONS.doc})")
        self.ticker_of = {s: cfg.ticker_for(s) for s in self.symbols}
        self.url = ws_url
        self.rest_url = rest_url.rstrip("/")
        self.interval = interval
        self.keepalive = KeepAlive(ping_interval_s=20.0, ping_frame=cfg.PING, pong_timeout_s=10.0, max_lifetime_s=lifetime_s)
        self.books = BinanceBooks(ticker_of=self._ticker, exchange=cfg.EXCHANGE)
        self.book_events = DiffBookEvents(self.books, cfg.EXCHANGE,
                                          lambda s: f"{self.rest_url}/api/v3/depth?symbol={s}&limit={SNAPSHOT_LIMIT}")
        self._seen: dict[tuple[int, str, str, int], int] = {}  # deal-id occurrence counts (deal_ids)

    def _ticker(self, symbol: str) -> str:
        return self.ticker_of.get(symbol, f"{cfg.EXCHANGE}:{symbol}")

    def ws_url(self) -> str:
        return self.url

    def subscribe_frames(self) -> Sequence[str]:
        params = [cfg.channel(t, s, self.interval) for s in self.symbols for t in cfg.CHANNEL_TEMPLATES]
        return [orjson.dumps({"method": cfg.SUBSCRIBE_METHOD, "params": params}).decode()]

    def on_connect(self, recv_ns: int) -> list[LiveEvent]:
        self._seen.clear()
        return []

    def on_disconnect(self, recv_ns: int) -> list[LiveEvent]:
        return self.book_events.on_disconnect(recv_ns)

    def is_pong(self, data: str | bytes) -> bool:
        if isinstance(data, bytes):
            return False
        try:
            return codec.decode_json(data).get("msg") == cfg.PONG_MSG
        except codec.MexcCodecError:
            return False

    def on_frame(self, data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        if isinstance(data, str):
            try:
                answer = codec.decode_json(data)
            except codec.MexcCodecError as exc:
                raise FrameParseError("json", str(exc)) from None
            if answer.get("code") != 0:
                raise FrameParseError("subscription_error", f"code {answer.get('code')}: {answer.get('msg')}")
            return []  # subscription answer or PONG
        try:
            push = codec.decode_push(data)
        except codec.MexcCodecError as exc:
            raise FrameParseError("protobuf", str(exc)) from None
        if isinstance(push, codec.DealsPush):
            return self._deals(push, recv_ns)
        if isinstance(push, codec.DepthPush):
            try:
                return self._depth(push, recv_ns)
            except BinanceParseError as exc:
                raise FrameParseError("schema", str(exc)) from None
        return [TopOfBook(ticker=self._ticker(push.symbol), bid_price=push.bid_price, bid_size=push.bid_quantity,
                          ask_price=push.ask_price, ask_size=push.ask_quantity, exchange_time_ns=push.send_ms * 1_000_000,
                          receive_time_ns=recv_ns)]  # fmt: skip

    def _deals(self, push: codec.DealsPush, recv_ns: int) -> list[LiveEvent]:
        if len(self._seen) > 10_000:
            newest = max(k[0] for k in self._seen)
            self._seen = {k: n for k, n in self._seen.items() if k[0] > newest - SEEN_WINDOW_MS}
        ticker = self._ticker(push.symbol)
        return [Tick(ticker=ticker, trade_id=tid, price=d.price, size=d.quantity, buyer_is_maker=d.trade_type == codec.TAKER_SELL,
                     exchange_time_ns=d.time_ms * 1_000_000, receive_time_ns=recv_ns)
                for d, tid in zip(push.deals, deal_ids(push.deals, self._seen), strict=True)]  # fmt: skip

    def _depth(self, push: codec.DepthPush, recv_ns: int) -> list[LiveEvent]:
        diff = DepthDiff(push.from_version, push.to_version, push.bids, push.asks, push.send_ms, recv_ns)
        return self.book_events.on_diff(push.symbol, diff, recv_ns)

    def outgoing(self) -> Sequence[str]:
        return ()  # resyncs use REST snapshots, not resubscriptions

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        return self.book_events.snapshot_requests()

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        return self.book_events.on_snapshot(request, body, recv_ns)
