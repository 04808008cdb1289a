"""`live_events_job`: the live Kafka topics written into Iceberg, once per row however often they are read.

One run reads the offset ranges its config names (chosen by sensors/live_events.py)
from `marketlake.live.trades`, `.ohlc` and `.book_snapshots`, and writes

  market.trades          the trades, source "websocket"
  market.ohlc            the tick-built closed candles, source "websocket"
  market.book_snapshots  the Kafka writer's sampled books (a row per level)
  market.heatmap         each sampled book's heatmap (live_relay/book_views.py)

each with one append of the rows whose key is not stored yet
(marketlake/storage/live_tables.py). Only then are the ranges' ends committed as
the consumer group `<prefix>dagster.live-events`'s offsets, which is where the
next run starts: a run that dies before the commit is read again, and the key
check makes the second write a no-op. Gaps (`.gaps`) are recorded by
sensors/live_gaps.py. The op logs one materialization per table it wrote.

No `from __future__ import annotations` here: Dagster reads the config and
resource annotations of the op function at definition time.
"""

import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    Backoff,
    Config,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    RetryPolicy,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from assets.history import OHLC_KEY, TRADES_KEY
from live_relay import codec
from live_relay.sidecar_config import SidecarConfigError, load_sidecar_config
from marketlake.settings import Settings
from marketlake.storage import iceberg_tables, live_tables
from marketlake.storage.live_rows import LiveRecord, live_rows
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource

BOOK_SNAPSHOTS_KEY = AssetKey(["market", "book_snapshots"])
HEATMAP_KEY = AssetKey(["market", "heatmap"])
LIVE_OP = "live_events"
LIVE_JOB = "live_events_job"
LIVE_GROUP = "live-events"  # KafkaResource.consumer purpose: group <prefix>dagster.live-events
READ_TIMEOUT_SECONDS = 60.0

LIVE_ASSET_SPECS = [
    AssetSpec(BOOK_SNAPSHOTS_KEY, group_name="market",
              description="Live order books sampled every MARKETLAKE_LIVE_BOOK_SNAPSHOT_SECONDS (a row per level), "
                          "Iceberg table market.book_snapshots."),
    AssetSpec(HEATMAP_KEY, group_name="market",
              description="Heatmap (price buckets, intensity 0-1) of every sampled book, Iceberg table market.heatmap."),
]  # fmt: skip


class LiveRange(Config):
    """Offsets [start_offset, end_offset) of one partition of one live topic."""

    topic: str = Field(description="Kafka topic (marketlake.live.<kind>).")
    partition: int = Field(description="Kafka partition.")
    start_offset: int = Field(description="First offset read.")
    end_offset: int = Field(description="Offset after the last one read (exclusive).")


class LiveEventsConfig(Config):
    ranges: list[LiveRange] = Field(description="The live topic ranges this run writes to Iceberg.")


def read_range(config: dict[str, Any], r: LiveRange, deadline: float) -> tuple[list[LiveRecord], int]:
    """Decoded records of [start, end) of one partition, and how many could not be decoded."""
    consumer = Consumer({**config, "enable.auto.commit": False})
    records: list[LiveRecord] = []
    undecodable, position = 0, r.start_offset
    try:
        consumer.assign([TopicPartition(r.topic, r.partition, r.start_offset)])
        while position < r.end_offset:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{r.topic}:{r.partition}: read stopped at {position} of [{r.start_offset}, {r.end_offset})")
            for msg in consumer.consume(num_messages=min(5000, r.end_offset - position), timeout=0.5):
                if msg.error():
                    raise KafkaException(msg.error())
                offset = msg.offset() or 0  # never None for a fetched record
                if offset >= r.end_offset:
                    break
                position = offset + 1
                try:
                    records.append(LiveRecord(r.topic, r.partition, offset, codec.decode_record(msg.value())))
                except codec.FrameError:
                    undecodable += 1
    finally:
        consumer.close()
    return records, undecodable


def commit_offsets(kafka: KafkaResource, ranges: Sequence[LiveRange]) -> None:
    """Move the live group's committed offsets to the ranges' ends (never backwards)."""
    with kafka.consumer(LIVE_GROUP) as consumer:
        wanted = [TopicPartition(r.topic, r.partition) for r in ranges]
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(wanted, timeout=10)}
        ahead = [TopicPartition(r.topic, r.partition, r.end_offset) for r in ranges
                 if r.end_offset > committed.get((r.topic, r.partition), -1)]  # fmt: skip
        if ahead:
            consumer.commit(offsets=ahead, asynchronous=False)


def _bucket_sizes(settings: Settings) -> dict[str, str]:
    try:
        return dict(load_sidecar_config(settings).heatmap_bucket)
    except SidecarConfigError:
        return {}


def build_live_job(settings: Settings) -> JobDefinition:
    """The op and its one-op job (in-process: one step)."""
    bucket_sizes = _bucket_sizes(settings)

    @op(name=LIVE_OP, retry_policy=RetryPolicy(max_retries=3, delay=1, backoff=Backoff.EXPONENTIAL),
        description="Write live Kafka ranges (run config) to trades/ohlc/book_snapshots/heatmap once per key.")  # fmt: skip
    def live_events(context: OpExecutionContext, config: LiveEventsConfig, kafka: KafkaResource,
                    iceberg: IcebergResource) -> None:  # fmt: skip
        deadline = time.monotonic() + READ_TIMEOUT_SECONDS
        records: list[LiveRecord] = []
        undecodable = 0
        for r in config.ranges:
            got, bad = read_range(kafka.consumer_config(LIVE_GROUP), r, deadline)
            records += got
            undecodable += bad
        batch_id = "live:" + ",".join(f"{r.topic}:{r.partition}:{r.start_offset}-{r.end_offset}" for r in config.ranges)
        rows = live_rows(records, batch_id[:500], bucket_sizes)
        offsets: dict[str, dict[str, int]] = {}
        for r in config.ranges:
            offsets.setdefault(r.topic, {})[str(r.partition)] = r.end_offset
        catalog = iceberg.catalog()
        targets = {
            "trades": (iceberg_tables.trades_table, live_tables.TRADES_KEY, "trade_time", TRADES_KEY),
            "ohlc": (iceberg_tables.ohlc_table, live_tables.OHLC_KEY, "open_time", OHLC_KEY),
            "book_snapshots": (live_tables.book_snapshots_table, live_tables.BOOK_SNAPSHOTS_KEY, "snapshot_time",
                               BOOK_SNAPSHOTS_KEY),
            "heatmap": (live_tables.heatmap_table, live_tables.HEATMAP_KEY, "snapshot_time", HEATMAP_KEY),
        }  # fmt: skip
        for name, table in rows.tables().items():
            if table.num_rows == 0:
                continue
            open_table, key, time_column, asset_key = targets[name]
            iceberg_table = open_table(catalog)
            written = live_tables.append_new(iceberg_table, table, key, time_column, offsets)
            context.log.info(f"{iceberg_table.name()}: {written} new rows of {table.num_rows} read")
            context.log_event(AssetMaterialization(asset_key=asset_key, metadata={
                "table": ".".join(iceberg_table.name()), "row_count": MetadataValue.int(written),
                "rows_read": MetadataValue.int(table.num_rows), "source": "websocket",
                "kafka_ranges": MetadataValue.json([r.model_dump() for r in config.ranges]),
            }))  # fmt: skip
        if rows.skipped or undecodable:
            context.log.warning(f"skipped {rows.skipped} invalid and {undecodable} undecodable live records: {rows.reasons}")
        commit_offsets(kafka, config.ranges)

    @job(name=LIVE_JOB, executor_def=in_process_executor,
         description="Write the live Kafka topics (offset ranges in the run config) to Iceberg.")  # fmt: skip
    def live_events_job() -> None:
        live_events()

    return live_events_job
