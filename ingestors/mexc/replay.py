"""MEXC spot replay server: real recorded market activity (the Binance recordings) in MEXC's wire formats.

Built on the Binance replay server's parts: recording.load_recordings (hftbacktest Binance spot
recordings in data/binance/), replay_ws.StreamReplay (every frame in receive order, deterministic
and paced clocks, the book position REST depth answers at), history.MarketHistory (klines and aggregate
trades: recorded minutes, synthesis elsewhere) and sim_faults (FaultConfig, SimState).

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
Errors: {"code", "msg"}. Test hooks as the Binance server's: /_sim/faults, /_sim/stats.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from ingestors.binance import config as bcfg
from ingestors.binance.history import MarketHistory, SymbolHistory
from ingestors.binance.recording import Frame, load_recordings
from ingestors.binance.replay_ws import StreamReplay
from ingestors.binance.schemas import fmt_e8, to_e8
from ingestors.binance.sim_faults import FaultConfig, SimState
from ingestors.mexc import codec
from ingestors.mexc import config as cfg
from ingestors.replay.threaded import serve_in_thread

__all__ = ["FaultConfig", "MexcReplayServer", "binance_stream", "build_app", "reencode", "run_replay_server"]

log = logging.getLogger(__name__)
STATE = web.AppKey("state", SimState)
HISTORY = web.AppKey("history", MarketHistory)
REPLAY = web.AppKey("replay", StreamReplay)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_STREAM_OF_KIND = {cfg.DEALS_KIND: "trade", cfg.DEPTH_KIND: "depth@100ms", cfg.BOOK_TICKER_KIND: "bookTicker"}


class ApiError(Exception):
    def __init__(self, status: int, err: tuple[int, str], **fmt: object) -> None:
        super().__init__(err[1].format(**fmt))
        self.status, self.code, self.msg = status, err[0], err[1].format(**fmt)


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


def _drop_depth(stream: str, seen: dict[str, int], state: SimState) -> bool:
    """The Binance server's depth-drop fault, on the MEXC stream: skip pushes [after, after + count) of fault_symbol."""
    faults = state.faults
    if not faults.drop_depth_count or (faults.fault_symbol and not stream.startswith(faults.fault_symbol.lower() + "@")):
        return False
    n = seen[stream] = seen.get(stream, 0) + 1
    if faults.drop_depth_after <= n < faults.drop_depth_after + faults.drop_depth_count:
        with state.lock:
            state.ws_dropped += 1
        return True
    return False


async def _send_frames(ws: web.WebSocketResponse, subs: dict[str, set[str]], subscribed: asyncio.Event,
                       replay: StreamReplay, state: SimState, transport: Any) -> None:
    await subscribed.wait()
    loop = asyncio.get_running_loop()
    start = 0
    if not replay.deterministic:
        start = bisect.bisect_left(replay.frames, replay.clock_ns(), key=lambda f: f.recv_ns)
    replay.sent_ns = 0  # a new connection starts the recording again: the recorded snapshot fits it
    sent = 0
    depth_seen: dict[str, int] = {}
    for frame in replay.frames[start:]:
        channels = subs.get(frame.stream)
        if not channels:
            continue
        if "@depth" in frame.stream and _drop_depth(frame.stream, depth_seen, state):
            continue
        if state.take("malformed_frames"):
            await ws.send_bytes(b"\x0a\xff\xffbroken")
        if not replay.deterministic:
            due = (replay.started or 0.0) + (frame.recv_ns - replay.t0_ns) / 1e9 / replay.speed
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
        for channel in sorted(channels):
            await ws.send_bytes(reencode(frame, channel))
        replay.sent_ns = frame.recv_ns
        sent += 1
        with state.lock:
            state.ws_frames += 1
            close_after, abort = state.faults.ws_close_after_frames, state.faults.ws_abort
        if close_after and sent >= close_after:
            if state.faults.ws_close_once:
                state.set_faults(ws_close_after_frames=0, ws_close_once=False)
            if abort:
                transport.abort()
            else:
                await ws.close(code=1000, message=f"replay fault: closed after {sent} frames".encode())
            return


def make_ws_handler(replay: StreamReplay, state: SimState) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if state.take("drop_next"):
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=499)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        replay.sockets.add(ws)
        with state.lock:
            state.ws_connections += 1
        subs: dict[str, set[str]] = {}
        subscribed = asyncio.Event()
        sender = asyncio.create_task(_send_frames(ws, subs, subscribed, replay, state, request.transport))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = orjson.loads(msg.data)
                except orjson.JSONDecodeError:
                    await ws.send_str(_ack("Invalid JSON", 1))
                    continue
                await ws.send_str(_answer(req, subs))
                if any(subs.get(s) for s in replay.streams):
                    subscribed.set()
        finally:
            sender.cancel()
            for result in await asyncio.gather(sender, return_exceptions=True):
                if isinstance(result, Exception) and not isinstance(result, ConnectionError):
                    log.warning("MEXC websocket replay to %s failed: %r", request.remote, result)
        return ws

    return handle


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", charset="UTF-8")


@web.middleware
async def _rest_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The Binance server's REST faults (drop, 429, 500, latency, fail_always) and accounting, MEXC error bodies."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    state, arrived = request.app[STATE], time.monotonic()
    faults = state.faults
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if state.take("drop_next"):
        state.record(request.path, 0, arrived)
        assert request.transport is not None
        request.transport.abort()
        return web.Response(status=499)
    resp: web.StreamResponse
    if faults.fail_always_status:
        resp = _json({"code": faults.fail_always_code, "msg": faults.fail_always_msg}, faults.fail_always_status)
    elif state.take("fail_429"):
        resp = _json({"code": cfg.ERR_TOO_MANY[0], "msg": cfg.ERR_TOO_MANY[1]}, 429)
        resp.headers["Retry-After"] = str(faults.retry_after_seconds)
    elif state.take("fail_500"):
        resp = _json({"code": cfg.ERR_INTERNAL[0], "msg": cfg.ERR_INTERNAL[1]}, 500)
    else:
        try:
            resp = await handler(request)
        except ApiError as exc:
            resp = _json({"code": exc.code, "msg": exc.msg}, exc.status)
    state.record(request.path, resp.status, arrived)
    return resp


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


def _symbol(request: web.Request) -> SymbolHistory:
    name = request.query.get("symbol")
    if not name:
        raise ApiError(400, cfg.ERR_MANDATORY, name="symbol")
    hist = request.app[HISTORY].get(name)
    if hist is None:
        raise ApiError(400, cfg.ERR_INVALID_SYMBOL)
    return hist


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


async def ping(_request: web.Request) -> web.Response:
    return _json({})


async def server_time(request: web.Request) -> web.Response:
    return _json({"serverTime": request.app[STATE].now()})


async def exchange_info(request: web.Request) -> web.Response:
    hist = request.app[HISTORY]
    names = [request.query["symbol"]] if "symbol" in request.query else list(hist.symbols)
    if any(n not in hist.symbols for n in names):
        raise ApiError(400, cfg.ERR_INVALID_SYMBOL)
    return _json({"timezone": "CST", "serverTime": request.app[STATE].now(), "rateLimits": [], "exchangeFilters": [],
                  "symbols": [symbol_info(hist.symbols[n].spec) for n in names]})


async def depth(request: web.Request) -> web.Response:
    hist = _symbol(request)
    limit = _limit(request, cfg.DEPTH_DEFAULT_LIMIT.value, cfg.DEPTH_MAX_LIMIT.value)
    now = request.app[STATE].now()
    if hist.rec is not None:
        book = hist.rec.depth_at(request.app[REPLAY].depth_position(hist.spec.symbol), limit)
    else:
        book = hist.synthetic_depth(now, limit)
    return _json({**book, "timestamp": now})


async def klines(request: web.Request) -> web.Response:
    hist = _symbol(request)
    interval = request.query.get("interval")
    if not interval:
        raise ApiError(400, cfg.ERR_MANDATORY, name="interval")
    if interval not in cfg.INTERVALS:
        raise ApiError(400, cfg.ERR_INVALID_INTERVAL)
    limit = _limit(request, cfg.KLINES_DEFAULT_LIMIT.value, cfg.KLINES_MAX_LIMIT.value)
    rows = hist.klines(cfg.INTERVALS[interval], _int(request, "startTime"), _int(request, "endTime"), limit,
                       request.app[STATE].now())
    return _json([r[:8] for r in rows])


async def agg_trades(request: web.Request) -> web.Response:
    hist = _symbol(request)
    start, end = _int(request, "startTime"), _int(request, "endTime")
    if start is not None and end is not None and end - start > cfg.AGG_TRADES_MAX_WINDOW_MS.value:
        raise ApiError(400, cfg.ERR_BAD_PARAM)
    limit = _limit(request, cfg.AGG_TRADES_DEFAULT_LIMIT.value, cfg.AGG_TRADES_MAX_LIMIT.value)
    rows = hist.agg_trades(None, start, end, limit, request.app[STATE].now())
    return _json([{"a": None, "f": None, "l": None, "p": fmt_e8(a.price_e8), "q": fmt_e8(a.qty_e8), "T": a.time_ms,
                   "m": a.buyer_maker, "M": True} for a in rows])


async def contract_detail(_request: web.Request) -> web.Response:
    return _json({"success": True, "code": 0, "data": []})  # no futures here (ccxt's load_markets asks)


async def sim_stats(request: web.Request) -> web.Response:
    if request.method == "POST":
        request.app[STATE].reset_stats()
    return _json(request.app[STATE].stats())


async def sim_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method == "POST":
        try:
            body = await request.json(loads=orjson.loads)
            if not isinstance(body, dict):
                raise ValueError(f"expected a JSON object of FaultConfig fields, got {body!r}")
            state.set_faults(**body)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
    return _json(dataclasses.asdict(state.faults))


def build_app(data_dir: Path, faults: FaultConfig | None = None, deterministic: bool = True, *,
              now_ms: int | None = None, speed: float = 1.0) -> web.Application:
    """The MEXC replay application. data_dir: the shared data root (with binance/) or binance/ itself."""
    recordings = load_recordings(Path(data_dir))
    app = web.Application(middlewares=[_rest_middleware])
    state = SimState(faults=dataclasses.replace(faults) if faults else FaultConfig(), now_ms=now_ms)
    replay = StreamReplay(recordings, deterministic, speed)
    app[STATE], app[HISTORY], app[REPLAY] = state, MarketHistory(bcfg.SYMBOLS, recordings), replay
    app.on_startup.append(replay.on_startup)
    app.on_shutdown.append(replay.on_shutdown)
    app.add_routes([
        web.get("/api/v3/ping", ping), web.get("/api/v3/time", server_time),
        web.get("/api/v3/exchangeInfo", exchange_info), web.get("/api/v3/depth", depth),
        web.get("/api/v3/klines", klines), web.get("/api/v3/aggTrades", agg_trades),
        web.get("/api/v1/contract/detail", contract_detail), web.get("/ws", make_ws_handler(replay, state)),
        web.get("/_sim/stats", sim_stats), web.post("/_sim/stats/reset", sim_stats),
        web.get("/_sim/faults", sim_faults), web.post("/_sim/faults", sim_faults),
    ])
    return app


def run_replay_server(host: str, port: int, data_dir: Path, faults: FaultConfig | None = None,
                      deterministic: bool = True, speed: float = 1.0) -> None:
    """Serve until SIGINT/SIGTERM (aiohttp.run_app)."""
    app = build_app(data_dir, faults, deterministic, speed=speed)
    log.info("MEXC replay server on http://%s:%d (data %s, deterministic=%s)", host, port, data_dir, deterministic)
    web.run_app(app, host=host, port=port, print=None, shutdown_timeout=5.0, handle_signals=True)


class MexcReplayServer:
    """The replay server in a background thread, for tests: `with MexcReplayServer(d).running() as base_url:`."""

    def __init__(self, data_dir: Path, faults: FaultConfig | None = None, *, deterministic: bool = True,
                 now_ms: int | None = None, speed: float = 1.0) -> None:
        self.app = build_app(data_dir, faults, deterministic, now_ms=now_ms, speed=speed)
        self.state = self.app[STATE]

    @contextmanager
    def running(self, port: int = 0, timeout: float = 30.0) -> Iterator[str]:
        """Serve on 127.0.0.1:port (0: a free port); yields "http://127.0.0.1:<port>" once it accepts."""
        with serve_in_thread(self.app, "mexc-replay", port, timeout) as url:
            yield url
