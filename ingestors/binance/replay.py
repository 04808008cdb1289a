"""Binance spot replay server: the real REST and websocket wire format, from recordings and synthesis.

REST (https://developers.binance.com/docs/binance-spot-api-docs/rest-api): /api/v3/ping,
time, exchangeInfo, klines, aggTrades, depth, ticker/bookTicker, with Binance's
status codes, {"code", "msg"} errors, X-MBX-USED-WEIGHT-1M and Retry-After. Klines
and aggTrades come from history.SymbolHistory (recorded where the recording covers
the time, deterministic synthesis elsewhere); only closed candles and trades up to
the server's "now" are served. Websockets: see replay_ws.

Test hooks (not Binance): POST /_sim/faults (JSON fields of FaultConfig), GET /_sim/faults,
GET /_sim/stats, POST /_sim/stats/reset, POST /_sim/clock {"now_ms": int | null}.

The wire format is a WireFormat: REST routes and error bodies, request weight, the websocket side
(replay_ws.WsFormat). BINANCE is the default. A venue without recordings of its own serves the Binance
recordings in its format by passing its WireFormat (ingestors.mexc.replay.MEXC); the recordings, the
deterministic and paced replay, fault injection and the /_sim hooks are this server's, for every format.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ingestors.binance import config as cfg
from ingestors.binance.history import MarketHistory, SymbolHistory
from ingestors.binance.recording import load_recordings
from ingestors.binance.replay_ws import BINANCE_WS, StreamReplay, WsFormat, make_ws_handler
from ingestors.binance.schemas import agg_trade_wire, error_body, exchange_info
from ingestors.binance.sim_faults import FaultConfig, SimState
from ingestors.replay.threaded import serve_in_thread

__all__ = ["BINANCE", "ApiError", "FaultConfig", "ReplayServer", "WireFormat", "build_app", "json_response",
           "ping", "replay_book", "run_replay_server", "server_time", "symbol_history"]

log = logging.getLogger(__name__)
STATE = web.AppKey("state", SimState)
HISTORY = web.AppKey("history", MarketHistory)
REPLAY = web.AppKey("replay", StreamReplay)
_INT = re.compile(r"^-?[0-9]{1,20}$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class WireFormat:
    """What the replay server speaks. REST handlers read the app's STATE, HISTORY and REPLAY and raise ApiError
    for an error answer; the fault middleware answers in the format's error bodies {"code", "msg"}."""

    name: str  # "Binance": logs, the test server's thread
    rest: Sequence[web.RouteDef]  # the /api/ endpoints
    ws: WsFormat  # websocket paths, sessions (subscriptions, answers) and frame encoding
    internal_error: tuple[int, str]  # the fail_500 body's code and msg
    too_many: Callable[[int], tuple[int, str]]  # a 429 body's code and msg, given the weight limit
    banned: Callable[[int], tuple[int, str]] | None = None  # fail_418's body, given the ban's end (ms); None: no 418s
    # Request weight: counted per window, answered in X-MBX-USED-WEIGHT-1M, over weight_limit a 429.
    # None: no weight accounting (no header, no weight 429s).
    weight: Callable[[web.Request], int] | None = None


WIRE = web.AppKey("wire", WireFormat)


class ApiError(Exception):
    """An error answer {"code", "msg"}: ApiError(400, cfg.ERR_MANDATORY, name="symbol")."""

    def __init__(self, status: int, err: tuple[int, str], **fmt: object) -> None:
        super().__init__(err[1].format(**fmt))
        self.status, self.code, self.msg = status, err[0], err[1].format(**fmt)


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json", charset="UTF-8")


def _weight(request: web.Request) -> int:
    if request.path == "/api/v3/depth":
        limit = request.query.get("limit", "")
        return cfg.depth_weight(int(limit) if limit.isdigit() else cfg.DEPTH_DEFAULT_LIMIT)
    if request.path == "/api/v3/ticker/bookTicker" and "symbol" not in request.query:
        return 4
    return cfg.WEIGHTS.get(request.path, 1)


@web.middleware
async def _rest_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Faults, request weight and accounting for /api/ requests; the format's error bodies, also for ApiError."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    state, wire, arrived = request.app[STATE], request.app[WIRE], time.monotonic()
    faults = state.faults
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if state.take("drop_next"):
        state.record(request.path, 0, arrived)
        assert request.transport is not None
        request.transport.abort()
        return web.Response(status=499)  # never written: the connection is gone
    used, window_left = state.add_weight(wire.weight(request)) if wire.weight else (0, 0.0)
    retry_after = str(faults.retry_after_seconds)
    resp: web.StreamResponse
    if faults.fail_always_status:
        resp = json_response(error_body(faults.fail_always_code, faults.fail_always_msg), faults.fail_always_status)
    elif wire.banned and state.take("fail_418"):
        until = state.now() + faults.retry_after_seconds * 1000
        resp = json_response(error_body(*wire.banned(until)), 418, {"Retry-After": retry_after})
    elif state.take("fail_429"):
        resp = json_response(error_body(*wire.too_many(faults.weight_limit)), 429, {"Retry-After": retry_after})
    elif state.take("fail_500"):
        resp = json_response(error_body(*wire.internal_error), 500)
    elif wire.weight and used > faults.weight_limit:
        resp = json_response(error_body(*wire.too_many(faults.weight_limit)), 429,
                             {"Retry-After": str(math.ceil(window_left))})
    else:
        try:
            resp = await handler(request)
        except ApiError as exc:
            resp = json_response(error_body(exc.code, exc.msg), exc.status)
    if wire.weight:
        resp.headers[cfg.WEIGHT_HEADER] = str(used)
    state.record(request.path, resp.status, arrived)
    return resp


def _int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if not _INT.match(value):
        raise ApiError(400, cfg.ERR_ILLEGAL_CHARS, name=name, legal="^[0-9]{1,20}$")
    return int(value)


def _limit(request: web.Request, default: int, maximum: int) -> int:
    limit = _int(request, "limit")
    if limit is None:
        return default
    if limit <= 0:
        raise ApiError(400, cfg.ERR_BAD_PARAM)
    return min(limit, maximum)  # Binance caps an oversized limit at the maximum


def symbol_history(request: web.Request) -> SymbolHistory:
    name = request.query.get("symbol")
    if not name:
        raise ApiError(400, cfg.ERR_MANDATORY, name="symbol")
    hist = request.app[HISTORY].get(name)
    if hist is None:
        raise ApiError(400, cfg.ERR_INVALID_SYMBOL)
    return hist


async def ping(_request: web.Request) -> web.Response:
    return json_response({})


async def server_time(request: web.Request) -> web.Response:
    return json_response({"serverTime": request.app[STATE].now()})


async def exchange_info_handler(request: web.Request) -> web.Response:
    hist = request.app[HISTORY]
    names: list[str] = [request.query["symbol"]] if "symbol" in request.query else list(hist.symbols)
    if "symbols" in request.query:
        try:
            names = orjson.loads(request.query["symbols"])
        except orjson.JSONDecodeError:
            raise ApiError(400, cfg.ERR_ILLEGAL_CHARS, name="symbols", legal='^\\["[A-Z0-9-_.]{1,20}"') from None
    if any(n not in hist.symbols for n in names):
        raise ApiError(400, cfg.ERR_INVALID_SYMBOL)
    return json_response(exchange_info([hist.symbols[n].spec for n in names], request.app[STATE].now()))


async def klines(request: web.Request) -> web.Response:
    hist = symbol_history(request)
    interval = request.query.get("interval")
    if not interval:
        raise ApiError(400, cfg.ERR_MANDATORY, name="interval")
    if interval not in cfg.INTERVALS:
        raise ApiError(400, cfg.ERR_INVALID_INTERVAL)
    start, end = _int(request, "startTime"), _int(request, "endTime")
    limit = _limit(request, cfg.KLINES_DEFAULT_LIMIT, cfg.KLINES_MAX_LIMIT)
    return json_response(hist.klines(cfg.INTERVALS[interval], start, end, limit, request.app[STATE].now()))


async def agg_trades(request: web.Request) -> web.Response:
    hist = symbol_history(request)
    from_id, start, end = _int(request, "fromId"), _int(request, "startTime"), _int(request, "endTime")
    if start is not None and end is not None and end - start > cfg.AGG_TRADES_MAX_WINDOW_MS:
        raise ApiError(400, cfg.ERR_LOOKUP_TOO_BIG)
    limit = _limit(request, cfg.AGG_TRADES_DEFAULT_LIMIT, cfg.AGG_TRADES_MAX_LIMIT)
    rows = hist.agg_trades(from_id, start, end, limit, request.app[STATE].now())
    return json_response([agg_trade_wire(a) for a in rows])


def replay_book(request: web.Request, hist: SymbolHistory, limit: int, now_ms: int) -> dict[str, Any]:
    """{lastUpdateId, bids, asks}: the recorded book where the replay is, else the synthetic book at now_ms."""
    if hist.rec is not None:
        return hist.rec.depth_at(request.app[REPLAY].depth_position(hist.spec.symbol), limit)
    return hist.synthetic_depth(now_ms, limit)


async def depth(request: web.Request) -> web.Response:
    hist = symbol_history(request)
    return json_response(replay_book(request, hist, _limit(request, cfg.DEPTH_DEFAULT_LIMIT, cfg.DEPTH_MAX_LIMIT),
                                     request.app[STATE].now()))


async def book_ticker(request: web.Request) -> web.Response:
    hists = [symbol_history(request)] if "symbol" in request.query else list(request.app[HISTORY].symbols.values())
    out = []
    for h in hists:
        book = replay_book(request, h, 1, request.app[STATE].now())
        (bp, bq), (ap, aq) = book["bids"][0], book["asks"][0]
        out.append({"symbol": h.spec.symbol, "bidPrice": bp, "bidQty": bq, "askPrice": ap, "askQty": aq})
    return json_response(out[0] if "symbol" in request.query else out)


async def sim_stats(request: web.Request) -> web.Response:
    if request.method == "POST":  # /_sim/stats/reset
        request.app[STATE].reset_stats()
    return json_response(request.app[STATE].stats())


async def sim_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method == "POST":
        try:
            body = await request.json(loads=orjson.loads)
            if not isinstance(body, dict):
                raise ValueError(f"expected a JSON object of FaultConfig fields, got {body!r}")
            state.set_faults(**body)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
    return json_response(dataclasses.asdict(state.faults))


async def sim_clock(request: web.Request) -> web.Response:
    body = await request.json(loads=orjson.loads)
    now_ms = body.get("now_ms") if isinstance(body, dict) else "missing"
    if now_ms is not None and not isinstance(now_ms, int):
        return json_response({"error": f"now_ms must be an integer (ms since epoch) or null, got {now_ms!r}"}, 400)
    request.app[STATE].now_ms = now_ms
    return json_response({"now_ms": now_ms})


BINANCE = WireFormat(
    name="Binance",
    rest=(web.get("/api/v3/ping", ping), web.get("/api/v3/time", server_time),
          web.get("/api/v3/exchangeInfo", exchange_info_handler), web.get("/api/v3/klines", klines),
          web.get("/api/v3/aggTrades", agg_trades), web.get("/api/v3/depth", depth),
          web.get("/api/v3/ticker/bookTicker", book_ticker)),
    ws=BINANCE_WS,
    internal_error=cfg.ERR_INTERNAL,
    too_many=lambda limit: (cfg.ERR_TOO_MANY[0], cfg.ERR_TOO_MANY[1].format(limit=limit)),
    banned=lambda until: (cfg.ERR_BANNED[0], cfg.ERR_BANNED[1].format(until=until)),
    weight=_weight,
)


def build_app(data_dir: Path, faults: FaultConfig | None = None, deterministic: bool = True, *,
              now_ms: int | None = None, speed: float = 1.0, wire: WireFormat = BINANCE) -> web.Application:
    """The replay server application. data_dir: the shared data root (with binance/) or binance/ itself."""
    recordings = load_recordings(Path(data_dir))
    app = web.Application(middlewares=[_rest_middleware])
    state = SimState(faults=dataclasses.replace(faults) if faults else FaultConfig(), now_ms=now_ms)
    replay = StreamReplay(recordings, deterministic, speed)
    app[STATE], app[HISTORY], app[REPLAY] = state, MarketHistory(cfg.SYMBOLS, recordings), replay
    app[WIRE] = wire
    app.on_startup.append(replay.on_startup)
    app.on_shutdown.append(replay.on_shutdown)
    ws = make_ws_handler(replay, state, wire.ws)
    app.add_routes([
        *wire.rest, *(web.get(path, ws) for path in wire.ws.paths),
        web.get("/_sim/stats", sim_stats), web.post("/_sim/stats/reset", sim_stats),
        web.get("/_sim/faults", sim_faults), web.post("/_sim/faults", sim_faults), web.post("/_sim/clock", sim_clock),
    ])
    return app


def run_replay_server(host: str, port: int, data_dir: Path, faults: FaultConfig | None = None,
                      deterministic: bool = True, speed: float = 1.0, *, wire: WireFormat = BINANCE) -> None:
    """Serve until SIGINT/SIGTERM, then close websockets and connections cleanly (aiohttp.run_app)."""
    app = build_app(data_dir, faults, deterministic, speed=speed, wire=wire)
    log.info("%s replay server on http://%s:%d (data %s, deterministic=%s)", wire.name, host, port, data_dir,
             deterministic)
    web.run_app(app, host=host, port=port, print=None, shutdown_timeout=5.0, handle_signals=True)


class ReplayServer:
    """The replay server in a background thread, for tests: `with ReplayServer(d).running() as base_url:`."""

    def __init__(self, data_dir: Path, faults: FaultConfig | None = None, *, deterministic: bool = True,
                 now_ms: int | None = None, speed: float = 1.0, wire: WireFormat = BINANCE) -> None:
        self.app = build_app(data_dir, faults, deterministic, now_ms=now_ms, speed=speed, wire=wire)
        self.state = self.app[STATE]  # change faults from the test thread: server.state.set_faults(fail_429=2)

    @contextmanager
    def running(self, port: int = 0, timeout: float = 30.0) -> Iterator[str]:
        """Serve on 127.0.0.1:port (0: a free port); yields "http://127.0.0.1:<port>" once it accepts."""
        with serve_in_thread(self.app, f"{self.app[WIRE].name.lower()}-replay", port, timeout) as url:
            yield url
