"""Bybit v5 public websocket and market REST, replayed from data/cryptofeed/BYBIT.jsonl.zst.

Websocket (https://bybit-exchange.github.io/docs/v5/ws/connect): /v5/public/spot and
/v5/public/linear, each serving the frames recorded on that category's connection.
{"op":"subscribe","args":["orderbook.200.BTCUSDT",...]}; Bybit's ack names no topic, so
the n-th recorded ack answers the n-th recorded subscribe. {"op":"ping"} -> the spot
pong {"success":true,"ret_msg":"pong","conn_id":...,"op":"ping"}. Topics split as
(channel, symbol) = ("orderbook.200", "BTCUSDT"); an orderbook frame of "type":"delta"
is a book diff (the drop/reorder faults act on those).

REST: the recorded /v5/market/instruments-info answers, and derived from the recorded
publicTrade frames (ingestors.replay.history): /v5/market/kline (list newest first of
[startTime, open, high, low, close, volume, turnover]; start/end inclusive on the start
time; limit default 200, max 1000) and /v5/market/recent-trade (the newest trades, no
paging; limit spot default/max 60, others default 500 max 1000).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from ingestors.replay.history import TradeHistory, dec_str
from ingestors.replay.rest import BadRequest, int_param, json_response, limit_param
from ingestors.replay.session import HttpAnswer
from ingestors.replay.spec import ClientFrame, ExchangeReplay, FrameTag, Key, Kind, Trade

CONN_ID = "replay-conn-0"
INTERVALS_MS = {"1": 60_000, "3": 180_000, "5": 300_000, "15": 900_000, "30": 1_800_000, "60": 3_600_000,
                "120": 7_200_000, "240": 14_400_000, "360": 21_600_000, "720": 43_200_000, "D": 86_400_000}


def topic_key(topic: str) -> Key:
    """ "orderbook.200.BTCUSDT" -> ("orderbook.200", "BTCUSDT")."""
    channel, _, symbol = topic.rpartition(".")
    return channel, symbol


def classify(text: str) -> FrameTag:
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return FrameTag(Kind.SKIP)
    if msg.get("op") == "subscribe":
        return FrameTag(Kind.ACK)  # names nothing: matched to the recorded subscribes in order
    topic = msg.get("topic")
    if not isinstance(topic, str):
        return FrameTag(Kind.SKIP)  # pongs, unsubscribe answers
    key = topic_key(topic)
    diff = key[1] if key[0].startswith("orderbook.") and msg.get("type") == "delta" else ""
    return FrameTag(Kind.DATA, frozenset({key}), diff)


def client_frame(text: str) -> ClientFrame:
    try:
        msg = orjson.loads(text)
        op = msg["op"]
        args = [str(a) for a in msg.get("args", [])]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        bad = {"success": False, "ret_msg": f"error:request parse failed: {text[:100]}", "conn_id": CONN_ID, "op": ""}
        return ClientFrame(replies=(orjson.dumps(bad).decode(),))
    req_id = msg.get("req_id", "")
    if op == "ping":
        return ClientFrame(replies=(orjson.dumps({"success": True, "ret_msg": "pong", "conn_id": CONN_ID,
                                                  "req_id": req_id, "op": "ping"}).decode(),))
    keys = tuple(topic_key(a) for a in args)
    if op == "subscribe":
        return ClientFrame(subscribe=keys)
    if op == "unsubscribe":
        ack = {"success": True, "ret_msg": "", "conn_id": CONN_ID, "req_id": req_id, "op": "unsubscribe"}
        return ClientFrame(unsubscribe=keys, replies=(orjson.dumps(ack).decode(),))
    return ClientFrame()


def trades(path: str, text: str, _keys: frozenset[Key] = frozenset()) -> list[Trade]:
    """publicTrade rows, symbol "<category>:<symbol>" (spot and linear share symbol names)."""
    if '"publicTrade.' not in text:
        return []
    category = path.rstrip("/").rsplit("/", 1)[-1]
    return [Trade(f"{category}:{d['s']}", int(d["T"]), d["p"], d["v"], d["S"].lower(), d["i"])
            for d in orjson.loads(text).get("data", [])]


def error_body(status: int, msg: str) -> str:
    code = 10006 if status == 429 else 10016 if status >= 500 else 10001
    return orjson.dumps({"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {},
                         "time": int(time.time() * 1000)}).decode()


def _ok(result: dict[str, Any]) -> web.Response:
    return json_response({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                          "time": int(time.time() * 1000)})


def rest_routes(history: TradeHistory, _recorded: list[HttpAnswer]) -> list[web.RouteDef]:
    def bad(exc: BadRequest) -> web.Response:
        return web.Response(text=error_body(400, str(exc)), content_type="application/json")  # Bybit: HTTP 200

    async def kline(request: web.Request) -> web.Response:
        category, symbol = request.query.get("category", "spot"), request.query.get("symbol", "")
        try:
            interval = request.query.get("interval", "")
            if interval not in INTERVALS_MS:
                raise BadRequest(f"Invalid period! interval={interval!r}")
            start, end = int_param(request, "start"), int_param(request, "end")
            limit = limit_param(request, 200, 1000)
        except BadRequest as exc:
            return bad(exc)
        rows = [c for c in reversed(history.candles(f"{category}:{symbol}", INTERVALS_MS[interval]))
                if (start is None or c.start_ms >= start) and (end is None or c.start_ms <= end)]
        if end is None and start is not None:  # only `start`: the page beginning there
            rows = rows[-limit:]
        return _ok({"category": category, "symbol": symbol, "list": [
            [str(c.start_ms), c.open, c.high, c.low, c.close, dec_str(c.volume), dec_str(c.quote_volume)]
            for c in rows[:limit]]})

    async def recent_trade(request: web.Request) -> web.Response:
        category, symbol = request.query.get("category", "spot"), request.query.get("symbol", "")
        try:
            limit = limit_param(request, 60, 60) if category == "spot" else limit_param(request, 500, 1000)
        except BadRequest as exc:
            return bad(exc)
        rows = list(reversed(history.trades(f"{category}:{symbol}")))[:limit]
        return _ok({"category": category, "list": [
            {"execId": t.trade_id, "symbol": symbol, "price": t.price, "size": t.size, "side": t.side.capitalize(),
             "time": str(t.ts_ms), "isBlockTrade": False, "isRPITrade": False} for t in rows]})

    return [web.get("/v5/market/kline", kline), web.get("/v5/market/recent-trade", recent_trade)]


REPLAY = ExchangeReplay(
    exchange="BYBIT", recording="BYBIT.jsonl.zst", port=8769, classify=classify, client_frame=client_frame,
    trades=trades, rest_routes=rest_routes, error_body=error_body, malformed='{"topic":"orderbook.200.BTCUSDT","type":',
)
