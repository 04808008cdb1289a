"""Kafka topic names and client configurations, shared by the relay, ingestors and Dagster."""

from __future__ import annotations

from typing import Any

from live_relay.topics import KNOWN_EXCHANGES
from marketlake.settings import Settings

REQUEST_PARTITIONS = 4


def request_topic(settings: Settings, exchange: str) -> str:
    """Durable history requests of one exchange; its ingestors form one consumer group on it."""
    return settings.topic(f"requests.{exchange}")


def history_topic(settings: Settings) -> str:
    """OHLCBatch records (metadata, rows, end marker) written by ingestors, read by Dagster."""
    return settings.topic("history")


LIVE_KINDS = ("trades", "books", "tops", "ohlc", "gaps", "book_snapshots")


def live_topic(settings: Settings, kind: str) -> str:
    """Normalised live events of one kind, keyed by ticker: trades (Tick), books (BookUpdate), tops (TopOfBook),
    ohlc (tick-built closed candles), gaps (StreamGap), book_snapshots (the Kafka writer's sampled books, BookUpdate
    snapshot=True every `live_book_snapshot_seconds`). `kafka_live_partitions` partitions each."""
    if kind not in LIVE_KINDS:
        raise ValueError(f"unknown live topic kind {kind!r}; known: {', '.join(LIVE_KINDS)}")
    return settings.topic(f"live.{kind}")


def cep_topic(settings: Settings) -> str:
    """CEP trigger registrations accepted by the relay, read from the start by every live process (one partition:
    registrations keep their order)."""
    return settings.topic("cep.triggers")


def ingestor_group(settings: Settings, exchange: str) -> str:
    return f"{settings.kafka_topic_prefix}ingestor.{exchange}"


def all_topics(settings: Settings) -> dict[str, int]:
    topics = {request_topic(settings, ex): REQUEST_PARTITIONS for ex in sorted(KNOWN_EXCHANGES)}
    topics[history_topic(settings)] = settings.kafka_history_partitions
    topics.update({live_topic(settings, kind): settings.kafka_live_partitions for kind in LIVE_KINDS})
    topics[cep_topic(settings)] = 1
    return topics


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Durable producer: acks=all, idempotent, short linger."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 2,
        "compression.type": "lz4",
        "message.max.bytes": 8_000_000,
        **extra,
    }


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 600_000,
        "fetch.max.bytes": 16_000_000,
        **extra,
    }
