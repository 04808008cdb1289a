"""The connection runner: drives one exchange's LiveAdapter over a websocket, for as long as the sidecar runs.

Everything that is the same for every exchange lives here, once:

- connect, send the adapter's subscriptions after every (re)connect (resubscribe);
- keep-alive: the exchange's application ping (or a websocket ping) every
  `ping_interval_s`; no frame at all within `pong_timeout_s` after a ping means
  the connection is dead, and it is dropped;
- reconnect with exponential backoff and full jitter (reset once a connection
  stayed up), and a scheduled reconnect before the exchange's forced disconnect
  (`max_lifetime_s`, e.g. Binance's 24 h);
- a circuit breaker per exchange: repeated failed connects open it for a cool-down;
- REST book snapshots the adapter asks for, fetched beside the stream (the reader
  never waits for them), honouring 429/418 Retry-After, with retries;
- a malformed frame (or any error normalising one) is counted by cause and
  skipped: one bad frame never ends a feed.

Events go to `emit` (an awaitable, e.g. the event bus's publish_batch), so a slow
required consumer slows this reader rather than losing anything. Each exchange
has its own LiveConnection task: one failing exchange does not affect another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from ingestors.live.adapter import FrameParseError, LiveAdapter, LiveEvent, SnapshotRequest
from ingestors.live.backoff import Backoff, CircuitBreaker
from live_relay.messages import StreamGap

log = logging.getLogger(__name__)

__all__ = ["ConnectionStats", "LiveConnection"]

Emit = Callable[[list[LiveEvent]], Awaitable[None]]
HEALTHY_AFTER_S = 30.0  # a connection that stayed up this long resets the backoff


class DeadConnectionError(ConnectionError):
    """No frame arrived within the pong timeout after a keep-alive ping."""


@dataclass
class ConnectionStats:
    """Counters of one exchange's feed, for the health report and tests."""

    state: str = "starting"
    connects: int = 0
    connect_failures: int = 0
    reconnects: int = 0
    scheduled_reconnects: int = 0
    frames: int = 0
    events: int = 0
    gaps: int = 0
    pings: int = 0
    snapshots: int = 0
    snapshot_errors: int = 0
    snapshot_waits: int = 0  # snapshots held back to keep a symbol's snapshots snapshot_min_interval_s apart
    malformed: Counter[str] = field(default_factory=Counter)
    last_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "malformed"}
        d["malformed"] = sum(self.malformed.values())
        d["malformed_by_cause"] = dict(self.malformed)
        return d


class LiveConnection:
    """Runs `adapter` until stop(): `await conn.run()` (a task per exchange)."""

    def __init__(self, adapter: LiveAdapter, emit: Emit, *, backoff: Backoff | None = None,
                 breaker: CircuitBreaker | None = None, http: httpx.AsyncClient | None = None,
                 snapshot_retries: int = 5, snapshot_min_interval_s: float = 0.5) -> None:  # fmt: skip
        self.adapter = adapter
        self.emit = emit
        self.backoff = backoff or Backoff()
        self.breaker = breaker or CircuitBreaker()
        self.stats = ConnectionStats()
        self._http = http
        self._snapshot_retries = snapshot_retries
        # A symbol's snapshots are at least this far apart: a book that keeps finding its snapshot stale (a slow
        # exchange cache) would otherwise refetch after every frame and spend the REST budget (Binance: weight 50).
        self._snapshot_min_interval_s = snapshot_min_interval_s
        self._last_snapshot: dict[str, float] = {}  # symbol -> loop time of its last snapshot answer
        self._stopping = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._logged: set[str] = set()
        self._ws: ClientConnection | None = None
        self._pong_seen = asyncio.Event()

    def stop(self) -> None:
        """End the feed: the current connection is closed (its pending read ends) and no reconnect follows."""
        self._stopping.set()
        if self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds` unless stop() comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def run(self) -> None:
        own_http = self._http is None
        self._http = self._http or httpx.AsyncClient(timeout=10.0)
        try:
            while not self._stopping.is_set():
                if (wait := self.breaker.wait_s()) > 0:
                    self.stats.state = "breaker_open"
                    log.warning("%s: circuit breaker open, next attempt in %.1fs", self.adapter.exchange, wait)
                    await self._pause(wait)
                    continue
                up_for = await self._one_connection()
                if self._stopping.is_set():
                    break
                self.stats.reconnects += 1
                if up_for >= HEALTHY_AFTER_S:
                    self.backoff.reset()
                delay = 0.0 if up_for < 0 else self.backoff.next_delay()  # < 0: a scheduled reconnect, at once
                self.stats.state = "reconnecting"
                await self._pause(delay)
        finally:
            for task in self._in_flight.values():
                task.cancel()
            self.stats.state = "stopped"
            if own_http:
                await self._http.aclose()

    async def _one_connection(self) -> float:
        """Connect, stream until the connection ends; seconds it was up (-1 for a scheduled reconnect)."""
        self.stats.state = "connecting"
        # In a thread: an adapter may ask a REST endpoint for its URL first (KuCoin's bullet-public token), and the
        # other feeds of the process must not wait for that answer.
        url = await asyncio.to_thread(self.adapter.ws_url)
        try:
            ws = await connect(url, ping_interval=None, max_size=None, open_timeout=10, close_timeout=2)
        except (OSError, TimeoutError, WebSocketException) as exc:
            self.stats.connect_failures += 1
            self.stats.last_error = f"connect {url}: {exc}"
            self.breaker.record_failure()
            self._log_once("connect", f"{self.adapter.exchange}: cannot connect to {url}: {exc}")
            return 0.0
        self.breaker.record_success()
        self.stats.connects += 1
        self.stats.state = "live"
        started = time.monotonic()
        scheduled = False
        try:
            await self._deliver(self.adapter.on_connect(time.time_ns()))
            for frame in self.adapter.subscribe_frames():
                await ws.send(frame)
            scheduled = await self._pump(ws, started)
        except (OSError, TimeoutError, WebSocketException, DeadConnectionError) as exc:
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("%s: connection lost after %.1fs: %s", self.adapter.exchange, time.monotonic() - started, exc)
        finally:
            with contextlib.suppress(Exception):
                await ws.close()
            lost = self.adapter.on_disconnect(time.time_ns())
            if not self._stopping.is_set():  # a deliberate stop ends the stream; it is not a gap in it
                await self._deliver(lost)
        if scheduled:
            self.stats.scheduled_reconnects += 1
            return -1.0
        return time.monotonic() - started

    async def _pump(self, ws: ClientConnection, started: float) -> bool:
        """Read frames until the connection ends (exception), stop() (False) or its lifetime is up (True)."""
        keep = self.adapter.keepalive
        loop = asyncio.get_running_loop()
        mono_to_loop = loop.time() - time.monotonic()
        next_ping = time.monotonic() + keep.ping_interval_s if keep.ping_interval_s else float("inf")
        retire_at = started + keep.max_lifetime_s if keep.max_lifetime_s else float("inf")
        pong_due = float("inf")
        self._ws = ws  # stop() closes it, which ends a pending recv()
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                if now >= retire_at:
                    log.info("%s: scheduled reconnect after %.0fs", self.adapter.exchange, now - started)
                    return True
                if self._pong_seen.is_set():
                    self._pong_seen.clear()
                    pong_due = float("inf")
                if now >= pong_due:
                    raise DeadConnectionError(f"no frame within {keep.pong_timeout_s}s of a ping")
                if now >= next_ping:
                    pong = await self._ping(ws)
                    if pong is not None:  # a websocket-level pong never reaches recv(): watch its waiter
                        pong.add_done_callback(lambda _f: self._pong_seen.set())
                    next_ping = now + (keep.ping_interval_s or float("inf"))
                    pong_due = min(pong_due, now + keep.pong_timeout_s)

                wake = min(next_ping, retire_at, pong_due)
                try:  # asyncio.timeout_at costs no task per frame (wait_for would); cancelling recv() loses nothing
                    async with asyncio.timeout_at(None if wake == float("inf") else wake + mono_to_loop):
                        data = await ws.recv()
                except TimeoutError:
                    continue
                pong_due = float("inf")  # any frame proves the connection alive
                self.stats.frames += 1
                await self._on_frame(data)
                for frame in self.adapter.outgoing():
                    await ws.send(frame)
            return False
        except WebSocketException:
            if self._stopping.is_set():
                return False
            raise
        finally:
            self._ws = None

    async def _ping(self, ws: ClientConnection) -> asyncio.Future[Any] | None:
        """Send the keep-alive ping; the pong waiter of a websocket-level ping (None for an application ping)."""
        self.stats.pings += 1
        frame = self.adapter.keepalive.ping_frame
        if frame is None:
            return asyncio.ensure_future(await ws.ping())
        await ws.send(frame)
        return None

    async def _on_frame(self, data: str | bytes) -> None:
        if self.adapter.is_pong(data):
            return
        try:
            events = self.adapter.on_frame(data, time.time_ns())
        except FrameParseError as exc:
            self._malformed(exc.cause, exc.detail, data)
            if exc.events:  # a live book the frame broke: its consumers must hear of the gap
                await self._deliver(exc.events)
            return
        except Exception as exc:  # a frame our parser did not expect: counted and skipped, never fatal
            self._malformed(f"error:{type(exc).__name__}", str(exc), data)
            return
        await self._deliver(events)
        for request in self.adapter.snapshot_requests():
            if request.symbol not in self._in_flight:
                self._in_flight[request.symbol] = asyncio.create_task(self._snapshot(request))

    def _malformed(self, cause: str, detail: str, data: str | bytes) -> None:
        self.stats.malformed[cause] += 1
        self._log_once(f"malformed:{cause}", f"{self.adapter.exchange}: skipping malformed frame ({cause}): {detail}; "
                                             f"frame starts {data[:120]!r}")  # fmt: skip

    async def _deliver(self, events: Sequence[LiveEvent]) -> None:
        if not events:
            return
        self.stats.events += len(events)
        self.stats.gaps += sum(isinstance(e, StreamGap) for e in events)
        await self.emit(list(events))

    async def _snapshot(self, request: SnapshotRequest) -> None:
        """Fetch one REST snapshot with retries (429/418 Retry-After honoured, 5xx and network errors backed off)."""
        assert self._http is not None
        backoff = Backoff(base_s=0.5, cap_s=10.0)
        loop = asyncio.get_running_loop()
        try:
            too_soon = self._last_snapshot.get(request.symbol, -math.inf) + self._snapshot_min_interval_s - loop.time()
            if too_soon > 0:
                self.stats.snapshot_waits += 1
                await self._pause(too_soon)
                if self._stopping.is_set():
                    return
            for attempt in range(self._snapshot_retries + 1):
                wait = None
                try:
                    response = await self._http.get(request.url)
                    if response.status_code in (418, 429):
                        wait = float(response.headers.get("Retry-After", backoff.ceiling()))
                    elif response.status_code >= 500:
                        wait = backoff.next_delay()
                    else:
                        response.raise_for_status()
                        body = orjson.loads(response.content)
                        self.stats.snapshots += 1
                        self._last_snapshot[request.symbol] = loop.time()
                        await self._deliver(self.adapter.on_snapshot(request, body, time.time_ns()))
                        return
                except (httpx.TransportError, orjson.JSONDecodeError) as exc:
                    wait = backoff.next_delay()
                    self.stats.last_error = f"snapshot {request.url}: {exc}"
                except httpx.HTTPStatusError as exc:  # 4xx other than rate limits: retrying will not help
                    self.stats.snapshot_errors += 1
                    self.stats.last_error = f"snapshot {request.url}: {exc}"
                    log.error("%s: snapshot refused: %s", self.adapter.exchange, exc)
                    return
                log.warning("%s: snapshot %s attempt %d failed, retry in %.1fs", self.adapter.exchange,
                            request.symbol, attempt + 1, wait)  # fmt: skip
                await self._pause(wait)
                if self._stopping.is_set():
                    return
            self.stats.snapshot_errors += 1
            log.error("%s: snapshot of %s failed %d times", self.adapter.exchange, request.symbol, self._snapshot_retries + 1)
        finally:
            self._in_flight.pop(request.symbol, None)

    def _log_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning("%s", message)
