"""Durability of the live stream: every normalised event written to Kafka (acks=all, idempotent), keyed by ticker.

The sink is a REQUIRED subscriber of the live process's event bus: `await write(batch)`
returns only once the broker has acknowledged every record of the batch, so a
slow or restarting broker slows the feeds instead of losing events. Every record
gets a delivery report (librdkafka reports each one by `message.timeout.ms` at
the latest, and the write waits for all of them); a record reported failed is
produced again (idempotence keeps the producer's own retries from duplicating;
a record produced again after a timeout may land twice, which the Iceberg
writer removes by key). After `max_attempts` the error is raised, which stops
the live process loudly rather than dropping data.

Topics (marketlake/kafka_topics.live_topic): trades (Tick), books (BookUpdate),
tops (TopOfBook), ohlc (tick-built closed candles), gaps (StreamGap), and
book_snapshots: the sink samples every ticker's book on a grid of exchange time
(marketlake/book_sampler.py, `live_book_snapshot_seconds`) and writes those
snapshots too, so Dagster can store books without replaying every delta.
Values are codec.encode_record bytes, like every other record of the project.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from live_relay import codec
from live_relay.messages import OHLC, BookUpdate, StreamGap, Tick, TopOfBook
from marketlake.book_sampler import BookSampler
from marketlake.kafka_topics import live_topic, producer_config
from marketlake.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["KafkaSink", "LiveDeliveryError", "SinkStats"]

KIND_OF: dict[type, str] = {Tick: "trades", BookUpdate: "books", TopOfBook: "tops", OHLC: "ohlc", StreamGap: "gaps"}
SNAPSHOT_KIND = "book_snapshots"


class LiveDeliveryError(RuntimeError):
    """Kafka did not acknowledge some live events after every retry."""


@dataclass
class SinkStats:
    """Records handed to the producer (retries counted again), acknowledged, produced again, given up on."""

    written: int = 0
    acked: int = 0
    retried: int = 0
    failed: int = 0
    snapshots: int = 0  # sampled book snapshots among the written records
    last_error: str = ""


Record = tuple[str, bytes, bytes]  # topic, key, value


class KafkaSink:
    """Writes batches of live events; one producer for the life of the live process."""

    def __init__(self, settings: Settings, *, max_attempts: int = 5, timeout_s: float = 30.0) -> None:
        self.topics = {cls: live_topic(settings, kind) for cls, kind in KIND_OF.items()}
        self.snapshot_topic = live_topic(settings, SNAPSHOT_KIND)
        self.producer = Producer(producer_config(settings, **{"message.timeout.ms": int(timeout_s * 1000)}))
        self.max_attempts, self.timeout_s = max_attempts, timeout_s
        every_ns = int(settings.live_book_snapshot_seconds * 1e9)
        self.sampler = BookSampler(every_ns, settings.live_book_snapshot_levels) if every_ns > 0 else None
        self.stats = SinkStats()
        self._lock = threading.Lock()  # the live process writes from two readers (events, closed candles)

    async def write(self, events: Sequence[object]) -> None:
        """Produce every event of `events` that has a topic; return when all are acknowledged.

        Raises LiveDeliveryError when some were still refused after `max_attempts` attempts.
        """
        if any(type(e) in self.topics for e in events):
            await asyncio.to_thread(self._write_acked, events)

    def _records(self, events: Sequence[object]) -> list[Record]:
        records: list[Record] = []
        for event in events:
            topic = self.topics.get(type(event))
            if topic is None:
                continue
            if self.sampler is not None:
                due = self.sampler.on_event(event)
                if due is not None:  # the book as it was before this event: written before it
                    records.append((self.snapshot_topic, due.ticker.encode(), codec.encode_record(due)))
                    self.stats.snapshots += 1
            ticker: str = event.ticker  # type: ignore[attr-defined]  # every live event type has one
            records.append((topic, ticker.encode(), codec.encode_record(event)))  # type: ignore[arg-type]
        return records

    def _write_acked(self, events: Sequence[object]) -> None:
        with self._lock:
            pending = self._records(events)
            for attempt in range(1, self.max_attempts + 1):
                failed = self._deliver(pending)
                self.stats.acked += len(pending) - len(failed)
                pending = failed
                if not pending or attempt == self.max_attempts:
                    break
                self.stats.retried += len(pending)
                log.warning("kafka did not acknowledge %d live events (attempt %d/%d: %s); producing them again",
                            len(pending), attempt, self.max_attempts, self.stats.last_error)  # fmt: skip
            if not pending:
                return
            self.stats.failed += len(pending)
            raise LiveDeliveryError(f"{len(pending)} live events not acknowledged by Kafka after {self.max_attempts} "
                                    f"attempts: {self.stats.last_error}")  # fmt: skip

    def _deliver(self, records: list[Record]) -> list[Record]:
        """Produce `records`, wait for every delivery report; return those reported failed."""
        failed: list[Record] = []
        reported = 0

        def report(record: Record) -> Callable[[KafkaError | None, Message], None]:
            def delivered(err: KafkaError | None, _msg: Message) -> None:
                nonlocal reported
                reported += 1
                if err is not None:
                    failed.append(record)
                    self.stats.last_error = err.str()

            return delivered

        for record in records:
            topic, key, value = record
            while True:
                try:
                    self.producer.produce(topic, key=key, value=value, on_delivery=report(record))
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    self.producer.poll(0.1)
            self.stats.written += 1
        while reported < len(records):  # every record is reported by message.timeout.ms at the latest
            self.producer.flush(self.timeout_s)
        return failed

    def close(self) -> None:
        with self._lock:
            self.producer.flush(self.timeout_s)
