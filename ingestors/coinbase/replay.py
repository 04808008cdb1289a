"""Coinbase Advanced Trade websocket and market REST, replayed from data/cryptofeed/COINBASE.jsonl.zst.

Websocket (https://docs.cdp.coinbase.com/advanced-trade/docs/ws-overview): path /
(wss://advanced-trade-ws.coinbase.com); {"type":"subscribe","product_ids":[...],
"channel":"level2"}. Coinbase's ack, a "subscriptions" frame listing everything
subscribed so far, names no request: the n-th recorded one answers the n-th recorded
subscribe. Channels as recorded: level2 (frames of channel "l2_data"), market_trades,
ticker, candles, heartbeats (keepalive: Coinbase has no ping; a client subscribes to
heartbeats, whose product_ids do not matter). A frame belongs to (channel, product_id)
of each product it carries; an l2_data frame of only "update" events is a book diff.
sequence_num counts every frame of a connection: it is rewritten per client connection
(0, 1, 2... over the frames that client gets, a dropped frame keeping its number), which
gives the recorded numbers to a client subscribed as the recorder was.

REST: the recorded /api/v3/brokerage/market/products answer (and one product of it at
/market/products/{id}), and derived from the recorded market_trades
(ingestors.replay.history): /market/products/{id}/candles (start/end unix seconds,
granularity ONE_MINUTE..ONE_DAY, newest first, at most 350 per request, an error past
that) and /market/products/{id}/ticker (trades newest first in [start, end), limit max
1000; best_bid/best_ask are "" as no REST book is recorded).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from ingestors.replay.history import TradeHistory, dec_str
from ingestors.replay.rest import BadRequest, int_param, json_response, limit_param
from ingestors.replay.session import HttpAnswer
from ingestors.replay.spec import ClientFrame, ExchangeReplay, FrameTag, Key, Kind, Trade

GRANULARITY_S = {"ONE_MINUTE": 60, "FIVE_MINUTE": 300, "FIFTEEN_MINUTE": 900, "THIRTY_MINUTE": 1800,
                 "ONE_HOUR": 3600, "TWO_HOUR": 7200, "SIX_HOUR": 21600, "ONE_DAY": 86400}
MAX_CANDLES = 350
WIRE_CHANNEL = {"l2_data": "level2"}  # the data frames' channel -> the channel a client subscribes to
HEARTBEATS: Key = ("heartbeats", "")


def _products(channel: str, events: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for e in events:
        if "product_id" in e:
            out.add(e["product_id"])
        for name in ("trades", "tickers", "candles"):
            out.update(row.get("product_id", "") for row in e.get(name) or [])
    return out


def classify(text: str) -> FrameTag:
    try:
        msg = orjson.loads(text)
        channel, events = str(msg["channel"]), msg.get("events") or []
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return FrameTag(Kind.SKIP)
    if channel == "subscriptions":
        return FrameTag(Kind.ACK)
    if channel == "heartbeats":
        return FrameTag(Kind.DATA, frozenset({HEARTBEATS}))
    name = WIRE_CHANNEL.get(channel, channel)
    products = _products(channel, events)
    keys = frozenset((name, p) for p in products)
    diff = ""
    if channel == "l2_data" and len(products) == 1 and events and all(e.get("type") == "update" for e in events):
        diff = next(iter(products))
    return FrameTag(Kind.DATA, keys, diff)


_SEQ = re.compile(r'"sequence_num":\d+')


def renumber(text: str, n: int) -> str | None:
    """The frame with its connection-wide sequence_num set to n."""
    out, found = _SEQ.subn(f'"sequence_num":{n}', text, count=1)
    return out if found else None


def client_frame(text: str) -> ClientFrame:
    try:
        msg = orjson.loads(text)
        kind, channel = msg["type"], WIRE_CHANNEL.get(msg["channel"], msg["channel"])
        products = [str(p) for p in msg.get("product_ids", [])]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return ClientFrame(replies=(orjson.dumps({"type": "error", "message": "failure to parse request"}).decode(),))
    keys = (HEARTBEATS,) if channel == "heartbeats" else tuple((channel, p) for p in products)
    if kind == "subscribe":
        return ClientFrame(subscribe=keys)
    if kind == "unsubscribe":
        return ClientFrame(unsubscribe=keys)
    return ClientFrame(replies=(orjson.dumps({"type": "error", "message": f"unknown type {kind}"}).decode(),))


def iso_ms(text: str) -> int:
    """ "2026-08-09T21:05:42.514318Z" (nanosecond fractions allowed) -> ms since epoch."""
    head, _, frac = text.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(head + "+00:00").timestamp()
    return int(whole) * 1000 + int((frac + "000")[:3])


def trades(_path: str, text: str, _keys: frozenset[Key] = frozenset()) -> list[Trade]:
    if not text.startswith('{"channel":"market_trades"'):
        return []
    return [Trade(t["product_id"], iso_ms(t["time"]), t["price"], t["size"], t["side"].lower(), t["trade_id"], t["time"])
            for e in orjson.loads(text).get("events", []) for t in e.get("trades", [])]


def error_body(status: int, msg: str) -> str:
    code = "RATE_LIMIT_EXCEEDED" if status == 429 else "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"
    return orjson.dumps({"error": code, "error_details": msg, "message": msg}).decode()


def rest_routes(history: TradeHistory, recorded: list[HttpAnswer]) -> list[web.RouteDef]:
    products: dict[str, Any] = {}
    for ans in recorded:
        if ans.path == "/api/v3/brokerage/market/products":
            products.update({p["product_id"]: p for p in orjson.loads(ans.body).get("products", [])})

    def bad(exc: BadRequest, status: int = 400) -> web.Response:
        return web.Response(text=error_body(status, str(exc)), status=status, content_type="application/json")

    async def product(request: web.Request) -> web.Response:
        pid = request.match_info["product_id"]
        if pid not in products:
            return bad(BadRequest(f"ProductID {pid} not found"), 404)
        return json_response(products[pid])

    async def candles(request: web.Request) -> web.Response:
        pid = request.match_info["product_id"]
        try:
            granularity = GRANULARITY_S.get(request.query.get("granularity", ""))
            start, end = int_param(request, "start"), int_param(request, "end")
            if granularity is None or start is None or end is None:
                raise BadRequest("start, end and a valid granularity are required")
            limit = limit_param(request, MAX_CANDLES, MAX_CANDLES)
            if (end - start) // granularity > limit:
                raise BadRequest(f"number of candles requested should be less than {limit + 1}")
        except BadRequest as exc:
            return bad(exc)
        rows = [c for c in reversed(history.candles(pid, granularity * 1000)) if start <= c.start_ms // 1000 < end]
        return json_response({"candles": [
            {"start": str(c.start_ms // 1000), "low": c.low, "high": c.high, "open": c.open, "close": c.close,
             "volume": dec_str(c.volume)} for c in rows]})

    async def ticker(request: web.Request) -> web.Response:
        pid = request.match_info["product_id"]
        try:
            limit = limit_param(request, 100, 1000)
            start, end = int_param(request, "start"), int_param(request, "end")
        except BadRequest as exc:
            return bad(exc)
        rows = [t for t in reversed(history.trades(pid))
                if (start is None or t.ts_ms >= start * 1000) and (end is None or t.ts_ms < end * 1000)][:limit]
        return json_response({"trades": [
            {"trade_id": t.trade_id, "product_id": pid, "price": t.price, "size": t.size, "time": t.ts_text,
             "side": t.side.upper(), "exchange": "coinbase"} for t in rows], "best_bid": "", "best_ask": ""})

    base = "/api/v3/brokerage/market/products/{product_id}"
    return [web.get(base, product), web.get(base + "/candles", candles), web.get(base + "/ticker", ticker)]


REPLAY = ExchangeReplay(
    exchange="COINBASE", recording="COINBASE.jsonl.zst", port=8766, classify=classify, client_frame=client_frame,
    trades=trades, rest_routes=rest_routes, error_body=error_body, malformed='{"channel":"l2_data","timestamp":"2026-',
    renumber=renumber, first_sequence=0,
)
