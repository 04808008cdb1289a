"""Bitfinex websocket v2 and REST v2, replayed from data/cryptofeed/BITFINEX.jsonl.zst.

Lives here, not in ingestors/bitfinex/ (another helper owns that package); it can move.

Websocket (https://docs.bitfinex.com/docs/ws-general): path /ws/2. On connect the
recorded {"event":"info",...}; {"event":"conf","flags":N} -> {"event":"conf","status":"OK",
"flags":N}; {"event":"subscribe","channel":"book","symbol":"tBTCUSD",...} is answered by
the recorded {"event":"subscribed",...,"chanId":..}; {"event":"ping","cid":N} ->
{"event":"pong","ts":..,"cid":N}. Data frames [chanId, payload(, seq)] name only their
chanId: the recorded "subscribed" answers map it to (channel, symbol), so classifying is
stateful (ExchangeReplay.new_classifier). A book frame whose payload is one flat level is a
diff (faults act on those). The recording used flags 65536 (SEQ_ALL: every channel
frame ends with a sequence number over the connection): rewritten per client connection
(1, 2, 3... over the frames it gets; a dropped frame keeps its number), which gives the
recorded numbers to a client subscribed as the recorder was.
Not done: unsubscribe by chanId is acknowledged but frames keep coming.

REST: the recorded /v2/conf/... answers, and derived from the recorded trades
(ingestors.replay.history): /v2/candles/trade:{tf}:{symbol}/hist ([[MTS, OPEN, CLOSE,
HIGH, LOW, VOLUME]], start/end ms inclusive, sort -1 (default, newest first) or 1, limit
default 100, max 10000) and /v2/trades/{symbol}/hist ([[ID, MTS, AMOUNT, PRICE]], AMOUNT
negative for a sell, same paging, limit default 125).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from ingestors.replay.history import TradeHistory
from ingestors.replay.rest import BadRequest, int_param, json_response, limit_param
from ingestors.replay.session import HttpAnswer
from ingestors.replay.spec import ClientFrame, ExchangeReplay, FrameTag, Key, Kind, Trade

TIMEFRAMES_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000, "3h": 10_800_000,
                 "6h": 21_600_000, "12h": 43_200_000, "1D": 86_400_000}


def new_classifier() -> Callable[[str], FrameTag]:
    """A classify for one recorded connection, learning chanId -> (channel, symbol) from its "subscribed" answers."""
    channels: dict[int, Key] = {}

    def classify(text: str) -> FrameTag:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return FrameTag(Kind.SKIP)
        if isinstance(msg, dict):
            event = msg.get("event")
            if event == "info":
                return FrameTag(Kind.GREETING)
            if event == "subscribed":
                key = (str(msg.get("channel", "")), str(msg.get("symbol", "")))
                channels[int(msg.get("chanId", -1))] = key
                return FrameTag(Kind.ACK, frozenset({key}))
            return FrameTag(Kind.SKIP)  # conf (answered by client_frame), pongs, unsubscribed
        if not isinstance(msg, list) or not msg or msg[0] not in channels:
            return FrameTag(Kind.SKIP)
        key = channels[msg[0]]
        payload = msg[1] if len(msg) > 1 else None
        diff = key[1] if key[0] == "book" and isinstance(payload, list) and payload and not isinstance(payload[0], list) else ""
        return FrameTag(Kind.DATA, frozenset({key}), diff)

    return classify


_SEQ = re.compile(r",(\d+)\]$")


def renumber(text: str, n: int) -> str | None:
    """A channel frame with its SEQ_ALL number (its last element) set to n; events carry none."""
    if not text.startswith("["):
        return None
    out, found = _SEQ.subn(f",{n}]", text, count=1)
    return out if found else None


def client_frame(text: str) -> ClientFrame:
    try:
        msg = orjson.loads(text)
        event = msg["event"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return ClientFrame(replies=(orjson.dumps({"event": "error", "msg": "invalid", "code": 10000}).decode(),))
    if event == "ping":
        return ClientFrame(replies=(orjson.dumps({"event": "pong", "ts": int(time.time() * 1000),
                                                  "cid": msg.get("cid")}).decode(),))
    if event == "conf":
        return ClientFrame(replies=(orjson.dumps({"event": "conf", "status": "OK", "flags": msg.get("flags", 0)}).decode(),))
    if event == "subscribe":
        return ClientFrame(subscribe=((str(msg.get("channel", "")), str(msg.get("symbol", ""))),))
    if event == "unsubscribe":
        ack = {"event": "unsubscribed", "status": "OK", "chanId": msg.get("chanId")}
        return ClientFrame(replies=(orjson.dumps(ack).decode(),))
    return ClientFrame(replies=(orjson.dumps({"event": "error", "msg": f"unknown event {event}", "code": 10000}).decode(),))


def _trade(symbol: str, row: list[Any]) -> Trade:
    trade_id, mts, amount, price = row[:4]
    amount_d = Decimal(repr(amount))
    return Trade(symbol, int(mts), repr(price), str(abs(amount_d)), "buy" if amount_d > 0 else "sell", str(trade_id),
                 repr(amount))


def trades(_path: str, text: str, keys: frozenset[Key] = frozenset()) -> list[Trade]:
    key = next(iter(keys), ("", ""))
    if key[0] != "trades" or not text.startswith("["):
        return []
    msg = orjson.loads(text)
    if len(msg) > 2 and msg[1] == "te":  # executed; "tu" repeats the same trade with its final id
        return [_trade(key[1], msg[2])]
    if isinstance(msg[1], list) and msg[1] and isinstance(msg[1][0], list):  # the snapshot
        return [_trade(key[1], row) for row in msg[1]]
    return []


def error_body(status: int, msg: str) -> str:
    return orjson.dumps(["error", 11010 if status == 429 else 10020, "ERR_RATE_LIMIT" if status == 429 else msg]).decode()


def _page(request: web.Request, default_limit: int) -> tuple[int | None, int | None, int, bool]:
    start, end = int_param(request, "start"), int_param(request, "end")
    return start, end, limit_param(request, default_limit, 10_000), request.query.get("sort", "-1") == "1"


def _window(rows: list[Any], start: int | None, end: int | None, limit: int, ascending: bool,
            ms: Callable[[Any], int]) -> list[Any]:
    rows = [r for r in rows if (start is None or ms(r) >= start) and (end is None or ms(r) <= end)]
    return rows[:limit] if ascending else rows[::-1][:limit]


def rest_routes(history: TradeHistory, _recorded: list[HttpAnswer]) -> list[web.RouteDef]:
    def bad(exc: BadRequest) -> web.Response:
        return web.Response(text=error_body(400, str(exc)), status=400, content_type="application/json")

    async def candles(request: web.Request) -> web.Response:
        _trade_kw, tf, symbol = request.match_info["key"].split(":", 2)
        try:
            if tf not in TIMEFRAMES_MS:
                raise BadRequest(f"invalid timeframe {tf}")
            start, end, limit, ascending = _page(request, 100)
        except BadRequest as exc:
            return bad(exc)
        rows = _window(history.candles(symbol, TIMEFRAMES_MS[tf]), start, end, limit, ascending, lambda c: c.start_ms)
        return json_response([[c.start_ms, float(c.open), float(c.close), float(c.high), float(c.low), float(c.volume)]
                              for c in rows])

    async def trades_hist(request: web.Request) -> web.Response:
        try:
            start, end, limit, ascending = _page(request, 125)
        except BadRequest as exc:
            return bad(exc)
        rows = _window(history.trades(request.match_info["symbol"]), start, end, limit, ascending, lambda t: t.ts_ms)
        return json_response([[int(t.trade_id), t.ts_ms, float(t.ts_text), float(t.price)] for t in rows])

    return [web.get("/v2/candles/{key}/hist", candles), web.get("/v2/trades/{symbol}/hist", trades_hist)]


def _unused_classify(_text: str) -> FrameTag:  # Bitfinex needs the stateful new_classifier
    return FrameTag(Kind.SKIP)


REPLAY = ExchangeReplay(
    exchange="BITFINEX", recording="BITFINEX.jsonl.zst", port=8773, classify=_unused_classify, client_frame=client_frame,
    trades=trades, rest_routes=rest_routes, error_body=error_body, malformed="[232949,[0.068965,60157.3",
    new_classifier=new_classifier, renumber=renumber, first_sequence=1,
)
