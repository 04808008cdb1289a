"""The relay on real ZeroMQ sockets and a real Kafka broker."""

from __future__ import annotations

import os
import time

import pytest
import zmq
from confluent_kafka import Consumer, TopicPartition

from live_relay import codec
from live_relay.messages import (
    DataRequest,
    HistoryReadyNotification,
    NotifyPattern,
    Status,
    SubmitHistoricalRequest,
    SubmitResponse,
)
from live_relay.notifier import notify
from live_relay.relay import Relay
from marketlake.client import MarketlakeClient
from marketlake.kafka_topics import consumer_config, request_topic
from marketlake.settings import Settings

DAY_US = 86_400_000_000
AUG_1 = 1_722_470_400_000_000  # 2024-08-01T00:00:00Z


def request(**overrides: object) -> SubmitHistoricalRequest:
    values: dict[str, object] = dict(
        request_id="r1", client_id="c1", ticker="BINANCE:BTC/USDT", period_seconds=60,
        start_time=AUG_1, end_time=AUG_1 + DAY_US, notify=NotifyPattern.PER_CLIENT,
    )  # fmt: skip
    values.update(overrides)
    return SubmitHistoricalRequest(**values)  # type: ignore[arg-type]


def ask(settings: Settings, req: SubmitHistoricalRequest) -> SubmitResponse:
    ctx = zmq.Context.instance()
    with ctx.socket(zmq.REQ) as sock:
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(settings.relay_endpoint(settings.client_port))
        sock.send_multipart(codec.encode(req))
        assert sock.poll(15_000), "relay did not answer within 15 s"
        reply = codec.decode(sock.recv_multipart())
    assert isinstance(reply, SubmitResponse)
    return reply


@pytest.mark.parametrize(
    ("overrides", "reason_part"),
    [
        ({"ticker": "NOPE:BTC/USDT"}, "unknown exchange 'NOPE'"),
        ({"ticker": "BINANCE-BTCUSDT"}, "malformed ticker"),
        ({"ticker": "binance:btc/usdt"}, "malformed ticker"),
        ({"start_time": AUG_1, "end_time": AUG_1}, "must be before end_time"),
        ({"start_time": AUG_1 + 5, "end_time": AUG_1}, "must be before end_time"),
        ({"period_seconds": 7}, "unsupported period_seconds 7"),
        ({"request_id": "bad|id"}, "invalid request_id"),
        ({"end_time": AUG_1 + 400 * DAY_US}, "exceeds 366"),
    ],
)
def test_invalid_request_gets_error_with_reason(settings: Settings, relay: Relay, overrides, reason_part) -> None:
    reply = ask(settings, request(**overrides))
    assert reply.status == Status.ERROR
    assert reason_part in reply.error_message
    assert reply.request_id == request(**overrides).request_id


def test_accepted_request_is_in_kafka_and_on_the_work_queue(settings: Settings, relay: Relay) -> None:
    ctx = zmq.Context.instance()
    with ctx.socket(zmq.SUB) as work:
        work.setsockopt(zmq.LINGER, 0)
        work.connect(settings.relay_endpoint(settings.work_port))
        work.setsockopt(zmq.SUBSCRIBE, b"BINANCE:")
        # the work queue is PUB/SUB: wait until our subscription has reached the relay
        # by checking with a request whose work item we can see.
        deadline = time.monotonic() + 15
        seen = None
        n = 0
        while seen is None and time.monotonic() < deadline:
            n += 1
            reply = ask(settings, request(request_id=f"r{n}", notify=NotifyPattern.PER_REQUEST))
            assert reply.status == Status.OK, reply.error_message
            assert reply.notification_topic == f"HISTORY_READY:r{n}"
            if work.poll(1000):
                topic, msg = codec.decode_sub(work.recv_multipart())
                seen = (topic, msg)
        assert seen is not None, "no DataRequest on the work queue"
        topic, msg = seen
        assert topic == "BINANCE:"
        assert isinstance(msg, DataRequest) and msg.ticker == "BINANCE:BTC/USDT"
    consumer = Consumer(consumer_config(settings, "audit"))
    parts = [TopicPartition(request_topic(settings, "BINANCE"), p, 0) for p in range(4)]
    consumer.assign(parts)
    durable: list[DataRequest] = []
    while len(durable) < n:
        batch = consumer.consume(100, timeout=10)
        assert batch, f"only {len(durable)} of {n} accepted requests are in Kafka"
        durable += [codec.decode_record(m.value()) for m in batch if not m.error()]
    consumer.close()
    assert sorted(r.request_id for r in durable) == sorted(f"r{i}" for i in range(1, n + 1))


def test_garbage_on_every_socket_is_rejected_counted_and_the_relay_keeps_serving(settings: Settings, relay: Relay) -> None:
    ctx = zmq.Context.instance()
    garbage = [[os.urandom(17)], [b""], [b"\x01"], [b"\x02", b"\x10abc"], [b"\x01", b"\xff"], [b"\x01", b"\x10\xff\xff"],
               [b"\x01", b"", b"x", b"y"]]
    # ROUTER (clients): a DEALER can send anything; the relay answers an error when it can.
    with ctx.socket(zmq.DEALER) as dealer:
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(settings.relay_endpoint(settings.client_port))
        for frames in garbage:
            dealer.send_multipart([b"", *frames])
        answers = 0
        while dealer.poll(5000) and answers < len(garbage):
            frames = dealer.recv_multipart()
            reply = codec.decode(frames[1:])
            assert isinstance(reply, SubmitResponse) and reply.status == Status.ERROR
            answers += 1
        assert answers == len(garbage)
    # XSUB (publishers) and XPUB (subscribers). A PUB only sends what someone subscribed to, so a
    # subscriber takes everything and the publisher is an XPUB that can see that subscription arrive.
    with ctx.socket(zmq.SUB) as sub, ctx.socket(zmq.XPUB) as pub, ctx.socket(zmq.XSUB) as xsub_peer:
        for sock in (sub, pub, xsub_peer):
            sock.setsockopt(zmq.LINGER, 1000)
        sub.connect(settings.relay_endpoint(settings.xpub_port))
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        pub.connect(settings.relay_endpoint(settings.xsub_port))
        assert pub.poll(10_000) and pub.recv() == b"\x01", "the subscription did not reach the publisher"
        for frames in [[b"T", b"\x07", b"\x04"], [b"T", b"\x01"], [b"T", b"\x01", b"\x55"], [b"T", b"", b"\x04"]]:
            pub.send_multipart(frames)
        pub.send_multipart(codec.encode_pub("T", HistoryReadyNotification(request_id="valid")))
        # The fan-out is libzmq's proxy: malformed publications are forwarded, counted by the relay's
        # inspector, and rejected by the subscriber's decode with the same cause.
        causes = []
        while True:
            assert sub.poll(10_000), "the valid publication after the garbage was not forwarded"
            try:
                received = codec.decode_sub(sub.recv_multipart())[1]
            except codec.FrameError as exc:
                causes.append(exc.cause)
                continue
            assert received == HistoryReadyNotification(request_id="valid")
            break
        assert len(causes) == 4
        xsub_peer.connect(settings.relay_endpoint(settings.xpub_port))
        xsub_peer.send(b"\x07not a subscription")
    # raw TCP garbage at the ZMTP level on every port, including the PUB ones
    import socket as pysocket

    for port in (settings.client_port, settings.work_port, settings.control_port, settings.xsub_port, settings.xpub_port):
        with pysocket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            # Fixed bytes, not random ones: libzmq still speaks ZMTP 1.0 to a peer whose first byte is not 0xFF,
            # so random bytes can now and then form a whole 1.0 message (and one more ROUTER drop). An HTTP
            # request is what a confused client sends, and its first byte announces a frame longer than it.
            raw.sendall(b"GET / HTTP/1.1\r\nHost: relay\r\n\r\n")
    deadline = time.monotonic() + 15
    while (relay.metrics.dropped_total() < len(garbage) or relay.metrics.malformed_total() < 5) \
            and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting on the relay threads' counters, with a deadline
    drops = {(s.labels["socket"], s.labels["cause"]): s.value
             for m in relay.metrics.dropped.collect() for s in m.samples if s.name.endswith("_total")}
    assert sum(v for (sock, _), v in drops.items() if sock == "router") == len(garbage)
    malformed = {(s.labels["socket"], s.labels["cause"]): s.value
                 for m in relay.metrics.malformed.collect() for s in m.samples if s.name.endswith("_total")}
    assert sum(v for (sock, _), v in malformed.items() if sock == "xsub") == 4
    assert malformed.get(("xpub", "not_a_subscription")) == 1
    assert malformed[("xsub", "version_mismatch")] == 1
    reply = ask(settings, request(request_id="after-garbage"))
    assert reply.status == Status.OK, reply.error_message


def test_notification_reaches_only_its_own_client(settings: Settings, relay: Relay) -> None:
    with MarketlakeClient(settings, client_id="c1") as c1, MarketlakeClient(settings, client_id="c10") as c10:
        c1.subscribe("RESPONSE:c1")
        c10.subscribe("RESPONSE:c10")
        for client, rid in ((c1, "for-c1"), (c10, "for-c10")):
            note = HistoryReadyNotification(request_id=rid, client_id=client.client_id, status=Status.OK)
            assert notify(settings, f"RESPONSE:{client.client_id}", note), "notifier saw no subscriber"
        assert c1.wait("for-c1", 10).client_id == "c1"
        assert c10.wait("for-c10", 10).client_id == "c10"
        # RESPONSE:c1 is a ZeroMQ prefix of RESPONSE:c10: the client must have dropped c10's message
        assert c1.received_topics == ["RESPONSE:c1"]
        assert c10.received_topics == ["RESPONSE:c10"]


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_relay_process_serves_metrics_and_stops_cleanly_on_signal(settings: Settings, sig: str) -> None:
    import signal
    import subprocess
    import sys

    import httpx

    from marketlake.kafka_broker import free_port, port_open
    from marketlake.supervisor import settings_env

    settings.relay_metrics_port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "marketlake.cli", "relay"], env=settings_env(settings),
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", settings.client_port):
            assert proc.poll() is None and time.monotonic() < deadline, "relay did not come up"
            time.sleep(0.1)  # polling a starting process's port, with a deadline
        reply = ask(settings, request(ticker="NOPE:BTC/USDT"))
        assert reply.status == Status.ERROR
        metrics = httpx.get(f"http://127.0.0.1:{settings.relay_metrics_port}/metrics", timeout=10).text
        assert 'marketlake_relay_requests_total{status="error"} 1.0' in metrics
        proc.send_signal(getattr(signal, sig))
        assert proc.wait(30) == 0
        assert "relay stopped" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
