"""Websocket side of the replay server: recorded frames of the subscribed keys, byte for byte.

A client connects at the recorded path, receives the exchange's greeting (if it sends
one), subscribes in the exchange's format, and gets the recorded frames (subscribe acks
included, where they were in the recording) of the keys it subscribed, in recorded order.

Deterministic mode: every connection replays from the first recorded frame, as fast as
the client reads. It starts once the client's subscriptions cover everything one
recorded connection subscribed (a client that subscribes as the recording did gets
exactly that connection's frames), or `settle_s` after its last subscribe otherwise.
Paced mode: the same frames, each sent at its recorded time (from the connection's first
frame) divided by `speed`. Every connection starts from the beginning because these
exchanges send their book snapshots over the websocket right after subscribing: a
client joining a shared clock mid-recording would never get one. When the recording
ends the connection stays open and quiet, or with close_at_end is closed (1001, going
away) so that a client reconnects and gets the recording again, for demos that run longer.

Exchanges numbering every frame of a connection (Coinbase sequence_num, Bitfinex with
SEQ_ALL) get their numbers rewritten per client connection (ExchangeReplay.renumber), as
the exchange would number what this client receives: identical to the recording for a
client subscribed as the recorder was; a dropped frame still uses its number (a gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from ingestors.replay.faults import SimState
from ingestors.replay.session import Frame, PathStream, ReplaySession
from ingestors.replay.spec import ClientFrame, ExchangeReplay, Key, Kind

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def send_frame(ws: web.WebSocketResponse, frame: Frame, codec: WsCodec | None = None) -> None:
    """A recorded frame as recorded: text, or the recorded bytes of a binary frame; with a codec, what it makes of it."""
    if codec is not None:
        for text in codec.outgoing(frame):
            await ws.send_str(text)
    elif frame.data is not None:
        await ws.send_bytes(frame.data)
    else:
        await ws.send_str(frame.text)


async def send_reply(ws: web.WebSocketResponse, reply: str | bytes) -> None:
    if isinstance(reply, bytes):
        await ws.send_bytes(reply)
    else:
        await ws.send_str(reply)


class WsCodec(Protocol):
    """A served path speaking another wire format than the recording (Kraken v2 from the v1 recording), per connection:
    it reads the client's frames and turns each recorded frame it is sent into the texts to send (maybe none)."""

    def client_frame(self, text: str) -> ClientFrame: ...

    def outgoing(self, frame: Frame) -> list[str]: ...


@dataclass
class _Client:
    subs: set[Key] = field(default_factory=set)
    primary: str | None = None  # the recorded connection whose connection-level frames (heartbeats) it gets
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)  # a first subscribe arrived
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # subscriptions cover a recorded connection's
    last_subscribe: float = 0.0
    codec: WsCodec | None = None


class WsReplay:
    """The replay clock and the websocket handlers of every recorded path."""

    def __init__(self, session: ReplaySession, spec: ExchangeReplay, state: SimState, *, deterministic: bool,
                 speed: float, settle_s: float = 0.3, close_at_end: bool = False) -> None:
        if speed <= 0:
            raise ValueError(f"replay speed must be positive, got {speed}")
        self.session, self.spec, self.state = session, spec, state
        self.deterministic, self.speed, self.settle_s = deterministic, speed, settle_s
        self.close_at_end = close_at_end
        self.started: float | None = None  # loop.time() at server start
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    def clock_ns(self) -> int:
        """The recorded time reached since the server started, at `speed` (deterministic: the end of the recording).
        The REST history's "now": candles close as it passes them."""
        if self.deterministic or self.started is None:
            return self.session.t_end_ns
        elapsed = asyncio.get_running_loop().time() - self.started
        return self.session.t0_ns + int(elapsed * self.speed * 1e9)

    async def on_startup(self, _app: web.Application) -> None:
        self.started = asyncio.get_running_loop().time()

    async def on_shutdown(self, _app: web.Application) -> None:
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"server shutdown")

    def _wanted(self, frame: Frame, client: _Client) -> bool:
        if frame.tag.kind is Kind.CONN:
            return frame.conn == client.primary
        return not frame.tag.keys.isdisjoint(client.subs)

    async def _wait_ready(self, client: _Client) -> None:
        await client.subscribed.wait()
        loop = asyncio.get_running_loop()
        while not client.ready.is_set():
            left = client.last_subscribe + self.settle_s - loop.time()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.ready.wait(), left)

    async def _send(self, ws: web.WebSocketResponse, frame: Frame, sent: int, transport: Any,
                    codec: WsCodec | None = None) -> bool:
        """Send one recorded frame (through the path's codec if it has one); False once the disconnect fault closed
        the connection."""
        await send_frame(ws, frame, codec)
        state = self.state
        with state.lock:
            state.ws_frames += 1
            close_after, abort = state.faults.ws_close_after_frames, state.faults.ws_abort
            if close_after and sent + 1 >= close_after and state.faults.ws_close_once:  # this one, then no more
                state.faults.ws_close_after_frames, state.faults.ws_close_once = 0, False
        if close_after and sent + 1 >= close_after:
            state.count("closed_by_fault")
            if abort:
                transport.abort()
            else:
                await ws.close(code=1000, message=f"replay fault: closed after {sent + 1} frames".encode())
            return False
        return True

    async def _replay(self, ws: web.WebSocketResponse, stream: PathStream, client: _Client, transport: Any) -> None:
        await self._wait_ready(client)
        loop, state = asyncio.get_running_loop(), self.state
        began, first_ns = loop.time(), None
        sent, held, seq = 0, None, self.spec.first_sequence
        for frame in stream.frames:
            if not self._wanted(frame, client):
                continue
            if not self.deterministic:
                first_ns = frame.recv_ns if first_ns is None else first_ns
                due = began + (frame.recv_ns - first_ns) / 1e9 / self.speed
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
            if self.spec.renumber is not None:  # a connection-wide sequence counts the frames this client gets
                renumbered = self.spec.renumber(frame.text, seq)
                if renumbered is not None:
                    seq += 1
                    if renumbered != frame.text:
                        frame = dataclasses.replace(frame, text=renumbered)
            out = [frame]
            symbol = frame.tag.diff_symbol
            if symbol:
                if held is not None and held.tag.diff_symbol == symbol:
                    out, held = [frame, held], None  # the reorder fault: the later diff first
                    state.count("reordered")
                elif state.take("drop_diffs", symbol):
                    state.count("dropped")
                    continue
                elif held is None and state.take("reorder_diffs", symbol):
                    held = frame
                    continue
            if frame.tag.kind is Kind.DATA and state.take("malformed_frames"):
                await send_reply(ws, self.spec.encode_reply(self.spec.malformed))
                state.count("malformed_sent")
            for one in out:
                if not await self._send(ws, one, sent, transport, client.codec):
                    return
                sent += 1
        if held is not None and not await self._send(ws, held, sent, transport, client.codec):
            return
        if self.close_at_end:
            await ws.close(code=1001, message=b"replay: end of the recording, reconnect to replay it again")

    def handler(self, stream: PathStream, codec: Callable[[], WsCodec] | None = None) -> Handler:
        """The aiohttp handler serving one recorded websocket path (codec: a new one per connection)."""

        async def handle(request: web.Request) -> web.StreamResponse:
            ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=0)
            await ws.prepare(request)
            self.sockets.add(ws)
            self.state.count("ws_connections")
            client = _Client(codec=codec() if codec is not None else None)
            for frame in stream.greeting:
                await send_frame(ws, frame, client.codec)
            sender = asyncio.create_task(self._replay(ws, stream, client, request.transport))
            loop = asyncio.get_running_loop()
            try:
                async for msg in ws:
                    if msg.type != WSMsgType.TEXT:
                        continue
                    try:
                        asked = (client.codec or self.spec).client_frame(msg.data)
                    except Exception as exc:  # a client frame the exchange module did not expect: ignore it, keep serving
                        log.warning("%s: cannot read client frame %r: %r", self.spec.exchange, msg.data[:200], exc)
                        continue
                    for reply in asked.replies:
                        await send_reply(ws, self.spec.encode_reply(reply))
                    client.subs.difference_update(asked.unsubscribe)
                    if asked.subscribe:
                        client.subs.update(asked.subscribe)
                        if client.primary is None:
                            client.primary = stream.key_conn.get(asked.subscribe[0])
                        client.last_subscribe = loop.time()
                        client.subscribed.set()
                        if any(keys and keys <= client.subs for keys in stream.conn_keys.values()):
                            client.ready.set()
            finally:
                sender.cancel()
                for result in await asyncio.gather(sender, return_exceptions=True):
                    if isinstance(result, Exception) and not isinstance(result, ConnectionError):
                        log.warning("%s websocket replay to %s failed: %r", self.spec.exchange, request.remote, result)
            return ws

        return handle
