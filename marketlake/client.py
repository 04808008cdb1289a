"""The client library: submit a historical request, wait for HistoryReady, subscribe to live topics.

Follows seed 000's flow: the client makes its ids, subscribes to its
notification topic *before* it submits, sends SubmitHistoricalRequest on a REQ
socket (30 s timeout by default), and waits for the HistoryReadyNotification.
ZeroMQ matches subscriptions by prefix, so the client compares topics exactly
(RESPONSE:c1 must not deliver RESPONSE:c10's notifications).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from types import TracebackType

import zmq

from live_relay import codec
from live_relay.messages import (
    HistoryReadyNotification,
    IngestorControl,
    Message,
    NotifyPattern,
    SubmitHistoricalRequest,
    SubmitResponse,
)
from live_relay.topics import notification_topic
from marketlake.settings import Settings


class ClientError(RuntimeError):
    """The relay refused the request, did not answer, or the notification did not come in time."""


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class MarketlakeClient:
    """One client identity: a SUB socket for notifications and live data, a REQ socket for requests."""

    def __init__(self, settings: Settings, client_id: str | None = None, request_timeout: float = 30.0) -> None:
        self.settings = settings
        self.client_id = client_id or new_id("client")
        self.request_timeout = request_timeout
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, 0)
        self.sub.connect(settings.relay_endpoint(settings.xpub_port))
        self._subscribed: set[str] = set()
        self._pending: dict[str, HistoryReadyNotification] = {}
        self.received_topics: list[str] = []  # every notification topic seen, for audits and tests
        self._req: zmq.Socket | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        if self._req is not None:
            self._req.close(0)
        self.sub.close(0)
        self.ctx.term()

    def __enter__(self) -> MarketlakeClient:
        return self

    def __exit__(self, *_exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()

    def subscribe(self, topic: str) -> None:
        if topic not in self._subscribed:
            self.sub.setsockopt_string(zmq.SUBSCRIBE, topic)
            self._subscribed.add(topic)

    # --- historical requests -----------------------------------------------------------------------

    def submit(
        self, ticker: str, period_seconds: int, start_us: int, end_us: int,
        per_request: bool = False, request_id: str | None = None,
    ) -> SubmitResponse:
        """Subscribe to the notification topic, then submit. Raises ClientError on refusal or timeout."""
        pattern = NotifyPattern.PER_REQUEST if per_request else NotifyPattern.PER_CLIENT
        req = SubmitHistoricalRequest(
            request_id=request_id or new_id("req"), client_id=self.client_id, ticker=ticker,
            period_seconds=period_seconds, start_time=start_us, end_time=end_us, notify=pattern,
        )  # fmt: skip
        self.subscribe(notification_topic(pattern, self.client_id, req.request_id))
        response = self._request(req)
        if response.status != 1:
            raise ClientError(f"request {req.request_id} refused: {response.error_message}")
        return response

    def control(self, msg: IngestorControl) -> SubmitResponse:
        """Send an IngestorControl (e.g. CANCEL a request) for the relay to broadcast to ingestors."""
        return self._request(msg)

    def _request(self, req: SubmitHistoricalRequest | IngestorControl) -> SubmitResponse:
        if self._req is None:
            self._req = self.ctx.socket(zmq.REQ)
            self._req.setsockopt(zmq.LINGER, 0)
            self._req.connect(self.settings.relay_endpoint(self.settings.client_port))
        self._req.send_multipart(codec.encode(req))
        if not self._req.poll(int(self.request_timeout * 1000)):
            self._req.close(0)  # a REQ socket without its reply cannot send again
            self._req = None
            raise ClientError(f"no answer from the relay within {self.request_timeout}s for {req.request_id}")
        reply = codec.decode(self._req.recv_multipart())
        if not isinstance(reply, SubmitResponse):
            raise ClientError(f"relay answered {type(reply).__name__}, expected SubmitResponse")
        return reply

    def wait(self, request_id: str, timeout: float) -> HistoryReadyNotification:
        """Block until the HistoryReady of `request_id` arrives; others are kept for their own wait()."""
        deadline = time.monotonic() + timeout
        while request_id not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClientError(f"no HistoryReady for {request_id} within {timeout}s")
            self._receive_one(remaining)
        return self._pending.pop(request_id)

    def _receive_one(self, timeout: float) -> None:
        if not self.sub.poll(int(timeout * 1000) + 1):
            return
        frames = self.sub.recv_multipart()
        try:
            topic, msg = codec.decode_sub(frames)
        except codec.FrameError:
            return  # counted nowhere: a client only reads what it asked for
        if topic not in self._subscribed or not isinstance(msg, HistoryReadyNotification):
            return  # prefix match of another topic (RESPONSE:c1 vs RESPONSE:c10), or live data
        self.received_topics.append(topic)
        self._pending[msg.request_id] = msg

    def history(
        self, ticker: str, period_seconds: int, start_us: int, end_us: int,
        per_request: bool = False, timeout: float = 120.0,
    ) -> HistoryReadyNotification:
        response = self.submit(ticker, period_seconds, start_us, end_us, per_request)
        return self.wait(response.request_id, timeout)

    # --- live data ------------------------------------------------------------------------------------

    def stream(self, topics: list[str], timeout: float | None = None) -> Iterator[tuple[str, Message]]:
        """Yield (topic, message) for the given topics (exact match) until `timeout` passes without one."""
        for topic in topics:
            self.subscribe(topic)
        while True:
            if not self.sub.poll(None if timeout is None else int(timeout * 1000)):
                return
            try:
                topic, msg = codec.decode_sub(self.sub.recv_multipart())
            except codec.FrameError:
                continue
            if any(topic.startswith(t) for t in topics):
                yield topic, msg
