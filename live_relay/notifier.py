"""Publishing through the relay from short-lived processes without losing messages.

A PUB socket that connects and sends at once loses what it sends before the
subscriptions reach it (ZeroMQ's slow joiner). So the notifier connects an
XPUB socket to the relay's XSUB port: the relay's XSUB replays every current
subscription to a newly attached publisher, and the XPUB sees them. It sends
as soon as it sees a subscription that matches the topic (or after
`notify_subscriber_wait_seconds`, when nobody listens), then closes with a
linger long enough for the message to leave.
"""

from __future__ import annotations

import logging
import time

from live_relay import codec
from live_relay.messages import Message
from marketlake.settings import Settings

log = logging.getLogger(__name__)

LINGER_MS = 5000


class NotifyError(RuntimeError):
    """The notification could not be handed to the relay."""


def notify(settings: Settings, topic: str, msg: Message, wait_for_subscriber: bool = True) -> bool:
    """Publish one message on `topic` through the relay. Returns whether a subscriber was seen."""
    return publish_many(settings, [(topic, msg)], wait_for_subscriber)[topic]


def publish_many(
    settings: Settings, items: list[tuple[str, Message]], wait_for_subscriber: bool = True
) -> dict[str, bool]:
    """Publish several messages over one connection; each waits for its own topic's subscriber."""
    import zmq  # imported here: the Dagster code location must not import pyzmq at import time

    # A context of its own: term() below blocks until the queued frames have left (up to LINGER_MS),
    # which a process about to exit needs; a shared context would not be terminated in time.
    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    sock.setsockopt(zmq.SNDHWM, 0)
    seen: list[bytes] = []
    result: dict[str, bool] = {}
    try:
        sock.connect(settings.relay_endpoint(settings.xsub_port))
        for topic, msg in items:
            frames = codec.encode_pub(topic, msg)
            subscribed = _await_subscription(sock, frames[0], seen, settings.notify_subscriber_wait_seconds)
            if wait_for_subscriber and not subscribed:
                log.warning("no subscriber for %s after %.1fs; publishing anyway", topic,
                            settings.notify_subscriber_wait_seconds)
            sock.send_multipart(frames)
            result[topic] = subscribed
    except zmq.ZMQError as exc:
        raise NotifyError(f"could not publish to relay at {settings.relay_endpoint(settings.xsub_port)}: {exc}") from exc
    finally:
        sock.close()
        ctx.term()
    return result


def _await_subscription(sock: object, topic: bytes, seen: list[bytes], wait_seconds: float) -> bool:
    """Read subscription messages until one is a prefix of `topic` (ZeroMQ's matching rule)."""
    import zmq

    assert isinstance(sock, zmq.Socket)
    if any(topic.startswith(prefix) for prefix in seen):
        return True
    deadline = time.monotonic() + wait_seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if not sock.poll(int(remaining * 1000) + 1, zmq.POLLIN):
            break
        event = sock.recv()
        if event[:1] == b"\x01":
            seen.append(event[1:])
            if topic.startswith(event[1:]):
                return True
        elif event[:1] == b"\x00" and event[1:] in seen:
            seen.remove(event[1:])
    return False
