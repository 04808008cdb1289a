"""The historical ingestor process: claims requests from Kafka, fetches, writes OHLCBatch records.

Requests wait durably in the exchange's request topic. Every ingestor of an
exchange joins one consumer group, so exactly one of them serves a request,
one started later serves what waited, and a crashed one's uncommitted request
goes to another. The request offset is committed only after the whole batch
(METADATA, ROWS..., END) is acknowledged by Kafka; a crash in between means a
second attempt writes a second batch, and Dagster ignores the incomplete one.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from confluent_kafka import Consumer, KafkaError, Producer

from live_relay import codec
from live_relay.messages import OHLC, BatchKind, ControlAction, DataRequest, IngestorControl, OHLCBatch, Status, Tick
from marketlake.kafka_topics import consumer_config, history_topic, ingestor_group, producer_config, request_topic
from marketlake.settings import Settings

from .registry import HistoryFetcher, fetcher_for

log = logging.getLogger(__name__)

ROWS_PER_RECORD = 1000  # one exchange page per record keeps records well under Kafka's 1 MB default


class BatchWriter:
    """Writes one batch to the history topic, keyed by batch_id so its records stay in order."""

    def __init__(self, producer: Producer, topic: str, req: DataRequest, ingestor_id: str, source: str) -> None:
        self.producer, self.topic = producer, topic
        self.head = OHLCBatch(
            batch_id=uuid.uuid4().hex, request_id=req.request_id, client_id=req.client_id, ticker=req.ticker,
            period_seconds=req.period_seconds, start_time=req.start_time, end_time=req.end_time,
            notification_topic=req.notification_topic, source=source, ingestor_id=ingestor_id,
        )  # fmt: skip
        self.sequence = 0
        self.rows = 0
        self.errors: list[str] = []

    def _send(self, record: OHLCBatch) -> None:
        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                self.errors.append(err.str())

        self.producer.produce(self.topic, key=self.head.batch_id.encode(), value=codec.encode_record(record),
                              on_delivery=on_delivery)
        self.producer.poll(0)
        self.sequence += 1

    def _with(self, **fields: object) -> OHLCBatch:
        return msgspec.structs.replace(self.head, sequence=self.sequence, fetched_at=time.time_ns() // 1000, **fields)

    def metadata(self) -> None:
        self._send(self._with(kind=BatchKind.METADATA))

    def page(self, items: Sequence[OHLC | Tick]) -> None:
        for i in range(0, len(items), ROWS_PER_RECORD):
            chunk = items[i : i + ROWS_PER_RECORD]
            rows = tuple(x for x in chunk if isinstance(x, OHLC))
            ticks = tuple(x for x in chunk if isinstance(x, Tick))
            self._send(self._with(kind=BatchKind.ROWS, rows=rows, ticks=ticks))
            self.rows += len(chunk)

    def end(self, status: Status, reason: str = "") -> None:
        self._send(self._with(kind=BatchKind.END, status=status, error_message=reason, row_count=self.rows))

    def flush(self, timeout: float) -> None:
        left = self.producer.flush(timeout)
        if left or self.errors:
            raise RuntimeError(f"batch {self.head.batch_id} not acknowledged by Kafka: {left} left, {self.errors[:3]}")


class RequestCancelledError(RuntimeError):
    """An IngestorControl CANCEL named the request being served."""


class Ingestor:
    def __init__(self, settings: Settings, exchange: str, fetcher: HistoryFetcher | None = None) -> None:
        self.settings = settings
        self.exchange = exchange
        self.fetcher = fetcher or fetcher_for(exchange, settings)
        self.ingestor_id = f"{exchange.lower()}-{socket.gethostname()}-{os.getpid()}"
        self._stop = threading.Event()
        self.served = 0
        self.cancelled: set[str] = set()
        self._control: Any = None  # zmq SUB on the relay's control channel, while run() runs

    def stop(self) -> None:
        self._stop.set()

    def _open_control(self) -> None:
        import zmq  # imported here: Dagster code reuses BatchWriter and must not import pyzmq

        from live_relay.topics import ALL_EXCHANGES_CONTROL_TOPIC, control_topic

        self._zmq_ctx = zmq.Context()
        self._control = self._zmq_ctx.socket(zmq.SUB)
        self._control.setsockopt(zmq.LINGER, 0)
        self._control.connect(self.settings.relay_endpoint(self.settings.control_port))
        for topic in (control_topic(self.exchange), ALL_EXCHANGES_CONTROL_TOPIC):
            self._control.setsockopt(zmq.SUBSCRIBE, topic.encode())

    def _close_control(self) -> None:
        if self._control is not None:
            self._control.close(0)
            self._zmq_ctx.term()
            self._control = None

    def poll_control(self) -> None:
        """Apply every IngestorControl waiting on the control channel (non-blocking)."""
        if self._control is None:
            return
        while self._control.poll(0):
            try:
                _topic, msg = codec.decode_sub(self._control.recv_multipart())
            except codec.FrameError as exc:
                log.warning("dropping control message: %s", exc)
                continue
            if not isinstance(msg, IngestorControl):
                continue
            if msg.action == ControlAction.CANCEL and msg.request_id:
                log.info("request %s cancelled by control", msg.request_id)
                self.cancelled.add(msg.request_id)
            elif msg.action == ControlAction.SHUTDOWN:
                log.info("shutdown requested by control")
                self.stop()

    def run(self) -> None:
        self._open_control()
        try:
            self._consume()
        finally:
            self._close_control()

    def _consume(self) -> None:
        s = self.settings
        consumer = Consumer(consumer_config(s, ingestor_group(s, self.exchange), **{"client.id": self.ingestor_id}))
        producer = Producer(producer_config(s))
        consumer.subscribe([request_topic(s, self.exchange)])
        log.info("ingestor %s waiting for %s requests", self.ingestor_id, self.exchange)
        try:
            while not self._stop.is_set():
                self.poll_control()
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    log.warning("Kafka: %s", msg.error())
                    continue
                try:
                    req = codec.decode_record(msg.value())
                except codec.FrameError as exc:
                    log.error("skipping undecodable request at %s/%d/%d: %s", msg.topic(), msg.partition(), msg.offset(), exc)
                    consumer.commit(message=msg, asynchronous=False)
                    continue
                if isinstance(req, DataRequest):
                    self.serve(producer, req)
                consumer.commit(message=msg, asynchronous=False)  # only after the batch is durable
        finally:
            consumer.close()
            producer.flush(10)

    def serve(self, producer: Producer, req: DataRequest) -> None:
        """Fetch one request into one batch. Exchange failures become an ERROR end marker with the reason."""
        started = time.monotonic()
        writer = BatchWriter(producer, history_topic(self.settings), req, self.ingestor_id, "rest")
        writer.metadata()
        try:
            for page in self.fetcher.pages(req.ticker, req.period_seconds, req.start_time, req.end_time):
                self.poll_control()
                if req.request_id in self.cancelled:
                    raise RequestCancelledError(f"cancelled by IngestorControl after {writer.rows} rows")
                writer.page(page)
        except Exception as exc:  # any failure of the exchange side is the client's answer, not our crash
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("request %s failed after %d rows: %s", req.request_id, writer.rows, reason)
            writer.end(Status.ERROR, reason)
        else:
            writer.end(Status.OK)
        writer.flush(30)
        self.served += 1
        log.info("request %s: %d rows in %.2fs (batch %s)", req.request_id, writer.rows,
                 time.monotonic() - started, writer.head.batch_id)
