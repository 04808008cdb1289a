"""The interface every exchange's live (websocket) adapter implements.

An adapter is the exchange-specific half of a live feed: what URL to open, what
to send after connecting, how to turn each received frame into the protocol's
normalised messages (Tick, BookUpdate, TopOfBook, StreamGap), and the
exchange's keep-alive rules. It does no I/O itself: the connection runner
(ingestors/live/connection.py) owns the socket, reconnects, pings and the
circuit breaker, so every exchange gets the same, tested, behaviour. The one
exception is a REST book snapshot (Binance), which the runner fetches when
`snapshot_requests()` asks for one and hands back through `on_snapshot()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from live_relay.messages import BookUpdate, StreamGap, Tick, TopOfBook

__all__ = ["FrameParseError", "KeepAlive", "LiveAdapter", "LiveEvent", "SnapshotRequest", "excerpt"]

LiveEvent = Tick | BookUpdate | TopOfBook | StreamGap


def excerpt(msg: Any, limit: int = 200) -> str:
    """The start of a decoded message that was wrong, for its error (adapters decode each frame once)."""
    return repr(orjson.dumps(msg, default=str)[:limit].decode(errors="replace"))


class FrameParseError(ValueError):
    """A received frame that is not what the exchange documents; counted and skipped, never fatal."""

    def __init__(self, cause: str, detail: str, events: Sequence[LiveEvent] = ()) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause  # short, countable (e.g. "json", "schema", "unknown_channel")
        self.detail = detail
        self.events = list(events)  # what the frame still caused: the gap of a live book it made unreadable


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """The exchange's keep-alive and connection-lifetime rules."""

    ping_interval_s: float | None = 20.0  # send ping_frame (or a websocket ping when it is None) this often
    ping_frame: str | None = None  # application-level ping text (OKX "ping", Bybit {"op":"ping"}, ...)
    pong_timeout_s: float = 10.0  # no frame at all for this long after a ping: the connection is dead
    max_lifetime_s: float | None = None  # the exchange cuts connections after this (Binance 24 h): reconnect before


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """A REST book snapshot the adapter needs before it can sync `symbol` (exchange-native symbol)."""

    symbol: str
    url: str


class LiveAdapter(Protocol):
    exchange: str  # e.g. "BINANCE"
    keepalive: KeepAlive

    def ws_url(self) -> str:
        """The websocket URL to open (from the configurable base URL)."""
        ...

    def subscribe_frames(self) -> Sequence[str]:
        """Frames to send right after every (re)connect: the subscriptions for the configured symbols."""
        ...

    def on_connect(self, recv_ns: int) -> list[LiveEvent]:
        """A new connection is open: forget per-connection state. Books that were live are lost: return their gaps."""
        ...

    def on_disconnect(self, recv_ns: int) -> list[LiveEvent]:
        """The connection dropped: StreamGap (how=reconnect) for every book that was live."""
        ...

    def on_frame(self, data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        """Normalise one received frame. Raises FrameParseError for a malformed one (the runner counts it)."""
        ...

    def is_pong(self, data: str | bytes) -> bool:
        """True for the exchange's application-level pong / heartbeat frames (they keep the connection alive)."""
        ...

    def outgoing(self) -> Sequence[str]:
        """Frames to send now (e.g. Kraken: unsubscribe + subscribe the one pair whose checksum failed)."""
        ...

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        """REST snapshots wanted now (books waiting for one). Exchanges that snapshot in-stream return []."""
        ...

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        """The parsed JSON body of a snapshot fetched for `request`."""
        ...
