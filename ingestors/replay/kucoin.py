"""KuCoin spot websocket and REST v1, replayed from data/cryptofeed/KUCOIN.jsonl.zst.

Lives here, not in ingestors/kucoin/ (another helper owns that package); it can move.

Connecting (https://www.kucoin.com/docs/websocket/basic-info/apply-connect-token):
POST /api/v1/bullet-public answers a token and this server's ws://host/endpoint (the
recorded path); the client connects to it with ?token=...&connectId=... (not checked).
On connect the recorded {"id":..,"type":"welcome"}; {"id":..,"type":"subscribe",
"topic":"/market/level2:EQZ-BTC,ANKR-BTC","response":true} is answered by the recorded
{"id":..,"type":"ack"} (the n-th answers the n-th recorded subscribe; its id is the
recorded one). {"id":"x","type":"ping"} -> {"id":"x","type":"pong"}. Topics split as
(prefix, symbol) = ("/market/level2", "EQZ-BTC"), candles ("/market/candles",
"EQZ-BTC_1min"); a /market/level2 frame is a book diff (faults act on those).

REST: the recorded /api/v1/symbols and /api/v3/market/orderbook/level2 snapshots (by
symbol), and derived from the recorded /market/match trades (ingestors.replay.history):
/api/v1/market/candles (rows [time s, open, close, high, low, volume, turnover] newest
first, startAt/endAt seconds, at most 1500) and /api/v1/market/histories (the last 100
trades, oldest first as KuCoin lists them; time in ns).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from ingestors.replay.history import TradeHistory, dec_str
from ingestors.replay.rest import BadRequest, int_param, json_response
from ingestors.replay.session import HttpAnswer
from ingestors.replay.spec import ClientFrame, ExchangeReplay, FrameTag, Key, Kind, Trade

TYPES_S = {"1min": 60, "3min": 180, "5min": 300, "15min": 900, "30min": 1800, "1hour": 3600, "2hour": 7200,
           "4hour": 14400, "6hour": 21600, "8hour": 28800, "12hour": 43200, "1day": 86400, "1week": 604800}
MAX_CANDLES = 1500
WS_PATH = "/endpoint"


def topic_keys(topic: str) -> tuple[Key, ...]:
    """ "/market/match:A-B,C-D" -> (("/market/match", "A-B"), ("/market/match", "C-D"))."""
    prefix, _, symbols = topic.partition(":")
    return tuple((prefix, s) for s in symbols.split(",") if s)


def classify(text: str) -> FrameTag:
    try:
        msg = orjson.loads(text)
        kind = msg["type"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return FrameTag(Kind.SKIP)
    if kind == "welcome":
        return FrameTag(Kind.GREETING)
    if kind == "ack":
        return FrameTag(Kind.ACK)
    if kind != "message":
        return FrameTag(Kind.SKIP)  # pongs, errors
    keys = topic_keys(str(msg.get("topic", "")))
    diff = keys[0][1] if keys and keys[0][0] == "/market/level2" else ""
    return FrameTag(Kind.DATA, frozenset(keys), diff)


def client_frame(text: str) -> ClientFrame:
    try:
        msg = orjson.loads(text)
        kind, rid = msg["type"], str(msg.get("id", ""))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return ClientFrame(replies=(orjson.dumps({"type": "error", "code": 400, "data": "malformed request"}).decode(),))
    if kind == "ping":
        return ClientFrame(replies=(orjson.dumps({"id": rid, "type": "pong"}).decode(),))
    keys = topic_keys(str(msg.get("topic", "")))
    if kind == "subscribe":
        return ClientFrame(subscribe=keys)
    if kind == "unsubscribe":
        return ClientFrame(unsubscribe=keys, replies=(orjson.dumps({"id": rid, "type": "ack"}).decode(),))
    return ClientFrame()


def trades(_path: str, text: str, _keys: frozenset[Key] = frozenset()) -> list[Trade]:
    if '"subject":"trade.l3match"' not in text:
        return []
    d = orjson.loads(text)["data"]
    return [Trade(d["symbol"], int(d["time"]) // 1_000_000, d["price"], d["size"], d["side"], d["tradeId"],
                  d["time"] + "|" + d["sequence"])]


def error_body(status: int, msg: str) -> str:
    return orjson.dumps({"code": "429000" if status == 429 else "500000" if status >= 500 else "400100",
                         "msg": msg}).decode()


def rest_routes(history: TradeHistory, _recorded: list[HttpAnswer]) -> list[web.RouteDef]:
    def bad(exc: BadRequest) -> web.Response:
        return web.Response(text=error_body(400, str(exc)), status=400, content_type="application/json")

    async def bullet(request: web.Request) -> web.Response:
        return json_response({"code": "200000", "data": {"token": "REPLAY-TOKEN", "instanceServers": [
            {"endpoint": f"ws://{request.host}{WS_PATH}", "encrypt": False, "protocol": "websocket",
             "pingInterval": 18000, "pingTimeout": 10000}]}})

    async def candles(request: web.Request) -> web.Response:
        try:
            step = TYPES_S.get(request.query.get("type", ""))
            if step is None:
                raise BadRequest(f"invalid type {request.query.get('type')!r}")
            start, end = int_param(request, "startAt"), int_param(request, "endAt")
        except BadRequest as exc:
            return bad(exc)
        rows = [c for c in reversed(history.candles(request.query.get("symbol", ""), step * 1000))
                if (not start or c.start_ms // 1000 >= start) and (not end or c.start_ms // 1000 < end)]
        return json_response({"code": "200000", "data": [
            [str(c.start_ms // 1000), c.open, c.close, c.high, c.low, dec_str(c.volume), dec_str(c.quote_volume)]
            for c in rows[:MAX_CANDLES]]})

    async def histories(request: web.Request) -> web.Response:
        rows = history.trades(request.query.get("symbol", ""))[-100:]
        return json_response({"code": "200000", "data": [
            {"sequence": t.ts_text.split("|")[1], "price": t.price, "size": t.size, "side": t.side,
             "time": int(t.ts_text.split("|")[0])} for t in rows]})

    return [web.post("/api/v1/bullet-public", bullet), web.get("/api/v1/market/candles", candles),
            web.get("/api/v1/market/histories", histories)]


REPLAY = ExchangeReplay(
    exchange="KUCOIN", recording="KUCOIN.jsonl.zst", port=8771, classify=classify, client_frame=client_frame,
    trades=trades, rest_routes=rest_routes, error_body=error_body, malformed='{"data":{"sequenceStart":16132771',
)
