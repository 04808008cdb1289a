"""Kraken websocket v1 and public REST, replayed from data/cryptofeed/KRAKEN.jsonl.zst.

Websocket (https://docs.kraken.com/api/docs/websocket-v1/): path / (wss://ws.kraken.com).
On connect the recorded {"event":"systemStatus",...}; {"event":"subscribe","pair":[...],
"subscription":{"name":"book","depth":1000}} is answered by the recorded
subscriptionStatus of each pair; {"event":"ping","reqid":N} -> {"event":"pong","reqid":N}.
The recording used one connection per channel: they are all served here, and a client
gets the recorded {"event":"heartbeat"} frames of the connection its first subscription
came from. Data frames [channelID, payload..., channelName, pair] belong to (name, pair)
with name "book" for "book-1000"; a book frame with "a"/"b" (not "as"/"bs") is a diff.
The recorded book depth is served whatever depth a client asks for.

REST: the recorded /0/public/AssetPairs, and derived from the recorded trades
(ingestors.replay.history): /0/public/OHLC (rows [time, open, high, low, close, vwap,
volume, count], prices at the pair's pair_decimals, committed candles after `since`, at most
720, `last` = the newest row's time) and /0/public/Trades (rows [price, volume, time,
side, ordertype, misc, trade_id] with the websocket's price/volume text; trades after
`since` (ns; a value below 1e12 is seconds), `count` default/max 1000, `last` = the
last row's time in ns). Websocket v1 trades carry no id: trade_id is the trade's
1-based position among the pair's recorded trades.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from ingestors.replay.history import TradeHistory
from ingestors.replay.rest import BadRequest, int_param, json_response, limit_param
from ingestors.replay.session import HttpAnswer
from ingestors.replay.spec import ClientFrame, ExchangeReplay, FrameTag, Key, Kind, Trade

INTERVALS_MIN = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
OHLC_MAX_ROWS = 720


def classify(text: str) -> FrameTag:
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return FrameTag(Kind.SKIP)
    if isinstance(msg, dict):
        event = msg.get("event")
        if event == "systemStatus":
            return FrameTag(Kind.GREETING)
        if event == "heartbeat":
            return FrameTag(Kind.CONN)
        if event == "subscriptionStatus" and msg.get("status") == "subscribed":
            name = str((msg.get("subscription") or {}).get("name", ""))
            return FrameTag(Kind.ACK, frozenset({(name, str(msg.get("pair", "")))}))
        return FrameTag(Kind.SKIP)  # pongs, unsubscribe and error statuses
    if not isinstance(msg, list) or len(msg) < 4:
        return FrameTag(Kind.SKIP)
    name, pair = str(msg[-2]).split("-", 1)[0], str(msg[-1])
    payloads = [p for p in msg[1:-2] if isinstance(p, dict)]
    diff = pair if name == "book" and payloads and not any("as" in p or "bs" in p for p in payloads) else ""
    return FrameTag(Kind.DATA, frozenset({(name, pair)}), diff)


def _dump(obj: object) -> str:
    return orjson.dumps(obj).decode()


def client_frame(text: str) -> ClientFrame:
    try:
        msg = orjson.loads(text)
        event = msg["event"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return ClientFrame(replies=(_dump({"errorMessage": "Malformed request", "event": "error", "status": "error"}),))
    reqid = {"reqid": msg["reqid"]} if "reqid" in msg else {}
    if event == "ping":
        return ClientFrame(replies=(_dump({"event": "pong", **reqid}),))
    if event in ("subscribe", "unsubscribe"):
        sub = msg.get("subscription") or {}
        keys = tuple((str(sub.get("name", "")), str(p)) for p in msg.get("pair", []))
        if event == "subscribe":
            return ClientFrame(subscribe=keys)
        replies = tuple(_dump({"event": "subscriptionStatus", "pair": p, **reqid, "status": "unsubscribed",
                               "subscription": sub}) for _, p in keys)
        return ClientFrame(unsubscribe=keys, replies=replies)
    return ClientFrame(replies=(_dump({"errorMessage": f"Unsupported event {event}", "event": "error", **reqid,
                                       "status": "error"}),))


def trades(_path: str, text: str, _keys: frozenset[Key] = frozenset()) -> list[Trade]:
    if not text.endswith('"]') or ',"trade",' not in text:
        return []
    msg = orjson.loads(text)
    # v1 trade rows: [price, volume, time, side "b"/"s", orderType "m"/"l", misc]; no trade id
    return [Trade(msg[-1], int(Decimal(r[2]) * 1000), r[0], r[1], "buy" if r[3] == "b" else "sell",
                  f"{r[2]}|{r[0]}|{r[1]}|{i}", r[2] + "|" + r[4] + "|" + r[5]) for i, r in enumerate(msg[1])]


def error_body(status: int, msg: str) -> str:
    return _dump({"error": ["EAPI:Rate limit exceeded" if status == 429 else f"EGeneral:{msg}"]})


def _pairs(recorded: list[HttpAnswer]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every name a client may use for a pair (key, altname, wsname) -> (key, AssetPairs entry)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for ans in recorded:
        if ans.path == "/0/public/AssetPairs":
            for key, info in (orjson.loads(ans.body).get("result") or {}).items():
                for name in (key, info.get("altname"), info.get("wsname")):
                    if name:
                        out[name] = (key, info)
    return out


def rest_routes(history: TradeHistory, recorded: list[HttpAnswer]) -> list[web.RouteDef]:
    pairs = _pairs(recorded)

    def pair_of(request: web.Request) -> tuple[str, str, dict[str, Any]]:
        """(result key, wsname the trades are filed under, AssetPairs entry)."""
        name = request.query.get("pair", "")
        if name not in pairs:
            raise BadRequest("EQuery:Unknown asset pair")
        key, info = pairs[name]
        return key, str(info.get("wsname", "")), info

    def bad(exc: BadRequest) -> web.Response:
        return json_response({"error": [str(exc)]})  # Kraken answers errors with HTTP 200

    async def ohlc(request: web.Request) -> web.Response:
        try:
            key, wsname, info = pair_of(request)
            interval = int_param(request, "interval", 1)
            if interval not in INTERVALS_MIN:
                raise BadRequest("EGeneral:Invalid arguments")
            since = int_param(request, "since")
        except BadRequest as exc:
            return bad(exc)
        assert interval is not None
        px = Decimal(1).scaleb(-int(info.get("pair_decimals", 8)))
        lot = Decimal(1).scaleb(-int(info.get("lot_decimals", 8)))
        rows = [c for c in history.candles(wsname, interval * 60_000)
                if since is None or c.start_ms // 1000 > since][-OHLC_MAX_ROWS:]
        out: list[list[Any]] = [[c.start_ms // 1000, *(str(Decimal(p).quantize(px)) for p in (c.open, c.high, c.low, c.close)),
                                 str(c.vwap.quantize(px)), str(c.volume.quantize(lot)), c.count] for c in rows]
        last = out[-1][0] if out else (since or 0)
        return json_response({"error": [], "result": {key: out, "last": last}})

    async def trades_handler(request: web.Request) -> web.Response:
        try:
            key, wsname, _info = pair_of(request)
            since = int_param(request, "since", 0)
            count = limit_param(request, 1000, 1000, "count")
        except BadRequest as exc:
            return bad(exc)
        assert since is not None
        since_ns = since * 1_000_000_000 if since < 10**12 else since
        out: list[list[Any]] = []
        last_ns = since_ns
        for n, t in enumerate(history.trades(wsname), 1):
            time_text, order_type, misc = t.ts_text.split("|")
            ns = int(Decimal(time_text) * 10**9)
            if ns <= since_ns:
                continue
            out.append([t.price, t.size, float(time_text), t.side[0], order_type, misc, n])
            last_ns = ns
            if len(out) >= count:
                break
        return json_response({"error": [], "result": {key: out, "last": str(last_ns)}})

    return [web.get("/0/public/OHLC", ohlc), web.get("/0/public/Trades", trades_handler)]


def _serve_v2(app: web.Application) -> None:
    """Websocket v2 (Kraken's current API, what ccxt speaks) at /v2: the v1 recording re-encoded (replay_v2.py)."""
    from ingestors.kraken.replay_v2 import add_v2  # it builds on this module

    add_v2(app)


REPLAY = ExchangeReplay(
    exchange="KRAKEN", recording="KRAKEN.jsonl.zst", port=8767, classify=classify, client_frame=client_frame,
    trades=trades, rest_routes=rest_routes, error_body=error_body, malformed='[1920,{"a":[["0.042990","36463',
    extend_app=_serve_v2,
)
