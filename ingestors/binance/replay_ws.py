"""Websocket side of the Binance replay server: recorded stream frames, byte for byte.

Endpoints as Binance's (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams):
/ws/<stream>[/<stream>...] sends raw events, /stream?streams=a/b sends combined
frames {"stream": ..., "data": ...}; on either, SUBSCRIBE / UNSUBSCRIBE /
LIST_SUBSCRIPTIONS requests work. Streams: <symbol>@trade, @depth@100ms,
@bookTicker as recorded, and @aggTrade derived from the recorded trades.

Deterministic mode: every connection replays the recording from its first frame,
as fast as the client reads, then stays open and quiet (the REST depth snapshot is the recorded one, which
fits a fresh replay). Paced mode: one replay clock starts with the server and runs
at `speed` x recorded time; a connection joins it where it is now, like a live
market, and REST depth returns the book rebuilt at that point.

The sender (pacing, the depth-drop / malformed-frame / close faults) does not know Binance's format: a
WsFormat's session per connection says what it subscribed to, answers its requests and encodes each
recorded frame. BINANCE_WS is Binance's own; ingestors.mexc.replay plugs in MEXC's (protobuf pushes).
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import WSMsgType, web

from ingestors.binance.recording import Frame, Recording
from ingestors.binance.sim_faults import SimState

log = logging.getLogger(__name__)


class StreamReplay:
    """All recorded frames of all symbols in receive order, and the paced replay clock."""

    def __init__(self, recordings: dict[str, Recording], deterministic: bool, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"replay speed must be positive, got {speed}")
        self.recordings = recordings
        self.frames: list[Frame] = list(heapq.merge(*(r.frames for r in recordings.values())))
        self.streams: frozenset[str] = frozenset(f.stream for f in self.frames)  # what a subscription can get
        self.t0_ns = self.frames[0].recv_ns if self.frames else 0
        self.deterministic, self.speed = deterministic, speed
        self.started: float | None = None  # loop.time() when the server started
        self.sent_ns = 0  # deterministic mode: recorded receive time of the newest frame sent (0: none yet)
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    def clock_ns(self) -> int:
        """Recorded receive time the paced replay has reached."""
        elapsed = asyncio.get_running_loop().time() - (self.started or 0.0)
        return self.t0_ns + int(elapsed * self.speed * 1e9)

    def depth_position(self, symbol: str) -> int | None:
        """How far into the symbol's frames the depth book is (None: the recorded snapshot)."""
        rec = self.recordings.get(symbol)
        if rec is None:
            return None
        if self.deterministic:  # the book as of the newest frame sent (a resync mid-replay needs a fresh book)
            return rec.position_at(self.sent_ns) if self.sent_ns else None
        return rec.position_at(self.clock_ns())

    async def on_startup(self, _app: web.Application) -> None:
        self.started = asyncio.get_running_loop().time()

    async def on_shutdown(self, _app: web.Application) -> None:
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"server shutdown")


class WsSession(Protocol):
    """One websocket connection in one wire format: its subscriptions, its answers and its data frames.

    The sender, the pacing and the faults around it are the server's (make_ws_handler); a session only
    says what a connection wants and how a recorded frame looks on its wire.
    """

    @property
    def malformed(self) -> str | bytes:
        """What the malformed_frames fault sends (str: a text frame, bytes: a binary frame)."""
        ...

    def wants(self, stream: str) -> bool:
        """Whether the connection is subscribed to (something made from) this recorded stream."""
        ...

    def encode(self, frame: Frame) -> Sequence[str | bytes]:
        """The frames to send for one recorded frame of a wanted stream (str: text, bytes: binary)."""
        ...

    def answer(self, message: str) -> str:
        """The reply to one text message from the client; (un)subscribing changes what wants() says."""
        ...


@dataclass(frozen=True)
class WsFormat:
    """A websocket wire format: the upgrade paths, the server's ping interval and a session per connection."""

    paths: tuple[str, ...]
    session: Callable[[web.Request], WsSession]
    heartbeat: float | None = None  # seconds between the server's pings (None: the server sends none)


class BinanceSession:
    """Binance's: streams named in the path (/ws/a/b) or query (/stream?streams=a/b), SUBSCRIBE / UNSUBSCRIBE /
    LIST_SUBSCRIPTIONS requests; raw events on /ws, combined frames {"stream", "data"} on /stream."""

    malformed = '{"stream": "broken'

    def __init__(self, request: web.Request) -> None:
        self.combined = request.path.startswith("/stream")
        names = request.query.get("streams", "") if self.combined else request.match_info.get("streams", "")
        self.subs = {s for s in names.split("/") if s}

    def wants(self, stream: str) -> bool:
        return stream in self.subs

    def encode(self, frame: Frame) -> tuple[str]:
        return (frame.text if self.combined else frame.data_text(),)

    def answer(self, message: str) -> str:
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            return orjson.dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}).decode()
        return orjson.dumps(_answer(req if isinstance(req, dict) else {}, self.subs)).decode()


# Binance ignores path segments that are no stream (ccxt connects to /ws/0, /ws/1, ... and then sends SUBSCRIBE):
# the replay of a connection starts with its first subscription to a recorded stream.
BINANCE_WS = WsFormat(paths=("/ws", "/ws/{streams:.+}", "/stream"), session=BinanceSession, heartbeat=20.0)


async def _send(ws: web.WebSocketResponse, data: str | bytes) -> None:
    await (ws.send_bytes(data) if isinstance(data, bytes) else ws.send_str(data))


async def _send_frames(ws: web.WebSocketResponse, session: WsSession, subscribed: asyncio.Event,
                       replay: StreamReplay, state: SimState, transport: Any) -> None:
    await subscribed.wait()
    loop = asyncio.get_running_loop()
    start = 0
    if not replay.deterministic:
        now_ns = replay.clock_ns()
        start = bisect.bisect_left(replay.frames, now_ns, key=lambda f: f.recv_ns)
    sent = 0
    replay.sent_ns = 0  # a new connection starts the recording again: the recorded snapshot fits it
    depth_seen: dict[str, int] = {}  # per stream, for the depth-drop fault
    for frame in replay.frames[start:]:
        if not session.wants(frame.stream):
            continue
        if "@depth" in frame.stream and _drop_depth(frame.stream, depth_seen, state):
            continue
        if state.take("malformed_frames"):
            await _send(ws, session.malformed)
        if not replay.deterministic:
            due = (replay.started or 0.0) + (frame.recv_ns - replay.t0_ns) / 1e9 / replay.speed
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
        for data in session.encode(frame):
            await _send(ws, data)
        replay.sent_ns = frame.recv_ns
        sent += 1
        with state.lock:
            state.ws_frames += 1
            close_after = state.faults.ws_close_after_frames
            abort = state.faults.ws_abort
        if close_after and sent >= close_after:
            if state.faults.ws_close_once:
                state.set_faults(ws_close_after_frames=0, ws_close_once=False)
            if abort:
                transport.abort()
            else:
                await ws.close(code=1000, message=f"replay fault: closed after {sent} frames".encode())
            return


def _drop_depth(stream: str, seen: dict[str, int], state: SimState) -> bool:
    """The depth-drop fault: skip diffs [drop_depth_after, drop_depth_after + count) of the fault symbol."""
    faults = state.faults
    if not faults.drop_depth_count or (faults.fault_symbol and not stream.startswith(faults.fault_symbol.lower() + "@")):
        return False
    n = seen[stream] = seen.get(stream, 0) + 1
    if faults.drop_depth_after <= n < faults.drop_depth_after + faults.drop_depth_count:
        with state.lock:
            state.ws_dropped += 1
        return True
    return False


def _answer(request: dict[str, Any], subs: set[str]) -> dict[str, Any]:
    """Reply to a SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS request, changing subs."""
    method, params, rid = request.get("method"), request.get("params", []), request.get("id")
    if method == "SUBSCRIBE" and isinstance(params, list):
        subs.update(str(p) for p in params)
        return {"result": None, "id": rid}
    if method == "UNSUBSCRIBE" and isinstance(params, list):
        subs.difference_update(str(p) for p in params)
        return {"result": None, "id": rid}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": sorted(subs), "id": rid}
    return {"error": {"code": 2, "msg": f"Invalid request: unknown method or params: {request!r}"}, "id": rid}


def make_ws_handler(replay: StreamReplay, state: SimState,
                    fmt: WsFormat = BINANCE_WS) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler for the format's websocket paths (Binance's: /ws, /ws/{streams} and /stream)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if state.take("drop_next"):
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=499)  # never written: the connection is gone
        session = fmt.session(request)
        ws = web.WebSocketResponse(heartbeat=fmt.heartbeat)
        await ws.prepare(request)
        replay.sockets.add(ws)
        with state.lock:
            state.ws_connections += 1
        subscribed = asyncio.Event()  # the replay starts with the first subscription to a recorded stream
        if any(session.wants(s) for s in replay.streams):
            subscribed.set()
        sender = asyncio.create_task(_send_frames(ws, session, subscribed, replay, state, request.transport))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await ws.send_str(session.answer(msg.data))
                if any(session.wants(s) for s in replay.streams):
                    subscribed.set()
        finally:
            sender.cancel()
            for result in await asyncio.gather(sender, return_exceptions=True):
                if isinstance(result, Exception) and not isinstance(result, ConnectionError):
                    log.warning("websocket replay to %s failed: %r", request.remote, result)
        return ws

    return handle
