"""OKX v5 public websocket and market REST, replayed from data/cryptofeed/OKX.jsonl.zst.

Websocket (https://www.okx.com/docs-v5/en/#overview-websocket): path /ws/v5/public;
{"op":"subscribe","args":[{"channel","instId"}]} answered by one recorded
{"event":"subscribe","arg":{...}} per arg; text "ping" -> "pong" (OKX's keepalive).
Frames {"arg":{"channel","instId"},...} belong to (channel, instId); a books frame with
"action":"update" is a book diff (the drop/reorder faults act on those).

REST: the recorded /api/v5/public/instruments answers, and derived from the recorded
trades (ingestors.replay.history): /api/v5/market/candles and /history-candles
(rows [ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm], newest first; `after` = older than
ts, `before` = newer than ts, both exclusive; limit default/max 100 (candles: 300)),
/api/v5/market/trades (newest, limit max 500) and /history-trades (type=1: `after`/`before`
are tradeIds, type=2: timestamps; limit default/max 100). Derived volumes: vol = sum of
sz (base currency on SPOT, contracts on SWAP/FUTURES), volCcy = volCcyQuote = sum of
px x sz, which is only right for SPOT (derivatives would need ctVal).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ingestors.okx.config import EXCHANGE, INCREMENTAL_CHANNELS
from ingestors.replay.history import Candle, TradeHistory, dec_str
from ingestors.replay.rest import BadRequest, int_param, json_response, limit_param
from ingestors.replay.session import HttpAnswer
from ingestors.replay.spec import ClientFrame, ExchangeReplay, FrameTag, Key, Kind, Trade

BARS_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1H": 3_600_000,
           "2H": 7_200_000, "4H": 14_400_000}


def classify(text: str) -> FrameTag:
    if text == "pong":  # the answer to the recorder's own "ping"
        return FrameTag(Kind.SKIP)
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return FrameTag(Kind.SKIP)
    arg = msg.get("arg") or {}
    key: Key = (str(arg.get("channel", "")), str(arg.get("instId", "")))
    if msg.get("event") == "subscribe":
        return FrameTag(Kind.ACK, frozenset({key}))
    if "event" in msg or "data" not in msg:
        return FrameTag(Kind.SKIP)
    diff = key[1] if key[0] in INCREMENTAL_CHANNELS and msg.get("action") == "update" else ""
    return FrameTag(Kind.DATA, frozenset({key}), diff)


def _error(msg: str, code: str = "60012") -> str:
    return orjson.dumps({"event": "error", "code": code, "msg": msg}).decode()


def client_frame(text: str) -> ClientFrame:
    if text == "ping":
        return ClientFrame(replies=("pong",))
    try:
        msg = orjson.loads(text)
        op, args = msg["op"], msg.get("args", [])
        keys = tuple((str(a["channel"]), str(a.get("instId", ""))) for a in args)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return ClientFrame(replies=(_error(f"Illegal request: {text}"),))
    if op == "subscribe":
        return ClientFrame(subscribe=keys)
    if op == "unsubscribe":
        acks = tuple(orjson.dumps({"event": "unsubscribe", "arg": a}).decode() for a in args)
        return ClientFrame(unsubscribe=keys, replies=acks)
    return ClientFrame(replies=(_error(f"Illegal request: {text}"),))


def trades(_path: str, text: str, _keys: frozenset[Key] = frozenset()) -> list[Trade]:
    if '"trades"' not in text:
        return []
    msg = orjson.loads(text)
    if (msg.get("arg") or {}).get("channel") != "trades":
        return []
    return [Trade(d["instId"], int(d["ts"]), d["px"], d["sz"], d["side"], d["tradeId"]) for d in msg.get("data", [])]


def error_body(status: int, msg: str) -> str:
    code = "50011" if status == 429 else "50000" if status >= 500 else "51000"
    return orjson.dumps({"code": code, "msg": msg, "data": []}).decode()


def _ok(data: list[Any]) -> web.Response:
    return json_response({"code": "0", "msg": "", "data": data})


def _candle_row(c: Candle) -> list[str]:
    quote = dec_str(c.quote_volume)
    return [str(c.start_ms), c.open, c.high, c.low, c.close, dec_str(c.volume), quote, quote, "1"]


def rest_routes(history: TradeHistory, _recorded: list[HttpAnswer]) -> list[web.RouteDef]:
    def bad(exc: BadRequest) -> web.Response:
        return web.Response(text=error_body(400, str(exc)), status=400, content_type="application/json")

    def candles_handler(default_limit: int, max_limit: int) -> Any:
        async def handle(request: web.Request) -> web.Response:
            try:
                bar = request.query.get("bar", "1m")
                if bar not in BARS_MS:
                    raise BadRequest(f"Parameter bar error: {bar}")
                after, before = int_param(request, "after"), int_param(request, "before")
                limit = limit_param(request, default_limit, max_limit)
            except BadRequest as exc:
                return bad(exc)
            rows = [c for c in reversed(history.candles(request.query.get("instId", ""), BARS_MS[bar]))
                    if (after is None or c.start_ms < after) and (before is None or c.start_ms > before)]
            if after is None and before is not None:  # only `before`: the page nearest to `before`
                rows = rows[-limit:]
            return _ok([_candle_row(c) for c in rows[:limit]])

        return handle

    def trades_handler(default_limit: int, max_limit: int, paged: bool) -> Any:
        async def handle(request: web.Request) -> web.Response:
            try:
                by_time = request.query.get("type", "1") == "2"
                after = int_param(request, "after") if paged else None
                before = int_param(request, "before") if paged else None
                limit = limit_param(request, default_limit, max_limit)
            except BadRequest as exc:
                return bad(exc)

            def pos(t: Trade) -> int:
                return t.ts_ms if by_time else int(t.trade_id)

            rows = [t for t in reversed(history.trades(request.query.get("instId", "")))
                    if (after is None or pos(t) < after) and (before is None or pos(t) > before)]
            if after is None and before is not None:
                rows = rows[-limit:]
            return _ok([{"instId": t.symbol, "side": t.side, "sz": t.size, "px": t.price, "tradeId": t.trade_id,
                         "ts": str(t.ts_ms)} for t in rows[:limit]])

        return handle

    return [web.get("/api/v5/market/candles", candles_handler(100, 300)),
            web.get("/api/v5/market/history-candles", candles_handler(100, 100)),
            web.get("/api/v5/market/trades", trades_handler(100, 500, paged=False)),
            web.get("/api/v5/market/history-trades", trades_handler(100, 100, paged=True))]


REPLAY = ExchangeReplay(
    exchange=EXCHANGE, recording="OKX.jsonl.zst", port=8768, classify=classify, client_frame=client_frame,
    trades=trades, rest_routes=rest_routes, error_body=error_body, malformed='{"arg":{"channel":"books","instId"',
)
