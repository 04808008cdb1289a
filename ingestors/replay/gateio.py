"""Gate.io spot websocket v4 and REST v4, replayed from data/cryptofeed/GATEIO.jsonl.zst.

Lives here, not in ingestors/gateio/ (another helper owns that package); it can move.

Websocket (https://www.gate.io/docs/developers/apiv4/ws/en/): path /ws/v4/;
{"time":..,"channel":"spot.order_book_update","event":"subscribe","payload":["BTC_USDT","100ms"]}
(spot.trades / spot.tickers: payload = pairs; spot.candlesticks: ["1m", pair]). Gate's
ack names the channel only: the n-th recorded ack answers the n-th recorded subscribe.
{"channel":"spot.ping"} -> {"time":..,"channel":"spot.pong","event":"","error":null,"result":null}.
A spot.order_book_update "update" frame is a book diff (faults act on those).

REST: the recorded /api/v4/spot/currency_pairs and /api/v4/spot/order_book snapshots
(by currency_pair), and derived from the recorded spot.trades frames
(ingestors.replay.history): /api/v4/spot/candlesticks (rows [t, quote volume, close,
high, low, open, base volume, "true"] oldest first; from/to in seconds, inclusive;
limit default 100, max 1000) and /api/v4/spot/trades (newest first, `last_id` pages to
older trades, limit default 100, max 1000).
"""

from __future__ import annotations

import time
from decimal import Decimal

import orjson
from aiohttp import web

from ingestors.replay.history import TradeHistory, dec_str
from ingestors.replay.rest import BadRequest, int_param, json_response, limit_param
from ingestors.replay.session import HttpAnswer
from ingestors.replay.spec import ClientFrame, ExchangeReplay, FrameTag, Key, Kind, Trade

INTERVALS_S = {"10s": 10, "1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "8h": 28800, "1d": 86400}
BOOK = "spot.order_book_update"


def classify(text: str) -> FrameTag:
    try:
        msg = orjson.loads(text)
        channel, event, result = msg["channel"], msg.get("event"), msg.get("result") or {}
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return FrameTag(Kind.SKIP)
    if event == "subscribe":
        return FrameTag(Kind.ACK)  # names no pair: matched to the recorded subscribes in order
    if event != "update" or not isinstance(result, dict):
        return FrameTag(Kind.SKIP)  # pongs, unsubscribe answers
    pair = result.get("s") or result.get("currency_pair") or str(result.get("n", "")).partition("_")[2]
    return FrameTag(Kind.DATA, frozenset({(channel, pair)}), pair if channel == BOOK else "")


def client_frame(text: str) -> ClientFrame:
    try:
        msg = orjson.loads(text)
        channel, event, payload = msg["channel"], msg.get("event", ""), [str(p) for p in msg.get("payload") or []]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        err = {"time": int(time.time()), "channel": "", "event": "", "error": {"code": 1, "message": "invalid argument"}}
        return ClientFrame(replies=(orjson.dumps(err).decode(),))
    now = int(time.time())
    if channel == "spot.ping":
        return ClientFrame(replies=(orjson.dumps({"time": now, "channel": "spot.pong", "event": "", "error": None,
                                                  "result": None}).decode(),))
    if channel == BOOK:
        pairs = payload[:1]
    elif channel == "spot.candlesticks":
        pairs = payload[1:2]
    else:
        pairs = payload
    keys = tuple((channel, p) for p in pairs)
    if event == "subscribe":
        return ClientFrame(subscribe=keys)
    if event == "unsubscribe":
        ack = {"time": now, "channel": channel, "event": "unsubscribe", "result": {"status": "success"}}
        return ClientFrame(unsubscribe=keys, replies=(orjson.dumps(ack).decode(),))
    return ClientFrame()


def trades(_path: str, text: str, _keys: frozenset[Key] = frozenset()) -> list[Trade]:
    if '"channel":"spot.trades","event":"update"' not in text:
        return []
    r = orjson.loads(text)["result"]
    ms = r["create_time_ms"]
    return [Trade(r["currency_pair"], int(Decimal(ms)), r["price"], r["amount"], r["side"], str(r["id"]), ms)]


def error_body(status: int, msg: str) -> str:
    label = "TOO_MANY_REQUESTS" if status == 429 else "SERVER_ERROR" if status >= 500 else "INVALID_PARAM_VALUE"
    return orjson.dumps({"label": label, "message": msg}).decode()


def rest_routes(history: TradeHistory, _recorded: list[HttpAnswer]) -> list[web.RouteDef]:
    def bad(exc: BadRequest) -> web.Response:
        return web.Response(text=error_body(400, str(exc)), status=400, content_type="application/json")

    async def candlesticks(request: web.Request) -> web.Response:
        pair = request.query.get("currency_pair", "")
        try:
            step = INTERVALS_S.get(request.query.get("interval", "30m"))
            if step is None:
                raise BadRequest(f"invalid interval {request.query.get('interval')!r}")
            start, end = int_param(request, "from"), int_param(request, "to")
            limit = limit_param(request, 100, 1000)
        except BadRequest as exc:
            return bad(exc)
        rows = [c for c in history.candles(pair, step * 1000)
                if (start is None or c.start_ms // 1000 >= start) and (end is None or c.start_ms // 1000 <= end)]
        rows = rows[:limit] if start is not None else rows[-limit:]
        return json_response([[str(c.start_ms // 1000), dec_str(c.quote_volume), c.close, c.high, c.low, c.open,
                               dec_str(c.volume), "true"] for c in rows])

    async def trades_handler(request: web.Request) -> web.Response:
        pair = request.query.get("currency_pair", "")
        try:
            limit = limit_param(request, 100, 1000)
            last_id = int_param(request, "last_id")
        except BadRequest as exc:
            return bad(exc)
        rows = [t for t in reversed(history.trades(pair)) if last_id is None or int(t.trade_id) < last_id][:limit]
        return json_response([{"id": t.trade_id, "create_time": str(t.ts_ms // 1000), "create_time_ms": t.ts_text,
                               "currency_pair": pair, "side": t.side, "amount": t.size, "price": t.price} for t in rows])

    return [web.get("/api/v4/spot/candlesticks", candlesticks), web.get("/api/v4/spot/trades", trades_handler)]


REPLAY = ExchangeReplay(
    exchange="GATEIO", recording="GATEIO.jsonl.zst", port=8772, classify=classify, client_frame=client_frame,
    trades=trades, rest_routes=rest_routes, error_body=error_body, malformed='{"time":1619093532,"channel":"spot.order_',
    ws_paths={"/ws/v4": "/ws/v4/"},  # clients write the path with or without the slash
)
