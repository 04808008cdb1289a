"""HTX (Huobi) spot websocket and market REST, replayed from data/cryptofeed/HUOBI.jsonl.zst.

Lives here, not in ingestors/huobi/ (another helper owns that package); it can move.

Websocket (https://www.htx.com/en-us/opend/newApiPages/?id=7ec5342e-7773-11ed-9966-0242ac110003):
path /ws; every server frame is gzip-compressed JSON in a binary frame, sent as the
recorded bytes. {"sub":"market.btcusdt.depth.step0","id":1} is answered by the recorded
{"id":1,"status":"ok","subbed":...}; the server's {"ping":ts} frames are replayed (the
client answers {"pong":ts}, ignored) and a client's {"ping":ts} gets {"pong":ts}.
Channels split as (topic, symbol) = ("depth.step0", "btcusdt"). depth.step0 pushes whole
150-level books (no incremental feed was recorded): the drop/reorder faults act on those.

REST: the recorded /v1/common/symbols, and derived from the recorded trade.detail frames
(ingestors.replay.history): /market/history/kline (data newest first {"id","open",
"close","low","high","amount","vol","count"}, size default 150, max 2000) and
/market/history/trade (newest first, size default 1, max 2000).
"""

from __future__ import annotations

import gzip
import json
import time
from decimal import Decimal

import orjson
from aiohttp import web

from ingestors.replay.history import TradeHistory
from ingestors.replay.rest import BadRequest, json_response, limit_param
from ingestors.replay.session import HttpAnswer
from ingestors.replay.spec import ClientFrame, ExchangeReplay, FrameTag, Key, Kind, Trade

PERIODS_MS = {"1min": 60_000, "5min": 300_000, "15min": 900_000, "30min": 1_800_000, "60min": 3_600_000,
              "4hour": 14_400_000, "1day": 86_400_000}


def channel_key(ch: str) -> Key:
    """ "market.btcusdt.depth.step0" -> ("depth.step0", "btcusdt")."""
    _market, symbol, topic = (ch.split(".", 2) + ["", ""])[:3]
    return topic, symbol


def classify(text: str) -> FrameTag:
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return FrameTag(Kind.SKIP)
    if "ping" in msg:
        return FrameTag(Kind.CONN)
    if msg.get("subbed"):
        return FrameTag(Kind.ACK, frozenset({channel_key(str(msg["subbed"]))}))
    if "ch" not in msg:
        return FrameTag(Kind.SKIP)
    key = channel_key(str(msg["ch"]))
    return FrameTag(Kind.DATA, frozenset({key}), key[1] if key[0].startswith("depth") else "")


def _dump(obj: object) -> str:
    return orjson.dumps(obj).decode()


def client_frame(text: str) -> ClientFrame:
    try:
        msg = orjson.loads(text)
        assert isinstance(msg, dict)
    except (orjson.JSONDecodeError, AssertionError):
        return ClientFrame(replies=(_dump({"status": "error", "ts": int(time.time() * 1000), "err-code": "bad-request",
                                           "err-msg": "invalid json"}),))
    if "ping" in msg:
        return ClientFrame(replies=(_dump({"pong": msg["ping"]}),))
    if "sub" in msg:
        return ClientFrame(subscribe=(channel_key(str(msg["sub"])),))
    if "unsub" in msg:
        ack = {"id": msg.get("id"), "status": "ok", "unsubbed": msg["unsub"], "ts": int(time.time() * 1000)}
        return ClientFrame(unsubscribe=(channel_key(str(msg["unsub"])),), replies=(_dump(ack),))
    return ClientFrame()  # {"pong": ts}


def trades(_path: str, text: str, keys: frozenset[Key] = frozenset()) -> list[Trade]:
    key = next(iter(keys), ("", ""))
    if key[0] != "trade.detail":
        return []
    tick = json.loads(text)["tick"]  # the stdlib: trade ids exceed 64 bits (orjson would round them to floats)
    return [Trade(key[1], int(d["ts"]), repr(d["price"]), repr(d["amount"]), d["direction"], str(d["tradeId"]),
                  f"{tick['id']}|{d['id']}") for d in tick["data"]]


def error_body(status: int, msg: str) -> str:
    code = "too-many-request" if status == 429 else "internal-error" if status >= 500 else "invalid-parameter"
    return _dump({"status": "error", "err-code": code, "err-msg": msg, "data": None})


def rest_routes(history: TradeHistory, _recorded: list[HttpAnswer]) -> list[web.RouteDef]:
    def bad(exc: BadRequest) -> web.Response:
        return web.Response(text=error_body(400, str(exc)), content_type="application/json")  # HTX: HTTP 200

    async def kline(request: web.Request) -> web.Response:
        symbol, period = request.query.get("symbol", ""), request.query.get("period", "")
        try:
            if period not in PERIODS_MS:
                raise BadRequest(f"invalid period {period!r}")
            size = limit_param(request, 150, 2000, "size")
        except BadRequest as exc:
            return bad(exc)
        rows = list(reversed(history.candles(symbol, PERIODS_MS[period])))[:size]
        return json_response({"ch": f"market.{symbol}.kline.{period}", "status": "ok", "ts": int(time.time() * 1000),
                              "data": [{"id": c.start_ms // 1000, "open": float(c.open), "close": float(c.close),
                                        "low": float(c.low), "high": float(c.high), "amount": float(c.volume),
                                        "vol": float(c.quote_volume), "count": c.count} for c in rows]})

    async def trade(request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "")
        try:
            size = limit_param(request, 1, 2000, "size")
        except BadRequest as exc:
            return bad(exc)
        rows = list(reversed(history.trades(symbol)))[:size]
        body = {"ch": f"market.{symbol}.trade.detail", "status": "ok", "ts": int(time.time() * 1000),
                "data": [{"id": int(t.ts_text.split("|")[0]), "ts": t.ts_ms, "data": [
                    {"id": int(t.ts_text.split("|")[1]), "ts": t.ts_ms, "trade-id": int(t.trade_id),
                     "amount": float(Decimal(t.size)), "price": float(Decimal(t.price)), "direction": t.side}]}
                         for t in rows]}
        return web.Response(text=json.dumps(body, separators=(",", ":")), content_type="application/json")

    return [web.get("/market/history/kline", kline), web.get("/market/history/trade", trade)]


REPLAY = ExchangeReplay(
    exchange="HUOBI", recording="HUOBI.jsonl.zst", port=8770, classify=classify, client_frame=client_frame,
    trades=trades, rest_routes=rest_routes, error_body=error_body, malformed='{"ch":"market.trioeth.depth.step0","ts":',
    decode_binary=lambda raw: gzip.decompress(raw).decode(), encode_reply=lambda text: gzip.compress(text.encode(), mtime=0),
)
