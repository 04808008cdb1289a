"""Durability of the live stream: every normalised event written to Kafka (acks=all, idempotent), keyed by ticker.

The sink is a REQUIRED subscriber of the live process's event bus: `await write(batch)`
returns only once the broker has acknowledged every record of the batch, so a
slow or restarting broker slows the feeds instead of losing events. A record the
producer could not deliver within its timeout is produced again (idempotence
keeps the retry from duplicating what did arrive); after `max_attempts` the
error is raised, which stops the live process loudly rather than dropping data.

Topics (marketlake/kafka_topics.live_topic): trades (Tick), books (BookUpdate),
tops (TopOfBook), ohlc (tick-built closed candles), gaps (StreamGap). Values are
codec.encode_record bytes, like every other record of the project.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from live_relay import codec
from live_relay.messages import OHLC, BookUpdate, StreamGap, Tick, TopOfBook
from marketlake.kafka_topics import live_topic, producer_config
from marketlake.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["KafkaSink", "LiveDeliveryError", "SinkStats"]

KIND_OF: dict[type, str] = {Tick: "trades", BookUpdate: "books", TopOfBook: "tops", OHLC: "ohlc", StreamGap: "gaps"}


class LiveDeliveryError(RuntimeError):
    """Kafka did not acknowledge some live events after every retry."""


@dataclass
class SinkStats:
    written: int = 0
    acked: int = 0
    retried: int = 0
    failed: int = 0


class KafkaSink:
    """Writes batches of live events; one producer for the life of the live process."""

    def __init__(self, settings: Settings, *, max_attempts: int = 5, timeout_s: float = 30.0) -> None:
        self.topics = {cls: live_topic(settings, kind) for cls, kind in KIND_OF.items()}
        self.producer = Producer(producer_config(settings, **{"message.timeout.ms": int(timeout_s * 1000)}))
        self.max_attempts, self.timeout_s = max_attempts, timeout_s
        self.stats = SinkStats()

    async def write(self, events: Sequence[object]) -> None:
        """Produce every event of `events` that has a topic; return when all are acknowledged."""
        records = [(self.topics[type(e)], e) for e in events if type(e) in self.topics]
        if records:
            await asyncio.to_thread(self._write_acked, records)

    def _write_acked(self, records: list[tuple[str, object]]) -> None:
        pending = records
        for attempt in range(1, self.max_attempts + 1):
            failed: list[tuple[str, object]] = []
            for topic, event in pending:
                self._produce(topic, event, failed)
            self.stats.written += len(pending)
            # Every record gets its delivery report within message.timeout.ms (= timeout_s): wait for all of them,
            # so none is counted as acknowledged while its report is still pending.
            while self.producer.flush(self.timeout_s):
                pass
            if not failed:
                self.stats.acked += len(pending)
                return
            self.stats.acked += len(pending) - len(failed)
            self.stats.retried += len(failed)
            log.warning("kafka did not acknowledge %d live events (attempt %d/%d); producing them again",
                        len(failed), attempt, self.max_attempts)  # fmt: skip
            pending = failed
        self.stats.failed += len(pending)
        raise LiveDeliveryError(f"{len(pending)} live events not acknowledged by Kafka after {self.max_attempts} attempts")

    def _produce(self, topic: str, event: object, failed: list[tuple[str, object]]) -> None:
        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failed.append((topic, event))

        while True:
            try:
                self.producer.produce(topic, key=event.ticker.encode(), value=codec.encode_record(event),  # type: ignore[attr-defined,arg-type]
                                      on_delivery=delivered)  # fmt: skip
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self.producer.poll(0.1)

    def close(self) -> None:
        self.producer.flush(self.timeout_s)
