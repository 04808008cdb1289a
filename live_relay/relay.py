"""The relay: the stateless, well-known bind point of seed 000.

Sockets (all bound here, everyone else connects):
  ROUTER client_port  SubmitHistoricalRequest -> SubmitResponse
  PUB    work_port    DataRequest, topic "EXCHANGE:" (the ingestor work queue)
  PUB    control_port IngestorControl (broadcast)
  XSUB   xsub_port    publishers connect (market data, notifications)
  XPUB   xpub_port    subscribers connect

A request is answered OK only after Kafka acknowledged it (acks=all) on the
exchange's request topic; that is what makes "accepted" mean "durable", and
why ingestors claim work from a Kafka consumer group (exactly one serves it,
it waits there when none runs). The relay keeps no per-request state: the
Kafka delivery callback carries the reply address.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import zmq
from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import CollectorRegistry, Counter

from live_relay import codec
from live_relay.cep import cep_topic_for, validate_trigger
from live_relay.fanout import Fanout
from live_relay.messages import (
    CEPTriggerAck,
    CEPTriggerRequest,
    DataRequest,
    IngestorControl,
    RequestKind,
    Status,
    SubmitHistoricalRequest,
    SubmitResponse,
)
from live_relay.topics import KNOWN_EXCHANGES, control_topic, notification_topic, parse_ticker, work_queue_topic
from live_relay.validation import RequestError, validate_submit
from marketlake.kafka_broker import ensure_topics
from marketlake.kafka_topics import all_topics, cep_topic, producer_config, request_topic
from marketlake.settings import Settings

log = logging.getLogger(__name__)


class RelayMetrics:
    """Prometheus counters of the relay, in their own registry so several relays can share a process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.dropped = Counter(
            "marketlake_relay_dropped", "Messages dropped by the relay, by socket and cause",
            ["socket", "cause"], registry=self.registry,
        )  # fmt: skip
        self.requests = Counter(
            "marketlake_relay_requests", "Client requests by outcome", ["status"], registry=self.registry
        )
        self.forwarded = Counter(
            "marketlake_relay_forwarded", "Publications received on XSUB (libzmq proxy statistics)", registry=self.registry
        )
        self.malformed = Counter(
            "marketlake_relay_malformed_publications",
            "Malformed messages seen on XSUB/XPUB by the inspector (forwarded; subscribers' decode rejects them)",
            ["socket", "cause"], registry=self.registry,
        )  # fmt: skip
        self._logged: set[tuple[str, str]] = set()

    def drop(self, socket: str, cause: str, detail: str) -> None:
        self.dropped.labels(socket, cause).inc()
        if (socket, cause) not in self._logged:  # log once per cause, count always
            self._logged.add((socket, cause))
            log.warning("dropping %s message (%s): %s", socket, cause, detail)

    def saw_malformed(self, socket: str, cause: str, frames: int) -> None:
        self.malformed.labels(socket, cause).inc()
        if (socket, cause) not in self._logged:
            self._logged.add((socket, cause))
            log.warning("malformed %s message (%s): %d frames", socket, cause, frames)

    def malformed_total(self) -> float:
        return sum(s.value for m in self.malformed.collect() for s in m.samples if s.name.endswith("_total"))

    def dropped_total(self) -> float:
        return sum(s.value for m in self.dropped.collect() for s in m.samples if s.name.endswith("_total"))


class Relay:
    def __init__(self, settings: Settings, metrics: RelayMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or RelayMetrics()
        self.ctx = zmq.Context()
        self._stop = threading.Event()
        self.ready = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _bind(self, kind: int, port: int) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.settings.bind_endpoint(port))
        return sock

    def run(self) -> None:
        s = self.settings
        ensure_topics(s.kafka_bootstrap, all_topics(s))
        producer = Producer(producer_config(s, **{"message.timeout.ms": int(s.kafka_ack_timeout_seconds * 1000)}))
        router = self._bind(zmq.ROUTER, s.client_port)
        router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        work = self._bind(zmq.PUB, s.work_port)
        self.control = self._bind(zmq.PUB, s.control_port)
        fanout = Fanout(self.ctx, s.bind_endpoint(s.xsub_port), s.bind_endpoint(s.xpub_port),
                        on_malformed=self.metrics.saw_malformed if s.relay_inspect_publications else None)  # fmt: skip
        fanout.start()
        published = 0
        next_stats = time.monotonic()
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        log.info("relay up: ROUTER %d, work PUB %d, control PUB %d, XSUB %d, XPUB %d",
                 s.client_port, s.work_port, s.control_port, s.xsub_port, s.xpub_port)
        self.ready.set()
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(50))
                if time.monotonic() >= next_stats:  # the proxy counts in C; fold its counter into Prometheus
                    next_stats = time.monotonic() + 1.0
                    stats = fanout.stats()
                    if stats is not None and stats.published > published:
                        self.metrics.forwarded.inc(stats.published - published)
                        published = stats.published
                if router in events:
                    self._handle_requests(router, work, producer)
                producer.poll(0)  # serves delivery callbacks, which send the replies
        finally:
            remaining = producer.flush(s.kafka_ack_timeout_seconds)
            if remaining:
                log.error("%d accepted requests were not acknowledged by Kafka at shutdown", remaining)
            producer.poll(0)
            fanout.stop()
            for sock in (router, work, self.control):
                sock.close(0)
            self.ctx.term()
            log.info("relay stopped")

    # --- client requests ---------------------------------------------------------------------

    def _handle_requests(self, router: zmq.Socket, work: zmq.Socket, producer: Producer) -> None:
        while True:
            try:
                frames = router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity, envelope = codec.split_router(frames)
            try:
                msg = codec.decode(envelope)
            except codec.FrameError as exc:
                self.metrics.drop("router", exc.cause, exc.detail)
                self._reply(router, identity, SubmitResponse(status=Status.ERROR, error_message=f"bad frame: {exc}"))
                continue
            if isinstance(msg, IngestorControl):
                self._broadcast_control(router, identity, msg)
                continue
            if isinstance(msg, CEPTriggerRequest):
                self._register_trigger(router, producer, identity, msg)
                continue
            if not isinstance(msg, SubmitHistoricalRequest):
                self.metrics.drop("router", "unexpected_type", type(msg).__name__)
                reason = (f"the request port takes SubmitHistoricalRequest, CEPTriggerRequest or IngestorControl, "
                          f"not {type(msg).__name__}")  # fmt: skip
                self._reply(router, identity, SubmitResponse(status=Status.ERROR, error_message=reason))
                continue
            self._submit(router, work, producer, identity, msg)

    def _broadcast_control(self, router: zmq.Socket, identity: list[bytes], msg: IngestorControl) -> None:
        """IngestorControl from an operator goes to every ingestor of its exchange (or all) on the control PUB."""
        if msg.exchange and msg.exchange not in KNOWN_EXCHANGES:
            self._reply(router, identity, SubmitResponse(msg.request_id, Status.ERROR, f"unknown exchange {msg.exchange!r}"))
            return
        self.control.send_multipart([control_topic(msg.exchange).encode(), *codec.encode(msg)])
        self._reply(router, identity, SubmitResponse(msg.request_id, Status.OK))

    def _register_trigger(self, router: zmq.Socket, producer: Producer, identity: list[bytes],
                          req: CEPTriggerRequest) -> None:  # fmt: skip
        """Validate, make durable in Kafka, then acknowledge (CEPTriggerAck) with the client's event topic."""
        try:
            validate_trigger(req)
        except RequestError as exc:
            self.metrics.requests.labels("error").inc()
            self._reply(router, identity, CEPTriggerAck(req.trigger_id, Status.ERROR, str(exc)))
            return

        def deliver(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                reason = f"trigger not registered: Kafka did not acknowledge it ({err.str()})"
                self._reply(router, identity, CEPTriggerAck(req.trigger_id, Status.ERROR, reason))
                return
            self.metrics.requests.labels("ok").inc()
            self._reply(router, identity, CEPTriggerAck(req.trigger_id, Status.OK, "", cep_topic_for(req.client_id)))

        producer.produce(cep_topic(self.settings), key=req.trigger_id.encode(), value=codec.encode_record(req),
                         on_delivery=deliver)  # fmt: skip

    def _submit(
        self, router: zmq.Socket, work: zmq.Socket, producer: Producer, identity: list[bytes],
        req: SubmitHistoricalRequest,
    ) -> None:
        try:
            validate_submit(req, self.settings.max_request_days)
        except RequestError as exc:
            self.metrics.requests.labels("error").inc()
            self._reply(router, identity, SubmitResponse(req.request_id, Status.ERROR, str(exc)))
            return
        topic = notification_topic(req.notify, req.client_id, req.request_id)
        exchange = parse_ticker(req.ticker).exchange
        data_request = DataRequest(
            request_id=req.request_id, client_id=req.client_id, kind=RequestKind.HISTORICAL, ticker=req.ticker,
            period_seconds=req.period_seconds, start_time=req.start_time, end_time=req.end_time,
            notification_topic=topic, submitted_at=time.time_ns() // 1000,
        )  # fmt: skip
        on_delivery = self._on_durable(router, work, identity, data_request, exchange)
        producer.produce(
            request_topic(self.settings, exchange), key=req.request_id.encode(),
            value=codec.encode_record(data_request), on_delivery=on_delivery,
        )  # fmt: skip

    def _on_durable(
        self, router: zmq.Socket, work: zmq.Socket, identity: list[bytes], req: DataRequest, exchange: str
    ) -> Callable[[KafkaError | None, Message], None]:
        def deliver(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self.metrics.requests.labels("not_durable").inc()
                reason = f"request not accepted: Kafka did not acknowledge it ({err.str()})"
                self._reply(router, identity, SubmitResponse(req.request_id, Status.ERROR, reason))
                return
            self.metrics.requests.labels("ok").inc()
            self._reply(router, identity, SubmitResponse(req.request_id, Status.OK, "", req.notification_topic))
            work.send_multipart([work_queue_topic(exchange).encode(), *codec.encode(req)])

        return deliver

    def _reply(self, router: zmq.Socket, identity: list[bytes], response: SubmitResponse | CEPTriggerAck) -> None:
        if not identity:
            return
        router.send_multipart([*identity, *codec.encode(response)])
