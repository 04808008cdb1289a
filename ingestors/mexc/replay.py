"""MEXC spot replay server: real recorded market activity (the Binance recordings) in MEXC's wire formats.

This is the Binance replay server (ingestors.binance.replay: the recordings in data/binance/, deterministic
and paced replay, the book position REST depth answers at, klines and aggregate trades from recorded minutes
and synthesis elsewhere, fault injection and the /_sim hooks) with MEXC's wire format plugged in: MEXC, a
WireFormat of the REST endpoints below and a websocket session per connection (MexcSession). Served by
ingestors.binance.replay.run_replay_server(..., wire=MEXC) (exchange-sim --exchange MEXC) or MexcReplayServer.

Websocket /ws (https://www.mexc.com/api-docs/spot-v3/websocket-market-streams): JSON requests
{"method":"SUBSCRIPTION"|"UNSUBSCRIPTION","params":[channels]} answered {"id":0,"code":0,"msg":"<params,>"}
(at most 30 subscriptions a connection; more, or an unknown channel, answers code 1 and subscribes nothing),
{"method":"PING"} (any case) answered {"id":0,"code":0,"msg":"PONG"}. Data frames are binary
PushDataV3ApiWrapper (codec.py), one per recorded Binance frame of a subscribed channel:
- <sym>@trade → spot@public.aggre.deals.v3.api.pb@<interval>@<SYM>: one deal (p, q, T; tradeType 2 when
  the buyer was the maker, i.e. the taker sold, else 1), sendTime E;
- <sym>@depth@100ms → ...aggre.depth...: fromVersion U, toVersion u, the same bids/asks, sendTime E;
- <sym>@bookTicker → ...aggre.bookTicker...: b, B, a, A; sendTime the recorded receive time.
100ms and 10ms channels both get every recorded frame (the recording is Binance's 100 ms depth).

REST (https://www.mexc.com/api-docs/spot-v3/market-data-endpoints): /api/v3/ping, /time, /exchangeInfo
(MEXC's symbol shape: status "1", baseAsset/quoteAsset, *Precision, isSpotTradingAllowed, ...), /depth
({lastUpdateId, bids, asks, timestamp}: the recorded book at the replay position, as the Binance server
answers), /klines (MEXC intervals, rows [openTime, o, h, l, c, v, closeTime, quoteVolume]) and /aggTrades
(MEXC's shape: "a", "f", "l" are null; startTime/endTime/limit, fromId is not a MEXC parameter).
GET /api/v1/contract/detail answers an empty futures list so that ccxt's mexc load_markets completes.
Errors: {"code", "msg"}; no request weight (no weight header, no weight 429s) and no 418 fault.
Test hooks as the Binance server's: /_sim/faults, /_sim/stats, /_sim/clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ingestors.binance import config as bcfg
from ingestors.binance.recording import Frame
from ingestors.binance.replay import (
    HISTORY,
    STATE,
    ApiError,
    FaultConfig,
    ReplayServer,
    WireFormat,
    json_response,
    ping,
    replay_book,
    server_time,
    symbol_history,
)
from ingestors.binance.replay_ws import WsFormat
from ingestors.binance.schemas import fmt_e8, to_e8
from ingestors.mexc import codec
from ingestors.mexc import config as cfg

__all__ = ["MEXC", "FaultConfig", "MexcReplayServer", "MexcSession", "binance_stream", "reencode"]

_STREAM_OF_KIND = {cfg.DEALS_KIND: "trade", cfg.DEPTH_KIND: "depth@100ms", cfg.BOOK_TICKER_KIND: "bookTicker"}


def binance_stream(channel: str) -> str | None:
    """The recorded Binance stream a MEXC channel is made from (None: not a channel we serve)."""
    try:
        kind, interval, symbol = cfg.channel_parts(channel)
    except ValueError:
        return None
    stream = _STREAM_OF_KIND.get(kind)
    if stream is None or interval not in cfg.PUSH_INTERVALS or symbol != symbol.upper():
        return None
    return f"{symbol.lower()}@{stream}"


def reencode(frame: Frame, channel: str) -> bytes:
    """One recorded Binance combined-stream frame as the MEXC push frame of `channel`."""
    d = orjson.loads(frame.data_text())
    symbol = channel.rpartition("@")[2]
    if frame.stream.endswith("@trade"):
        deal = codec.Deal(d["p"], d["q"], codec.TAKER_SELL if d["m"] else codec.TAKER_BUY, int(d["T"]))
        return codec.encode_deals(channel, symbol, [deal], int(d["E"]))
    if frame.stream.endswith("@depth@100ms"):
        return codec.encode_depth(channel, symbol, int(d["U"]), int(d["u"]), d["b"], d["a"], int(d["E"]))
    if frame.stream.endswith("@bookTicker"):
        return codec.encode_book_ticker(channel, symbol, d["b"], d["B"], d["a"], d["A"], frame.recv_ns // 1_000_000)
    raise ValueError(f"no MEXC channel for recorded stream {frame.stream}")


def _ack(msg: str, code: int = 0) -> str:
    return orjson.dumps({"id": 0, "code": code, "msg": msg}).decode()


def _answer(request: Any, subs: dict[str, set[str]]) -> str:
    """Reply to one client request, changing subs (Binance stream -> MEXC channels)."""
    if not isinstance(request, dict):
        return _ack("Invalid request", 1)
    method = str(request.get("method", "")).upper()
    params = request.get("params", [])
    if method == "PING":
        return _ack(cfg.PONG_MSG)
    if method not in (cfg.SUBSCRIBE_METHOD, cfg.UNSUBSCRIBE_METHOD) or not isinstance(params, list) or not params:
        return _ack(f"Invalid request: {request!r:.200}", 1)
    channels = [str(p) for p in params]
    if method == cfg.UNSUBSCRIBE_METHOD:
        for c in channels:
            for chans in subs.values():
                chans.discard(c)
        return _ack(",".join(channels))
    bad = [c for c in channels if binance_stream(c) is None]
    if bad:
        return _ack(f"Not Subscribed successfully! [{','.join(bad)}]. Reason: Blocked!", 1)
    count = sum(len(v) for v in subs.values()) + len({c for c in channels if not any(c in v for v in subs.values())})
    if count > cfg.WS_MAX_SUBSCRIPTIONS.value:
        return _ack(f"Not Subscribed successfully! more than {cfg.WS_MAX_SUBSCRIPTIONS.value} subscriptions", 1)
    for c in channels:
        subs.setdefault(binance_stream(c) or "", set()).add(c)
    return _ack(",".join(channels))


class MexcSession:
    """A MEXC websocket connection: SUBSCRIPTION / UNSUBSCRIPTION / PING requests answered in JSON; each recorded
    frame of a subscribed Binance stream pushed as one protobuf frame per MEXC channel made from it."""

    malformed = b"\x0a\xff\xffbroken"

    def __init__(self, _request: web.Request) -> None:
        self.subs: dict[str, set[str]] = {}  # Binance stream -> the MEXC channels subscribed to it

    def wants(self, stream: str) -> bool:
        return bool(self.subs.get(stream))

    def encode(self, frame: Frame) -> list[bytes]:
        return [reencode(frame, channel) for channel in sorted(self.subs.get(frame.stream, ()))]

    def answer(self, message: str) -> str:
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            return _ack("Invalid JSON", 1)
        return _answer(req, self.subs)


def _int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name, "")
    if value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, cfg.ERR_BAD_PARAM) from None


def _limit(request: web.Request, default: int | float, maximum: int | float) -> int:
    limit = _int(request, "limit")
    if limit is not None and limit <= 0:
        raise ApiError(400, cfg.ERR_BAD_PARAM)
    return int(min(limit or default, maximum))


def _decimals(step: str) -> int:
    """"0.00001" -> 5, "1" -> 0."""
    text = fmt_e8(to_e8(step)).rstrip("0")
    return len(text.partition(".")[2])


def symbol_info(spec: bcfg.SymbolSpec) -> dict[str, Any]:
    """One exchangeInfo "symbols" element in MEXC's shape (what ccxt's mexc fetch_markets reads, and more)."""
    return {
        "symbol": spec.symbol, "status": "1", "baseAsset": spec.base, "baseAssetPrecision": _decimals(spec.step_size),
        "quoteAsset": spec.quote, "quotePrecision": _decimals(spec.tick_size),
        "quoteAssetPrecision": _decimals(spec.tick_size), "baseCommissionPrecision": _decimals(spec.step_size),
        "quoteCommissionPrecision": _decimals(spec.tick_size), "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"],
        "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "quoteAmountPrecision": spec.min_notional,
        "baseSizePrecision": "0", "permissions": ["SPOT"], "filters": [], "maxQuoteAmount": "2000000",
        "makerCommission": "0", "takerCommission": "0.0005", "quoteAmountPrecisionMarket": spec.min_notional,
        "maxQuoteAmountMarket": "100000", "fullName": spec.base, "tradeSideType": 1,
    }


async def exchange_info(request: web.Request) -> web.Response:
    hist = request.app[HISTORY]
    names = [request.query["symbol"]] if "symbol" in request.query else list(hist.symbols)
    if any(n not in hist.symbols for n in names):
        raise ApiError(400, cfg.ERR_INVALID_SYMBOL)
    return json_response({"timezone": "CST", "serverTime": request.app[STATE].now(), "rateLimits": [],
                          "exchangeFilters": [], "symbols": [symbol_info(hist.symbols[n].spec) for n in names]})


async def depth(request: web.Request) -> web.Response:
    hist = symbol_history(request)
    limit = _limit(request, cfg.DEPTH_DEFAULT_LIMIT.value, cfg.DEPTH_MAX_LIMIT.value)
    now = request.app[STATE].now()
    return json_response({**replay_book(request, hist, limit, now), "timestamp": now})


async def klines(request: web.Request) -> web.Response:
    hist = symbol_history(request)
    interval = request.query.get("interval")
    if not interval:
        raise ApiError(400, cfg.ERR_MANDATORY, name="interval")
    if interval not in cfg.INTERVALS:
        raise ApiError(400, cfg.ERR_INVALID_INTERVAL)
    limit = _limit(request, cfg.KLINES_DEFAULT_LIMIT.value, cfg.KLINES_MAX_LIMIT.value)
    rows = hist.klines(cfg.INTERVALS[interval], _int(request, "startTime"), _int(request, "endTime"), limit,
                       request.app[STATE].now())
    return json_response([r[:8] for r in rows])


async def agg_trades(request: web.Request) -> web.Response:
    hist = symbol_history(request)
    start, end = _int(request, "startTime"), _int(request, "endTime")
    if start is not None and end is not None and end - start > cfg.AGG_TRADES_MAX_WINDOW_MS.value:
        raise ApiError(400, cfg.ERR_BAD_PARAM)
    limit = _limit(request, cfg.AGG_TRADES_DEFAULT_LIMIT.value, cfg.AGG_TRADES_MAX_LIMIT.value)
    rows = hist.agg_trades(None, start, end, limit, request.app[STATE].now())
    return json_response([{"a": None, "f": None, "l": None, "p": fmt_e8(a.price_e8), "q": fmt_e8(a.qty_e8),
                           "T": a.time_ms, "m": a.buyer_maker, "M": True} for a in rows])


async def contract_detail(_request: web.Request) -> web.Response:
    return json_response({"success": True, "code": 0, "data": []})  # no futures here (ccxt's load_markets asks)


MEXC = WireFormat(
    name="MEXC",
    rest=(web.get("/api/v3/ping", ping), web.get("/api/v3/time", server_time),
          web.get("/api/v3/exchangeInfo", exchange_info), web.get("/api/v3/depth", depth),
          web.get("/api/v3/klines", klines), web.get("/api/v3/aggTrades", agg_trades),
          web.get("/api/v1/contract/detail", contract_detail)),
    ws=WsFormat(paths=("/ws",), session=MexcSession),
    internal_error=cfg.ERR_INTERNAL,
    too_many=lambda _limit: cfg.ERR_TOO_MANY,
)


class MexcReplayServer(ReplayServer):
    """The replay server in a background thread, for tests: `with MexcReplayServer(d).running() as base_url:`."""

    def __init__(self, data_dir: Path, faults: FaultConfig | None = None, *, deterministic: bool = True,
                 now_ms: int | None = None, speed: float = 1.0) -> None:
        super().__init__(data_dir, faults, deterministic=deterministic, now_ms=now_ms, speed=speed, wire=MEXC)
