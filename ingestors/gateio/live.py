"""Gate.io spot v4 websocket live adapter: spot.trades, spot.order_book_update books (REST baseId) and book_ticker tops.

https://www.gate.io/docs/developers/apiv4/ws/en/ — one connection to wss://api.gateio.ws/ws/v4/, frames
{"time": s, "channel": c, "event": "subscribe", "payload": [...]}: spot.trades with every pair, one
spot.order_book_update [pair, "100ms"] a pair ("GATEIO:BTC/USDT" -> BTC_USDT):
- spot.trades → Tick: id "id", price and amount as sent, time "create_time_ms" (ms with a fraction,
  kept exactly in ns); "side" is the taker's, so "sell" means the buyer was the maker;
- spot.order_book_update → ingestors/gateio/book.GateioBooks (the buffered snapshot + diff procedure of
  ingestors/binance/depth_sync.DepthSync on Gate.io's fields): updates are cached until the REST snapshot
  GET /api/v4/spot/order_book?currency_pair=..&limit=100&with_id=true (fetched by the runner when
  `snapshot_requests` asks) gives baseId; the book goes out as BookUpdate snapshot=True as soon as a
  snapshot is applied (with the cached updates after it), then one delta per applied update (size "0"
  deletes). A U/u break is a StreamGap and only that pair fetches a new snapshot; so is an announced
  snapshot that the stream does not continue (its first update starts past baseId + 1);
- spot.book_ticker → TopOfBook (with tops=True; the recorded session has none). spot.tickers carry no
  sizes and are not subscribed;
- keep-alive: {"time": s, "channel": "spot.ping"} every 15 s, answered by a "spot.pong" frame.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson

from ingestors.gaps import GapEvent, GapHow, stream_gap
from ingestors.gateio.book import GateioBooks, GateioBookSync, GateioParseError, Outcome, Push
from ingestors.gateio.config import (
    BOOK_TICKER_CHANNEL,
    BOOK_UPDATE_CHANNEL,
    EXCHANGE,
    ORDER_BOOK_PATH,
    SNAPSHOT_LIMIT,
    TRADES_CHANNEL,
    ticker_for,
)
from ingestors.live.adapter import FrameParseError, KeepAlive, LiveEvent, SnapshotRequest
from live_relay.messages import BookLevel, BookUpdate, Tick, TopOfBook
from live_relay.topics import parse_ticker

__all__ = ["GateioLive", "ws_pair"]

BOOK_INTERVAL = "100ms"
PING_CHANNEL, PONG_CHANNEL = "spot.ping", "spot.pong"
_MS = 1_000_000


def ws_pair(ticker: str) -> str:
    """"GATEIO:BTC/USDT" -> "BTC_USDT"."""
    t = parse_ticker(ticker)
    return f"{t.base}_{t.quote}"


def _levels(levels: Sequence[Sequence[str]]) -> tuple[BookLevel, ...]:
    return tuple(BookLevel(str(lv[0]), str(lv[1])) for lv in levels)


def _frame(channel: str, event: str | None = None, payload: Sequence[str] | None = None) -> str:
    msg: dict[str, Any] = {"time": int(time.time()), "channel": channel}
    if event is not None:
        msg |= {"event": event, "payload": list(payload or ())}
    return orjson.dumps(msg).decode()


class GateioLive:
    exchange = EXCHANGE

    def __init__(self, tickers: Sequence[str], ws_url: str, rest_url: str, *, tops: bool = False) -> None:
        self.pairs = [ws_pair(t) for t in tickers]
        self.url = ws_url
        self.rest_url = rest_url.rstrip("/")
        self.tops = tops
        self._keepalive = KeepAlive(ping_interval_s=15.0, ping_frame=_frame(PING_CHANNEL), pong_timeout_s=10.0)
        self.books = GateioBooks()
        self._announced: set[str] = set()  # pairs whose synced book went out as a snapshot BookUpdate

    @property
    def keepalive(self) -> KeepAlive:
        """The keep-alive rules; the ping frame carries the current time."""
        return dataclasses.replace(self._keepalive, ping_frame=_frame(PING_CHANNEL))

    @keepalive.setter
    def keepalive(self, value: KeepAlive) -> None:
        self._keepalive = value

    def ws_url(self) -> str:
        return self.url

    def subscribe_frames(self) -> Sequence[str]:
        frames = [_frame(TRADES_CHANNEL, "subscribe", self.pairs)]
        frames += [_frame(BOOK_UPDATE_CHANNEL, "subscribe", [p, BOOK_INTERVAL]) for p in self.pairs]
        return frames + ([_frame(BOOK_TICKER_CHANNEL, "subscribe", self.pairs)] if self.tops else [])

    def on_connect(self, recv_ns: int) -> list[LiveEvent]:
        return []  # on_disconnect restarted every book

    def on_disconnect(self, recv_ns: int) -> list[LiveEvent]:
        self._announced.clear()
        return [stream_gap(g) for g in self.books.on_disconnect(recv_ns)]

    def is_pong(self, data: str | bytes) -> bool:
        raw = data.encode() if isinstance(data, str) else data
        return b'"channel":"spot.pong"' in raw

    def outgoing(self) -> Sequence[str]:
        return ()  # resyncs use REST snapshots, not resubscriptions

    def on_frame(self, data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FrameParseError("json", str(exc)) from None
        if not isinstance(msg, dict):
            raise FrameParseError("schema", f"not a JSON object: {str(data)[:120]}")
        if msg.get("error"):  # {"channel":..,"event":"subscribe","error":{"code":..,"message":..}}
            raise FrameParseError("subscription_error", f"{msg.get('channel')} {msg['error']}")
        if msg.get("event") != "update":
            return []  # subscribe / unsubscribe answers, pongs
        channel, result = msg.get("channel"), msg.get("result")
        try:
            if channel == TRADES_CHANNEL:
                trades = result if isinstance(result, list) else [result]
                return [Tick(ticker=ticker_for(str(t["currency_pair"])), trade_id=str(t["id"]),
                             price=str(t["price"]), size=str(t["amount"]), buyer_is_maker=t["side"] == "sell",
                             exchange_time_ns=int(Decimal(str(t["create_time_ms"])) * _MS), receive_time_ns=recv_ns)
                        for t in trades]  # fmt: skip
            if channel == BOOK_UPDATE_CHANNEL and isinstance(result, dict):
                return self._update(result, data, recv_ns)
            sync, outcome = self.books.on_frame(data, recv_ns)
            if outcome is Push.BOOK_TICKER and (t := self.books.book_ticker) is not None:
                return [TopOfBook(ticker=ticker_for(t.pair), bid_price=t.bid_price, bid_size=t.bid_size,
                                  ask_price=t.ask_price, ask_size=t.ask_size, exchange_time_ns=t.t_ms * _MS,
                                  receive_time_ns=recv_ns, sequence=t.update_id)]  # fmt: skip
            if outcome is Push.REFRESH and sync is not None:  # spot.order_book: a whole book
                self._announced.add(sync.symbol)
                return [self._snapshot_update(sync, recv_ns)]
            if outcome is Push.TICKER:
                return []  # spot.tickers: best prices without sizes, no TopOfBook
        except GateioParseError as exc:
            raise FrameParseError("schema", str(exc)) from None
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise FrameParseError("schema", f"{channel}: {type(exc).__name__} {exc}") from None
        raise FrameParseError("unknown_channel", str(channel))

    def _update(self, result: dict[str, Any], data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        pair = str(result.get("s", ""))
        sync = self.books.syncs.get(pair)
        announced_id = sync.book.update_id if sync is not None and pair in self._announced else None
        seen = len(sync.gaps) if sync is not None else 0
        sync, outcome = self.books.on_frame(data, recv_ns)
        assert sync is not None
        if outcome is Outcome.GAP:
            self._announced.discard(pair)
            return [stream_gap(g) for g in sync.gaps[seen:]]
        if outcome is Outcome.STALE_SNAPSHOT and announced_id is not None:
            # The announced snapshot was not continued by the stream (its first update starts past baseId + 1):
            # to its consumers that is a gap like any other; the pair fetches a new snapshot.
            self._announced.discard(pair)
            return [stream_gap(GapEvent(EXCHANGE, sync.ticker, recv_ns, GapHow.SEQUENCE_JUMP, last_seen=announced_id,
                                        first_missing=announced_id + 1, next_received=int(result["U"]),
                                        detail=f"{pair}: book updates do not continue the snapshot"))]  # fmt: skip
        if outcome is not Outcome.APPLIED:
            return []  # BUFFERED, DROPPED (in the snapshot already), IGNORED_OLD
        return [BookUpdate(ticker=sync.ticker, snapshot=False, bids=_levels(result["b"]), asks=_levels(result["a"]),
                           exchange_time_ns=sync.event_ms * _MS, receive_time_ns=recv_ns,
                           update_id=sync.book.update_id)]  # fmt: skip

    def _snapshot_update(self, sync: GateioBookSync, recv_ns: int) -> BookUpdate:
        return BookUpdate(ticker=sync.ticker, snapshot=True, bids=_levels(sync.book.bids()), asks=_levels(sync.book.asks()),
                          exchange_time_ns=sync.event_ms * _MS, receive_time_ns=recv_ns,
                          update_id=sync.book.update_id)  # fmt: skip

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        return [SnapshotRequest(p, f"{self.rest_url}{ORDER_BOOK_PATH}?"
                                   f"{urlencode({'currency_pair': p, 'limit': SNAPSHOT_LIMIT, 'with_id': 'true'})}")
                for p in self.books.wanting_snapshot()]  # fmt: skip

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        sync = self.books.sync_for(request.symbol)
        try:
            outcome = sync.on_snapshot(body, recv_ns)
        except GateioParseError as exc:
            raise FrameParseError("snapshot", str(exc)) from None
        if outcome is not Outcome.SNAPSHOT_APPLIED:
            return []  # stale: the pair asks for another (or not waiting for one)
        # Announce the book at once, bridged by the cached updates or not: diffs set absolute sizes, so the
        # bridging update (U <= baseId + 1 <= u) applies to it as a plain delta. The cached updates are
        # contiguous (DepthSync keeps only those after the last break), so replaying them cannot gap.
        self._announced.add(request.symbol)
        return [self._snapshot_update(sync, recv_ns)]
