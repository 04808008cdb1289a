"""KafkaResource: where the history batches are, and how Dagster code reads them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from dagster import ConfigurableResource
from pydantic import Field

from marketlake.kafka_topics import consumer_config, history_topic
from marketlake.settings import Settings
from marketlake.storage.batches import BatchRange, HistoryBatch, load_batch


class TopicNotFoundError(LookupError):
    """The topic does not exist (yet) on the cluster."""


class KafkaResource(ConfigurableResource):
    """The project's Kafka cluster. Dagster reads with `assign` only: no consumer group joins, no commits."""

    bootstrap: str = Field(description="Kafka bootstrap servers, e.g. 127.0.0.1:9092.")
    topic_prefix: str = Field(description="Prefix of every project topic (MARKETLAKE_KAFKA_TOPIC_PREFIX).")
    read_timeout_seconds: float = Field(default=30.0, description="Longest wait for one batch's offset range.")

    def _settings(self) -> Settings:
        # Every other field has a default (mypy without the pydantic plugin cannot see that).
        return Settings(kafka_bootstrap=self.bootstrap, kafka_topic_prefix=self.topic_prefix)  # type: ignore[call-arg]

    def history_topic(self) -> str:
        """The topic the ingestors write OHLCBatch records to."""
        return history_topic(self._settings())

    def consumer_config(self, purpose: str) -> dict[str, Any]:
        """Consumer settings; the group id is only a label, since Dagster never subscribes or commits."""
        return consumer_config(self._settings(), f"{self.topic_prefix}dagster.{purpose}")

    @contextmanager
    def consumer(self, purpose: str) -> Iterator[Consumer]:
        """A consumer that is closed on exit."""
        consumer = Consumer(self.consumer_config(purpose))
        try:
            yield consumer
        finally:
            consumer.close()

    def partitions(self, consumer: Consumer, topic: str) -> list[int]:
        """The partition ids of `topic` (TopicNotFoundError when it does not exist)."""
        metadata = consumer.list_topics(topic, timeout=10.0).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise TopicNotFoundError(f"Kafka topic {topic!r} does not exist on {self.bootstrap}")
        return sorted(metadata.partitions)

    def watermarks(self, consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
        """(low, high): the first offset kept and the offset the next record will get."""
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10.0)
        return int(low), int(high)

    def read_batch(self, location: BatchRange) -> HistoryBatch:
        """Read and check one batch's offset range (raises a BatchError subclass with the reason)."""
        return load_batch(self.consumer_config("history-run"), location, self.read_timeout_seconds)
