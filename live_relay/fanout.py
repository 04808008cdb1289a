"""The relay's market-data path: XSUB (publishers) -> XPUB (subscribers), forwarded by libzmq itself.

Fan-out is the relay's hot path, so it runs in libzmq's own proxy
(`zmq.proxy_steerable`, in C, in its own thread, GIL released) rather than a
Python receive/send loop: a Python loop costs ~10 µs a message and halves the
throughput of a bare `zmq.proxy` (bench/relay.py measures both). Subscriptions
flow the other way through the same proxy, so publishers still see them.

What a Python loop gave and the proxy does not: a look at every publication.
With `inspect` on, libzmq copies every message to a capture socket and a
validator thread counts malformed publications by cause (the same envelope
check as the codec's). The capture socket has a bounded queue and drops when
the validator falls behind, so inspection can never slow the data path; under
a flood it samples. Malformed publications are forwarded either way: every
subscriber's codec.decode rejects them with the same cause (FrameError), so
nothing downstream mistakes them for data.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable

import zmq

from live_relay import codec

log = logging.getLogger(__name__)

__all__ = ["Fanout", "FanoutStats", "publication_problem"]

_KNOWN_TYPES = frozenset(int(t) for t in codec.m.MessageType)
CAPTURE_HWM = 10_000  # messages queued for the validator before the capture drops (never blocks the proxy)


def publication_problem(frames: list[bytes]) -> str:
    """Cheap envelope check of a publication [topic, version, type + payload]: the cause, or "" when well-formed."""
    if len(frames) != 3:
        return "frame_count"
    if len(frames[1]) != 1:
        return "truncated" if not frames[1] else "malformed"
    if frames[1][0] != codec.PROTOCOL_VERSION:
        return "version_mismatch"
    if not frames[2]:
        return "truncated"
    if frames[2][0] not in _KNOWN_TYPES:
        return "unknown_type"
    return ""


class FanoutStats:
    """libzmq's own proxy counters (ZMQ_PROXY STATISTICS): messages and bytes in each direction."""

    __slots__ = ("published", "published_bytes", "delivered", "delivered_bytes")

    def __init__(self, values: tuple[int, ...]) -> None:
        # frontend (XSUB): msg_in, bytes_in, msg_out, bytes_out; backend (XPUB): the same four
        self.published, self.published_bytes = values[0], values[1]
        self.delivered, self.delivered_bytes = values[6], values[7]


class Fanout:
    """Runs the proxy thread on bound XSUB/XPUB endpoints; `stop()` terminates it through its control socket."""

    def __init__(self, ctx: zmq.Context, xsub_endpoint: str, xpub_endpoint: str, *,
                 on_malformed: Callable[[str, str, int], None] | None = None, xpub_sndhwm: int = 100_000) -> None:  # fmt: skip
        self.ctx = ctx
        self.endpoints = (xsub_endpoint, xpub_endpoint)
        self.on_malformed = on_malformed  # (socket, cause, frame count); None = no inspection
        self.xpub_sndhwm = xpub_sndhwm
        self._control = f"inproc://fanout-control-{id(self)}"
        self._capture = f"inproc://fanout-capture-{id(self)}"
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="relay-fanout", daemon=True)
        self._validator: threading.Thread | None = None
        self._requester: zmq.Socket | None = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        self._requester = self.ctx.socket(zmq.REQ)
        self._requester.setsockopt(zmq.LINGER, 0)
        self._requester.connect(self._control)

    def _run(self) -> None:
        socks: list[zmq.Socket] = []
        try:
            xsub = self.ctx.socket(zmq.XSUB)
            xpub = self.ctx.socket(zmq.XPUB)
            control = self.ctx.socket(zmq.REP)
            socks += [xsub, xpub, control]
            xpub.setsockopt(zmq.SNDHWM, self.xpub_sndhwm)
            for sock in socks:
                sock.setsockopt(zmq.LINGER, 0)
            xsub.bind(self.endpoints[0])
            xpub.bind(self.endpoints[1])
            control.bind(self._control)
            capture = None
            if self.on_malformed is not None:
                capture = self.ctx.socket(zmq.PUB)
                capture.setsockopt(zmq.SNDHWM, CAPTURE_HWM)
                capture.setsockopt(zmq.LINGER, 0)
                capture.bind(self._capture)
                socks.append(capture)
                sub = self.ctx.socket(zmq.SUB)  # connected before the proxy starts, so no capture is lost to a late join
                sub.setsockopt(zmq.RCVHWM, CAPTURE_HWM)
                sub.setsockopt(zmq.LINGER, 0)
                sub.subscribe(b"")
                sub.connect(self._capture)
                self._validator = threading.Thread(target=self._validate, args=(sub,), name="relay-inspect", daemon=True)
                self._validator.start()
        except BaseException as exc:  # a port in use: reported by start()
            self._error = exc
            for sock in socks:
                sock.close(0)
            self._ready.set()
            return
        self._ready.set()
        try:
            zmq.proxy_steerable(xsub, xpub, capture, control)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in socks:
                sock.close(0)

    def _validate(self, sub: zmq.Socket) -> None:
        """Count malformed publications seen on the capture socket (and non-subscriptions sent to XPUB)."""
        assert self.on_malformed is not None
        try:
            while not self._stopping.is_set():
                if not sub.poll(200):  # wake up now and then to see stop()
                    continue
                frames = sub.recv_multipart()
                if len(frames) == 1:  # from XPUB: a (un)subscription, or something a subscriber should not send
                    if frames[0][:1] not in (b"\x00", b"\x01"):
                        self.on_malformed("xpub", "not_a_subscription", 1)
                    continue
                cause = publication_problem(frames)
                if cause:
                    self.on_malformed("xsub", cause, len(frames))
        except zmq.ContextTerminated:
            pass
        finally:
            sub.close(0)

    def stats(self, timeout_ms: int = 1000) -> FanoutStats | None:
        """The proxy's counters, or None when it does not answer in time."""
        assert self._requester is not None, "start() first"
        self._requester.send(b"STATISTICS")
        if not self._requester.poll(timeout_ms):
            return None
        frames = self._requester.recv_multipart()
        return FanoutStats(tuple(struct.unpack("=Q", f)[0] for f in frames))

    def stop(self) -> None:
        if self._requester is not None:
            self._requester.send(b"TERMINATE")
            if self._requester.poll(5000):
                self._requester.recv()
            self._requester.close(0)
        self._thread.join(10)
        self._stopping.set()
        if self._validator is not None:
            self._validator.join(10)
