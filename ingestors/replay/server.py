"""The replay server application: recorded websocket paths, recorded REST answers, derived history, faults.

REST: every recorded `http` answer is served at its path; a request picks the recorded
answer whose query agrees with it on every parameter both name (the most agreeing
one first, then the earliest), so `?instType=SPOT` gets the SPOT instruments. The
exchange module adds derived candles/trades endpoints (ExchangeReplay.rest_routes).

Test hooks (not the exchange's): POST /_sim/faults (JSON object of FaultConfig fields),
GET /_sim/faults, GET /_sim/stats, POST /_sim/stats/reset.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from ingestors.replay.faults import FaultConfig, SimState
from ingestors.replay.history import TradeHistory
from ingestors.replay.session import HttpAnswer, ReplaySession, load_session
from ingestors.replay.spec import ExchangeReplay
from ingestors.replay.threaded import serve_in_thread
from ingestors.replay.ws import WsReplay

__all__ = ["REPLAY", "STATE", "ReplayServer", "build_app", "recording_path", "run_replay_server"]

log = logging.getLogger(__name__)
STATE = web.AppKey("state", SimState)
REPLAY = web.AppKey("replay", WsReplay)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def recording_path(data_dir: Path, spec: ExchangeReplay) -> Path:
    """data_dir is the shared data root (with cryptofeed/) or cryptofeed/ itself."""
    root = Path(data_dir)
    return root / spec.recording if (root / spec.recording).is_file() else root / "cryptofeed" / spec.recording


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _middleware(spec: ExchangeReplay, state: SimState) -> Middleware:
    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        """REST faults and accounting; websocket upgrades and /_sim/ pass through."""
        if request.path.startswith("/_sim/") or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        if state.faults.latency_ms:
            await asyncio.sleep(state.faults.latency_ms / 1000)
        resp: web.StreamResponse
        if state.take("fail_429"):
            resp = web.Response(text=spec.error_body(429, "Too many requests"), status=429, content_type="application/json",
                                headers={"Retry-After": str(state.faults.retry_after_seconds)})
        elif state.take("fail_500"):
            resp = web.Response(text=spec.error_body(500, "Internal error"), status=500, content_type="application/json")
        else:
            resp = await handler(request)
        state.record(request.path, resp.status)
        return resp

    return faults


def pick_answer(answers: list[HttpAnswer], query: dict[str, str]) -> HttpAnswer | None:
    """The recorded answer agreeing with the query on every shared parameter, the most agreeing first."""
    best: tuple[int, HttpAnswer] | None = None
    for ans in answers:
        shared = set(ans.params) & set(query)
        if any(ans.params[k] != query[k] for k in shared):
            continue
        if best is None or len(shared) > best[0]:
            best = (len(shared), ans)
    return best[1] if best else None


def _recorded_handler(spec: ExchangeReplay, answers: list[HttpAnswer]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        ans = pick_answer(answers, {k: v for k, v in request.query.items() if v != ""})
        if ans is None:
            return web.Response(text=spec.error_body(400, f"no recorded answer for {request.path_qs}"), status=400,
                                content_type="application/json")
        return web.Response(text=ans.body, content_type="application/json")

    return handle


def build_app(spec: ExchangeReplay, data_dir: Path, faults: FaultConfig | None = None, *, deterministic: bool = True,
              speed: float = 1.0, settle_s: float = 0.3, close_at_end: bool = False) -> web.Application:
    """The replay server of one exchange, from data_dir/cryptofeed/<spec.recording>."""
    session: ReplaySession = load_session(recording_path(data_dir, spec), spec)
    state = SimState(faults=dataclasses.replace(faults) if faults else FaultConfig())
    replay = WsReplay(session, spec, state, deterministic=deterministic, speed=speed, settle_s=settle_s,
                      close_at_end=close_at_end)
    app = web.Application(middlewares=[_middleware(spec, state)])
    app[STATE], app[REPLAY] = state, replay
    app.on_startup.append(replay.on_startup)
    app.on_shutdown.append(replay.on_shutdown)

    def now_ns() -> int:  # REST "now": the wall clock when deterministic (after the recording), else the replay clock
        return time.time_ns() if deterministic else replay.clock_ns()

    trades = [t for stream in session.streams.values() for t in stream.trades]
    routes = spec.rest_routes(TradeHistory(trades, now_ns), session.http)
    by_path: dict[str, list[HttpAnswer]] = {}
    for ans in session.http:
        by_path.setdefault(ans.path, []).append(ans)
    routes += [web.get(p, _recorded_handler(spec, answers)) for p, answers in by_path.items()]
    for path, stream in session.streams.items():
        routes.append(web.get(path, replay.handler(stream)))
    for alias, recorded in spec.ws_paths.items():
        routes.append(web.get(alias, replay.handler(session.streams[recorded])))

    async def sim_stats(request: web.Request) -> web.Response:
        if request.method == "POST":
            state.reset_stats()
        return _json(state.stats())

    async def sim_faults(request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                body = await request.json(loads=orjson.loads)
                if not isinstance(body, dict):
                    raise ValueError(f"expected a JSON object of FaultConfig fields, got {body!r}")
                state.set_faults(**body)
            except ValueError as exc:
                return _json({"error": str(exc)}, 400)
        return _json(dataclasses.asdict(state.faults))

    routes += [web.get("/_sim/stats", sim_stats), web.post("/_sim/stats/reset", sim_stats),
               web.get("/_sim/faults", sim_faults), web.post("/_sim/faults", sim_faults)]
    app.add_routes(routes)
    if spec.extend_app is not None:
        spec.extend_app(app)
    return app


def run_replay_server(spec: ExchangeReplay, host: str, port: int, data_dir: Path, faults: FaultConfig | None = None, *,
                      deterministic: bool = False, speed: float = 1.0, close_at_end: bool = False) -> None:
    """Serve until SIGINT/SIGTERM, then close websockets and connections cleanly (aiohttp.run_app)."""
    app = build_app(spec, data_dir, faults, deterministic=deterministic, speed=speed, close_at_end=close_at_end)
    log.info("%s replay server on http://%s:%d (data %s, deterministic=%s, speed=%s)", spec.exchange, host, port,
             data_dir, deterministic, speed)
    web.run_app(app, host=host, port=port, print=None, shutdown_timeout=5.0, handle_signals=True)


class ReplayServer:
    """A replay server in a background thread: `with ReplayServer(spec, data_dir).running() as base_url:`."""

    def __init__(self, spec: ExchangeReplay, data_dir: Path, faults: FaultConfig | None = None, *,
                 deterministic: bool = True, speed: float = 1.0, settle_s: float = 0.3, close_at_end: bool = False) -> None:
        self.spec = spec
        self.app = build_app(spec, data_dir, faults, deterministic=deterministic, speed=speed, settle_s=settle_s,
                             close_at_end=close_at_end)
        self.state = self.app[STATE]  # change faults from the test thread: server.state.set_faults(drop_diffs=1)

    @contextmanager
    def running(self, port: int = 0, timeout: float = 30.0) -> Iterator[str]:
        """Serve on 127.0.0.1:port (0: a free port); yields "http://127.0.0.1:<port>" once it accepts."""
        with serve_in_thread(self.app, f"{self.spec.exchange.lower()}-replay", port, timeout) as url:
            yield url
