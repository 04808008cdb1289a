"""live_gaps_sensor: the live feeds' gap events (Kafka `marketlake.live.gaps`) recorded in `market.gaps`.

A live book gap (a sequence jump, a checksum mismatch, a dropped connection) is
detected by the exchange adapter, which resyncs that one symbol's book at once
(a fresh snapshot): so the row is written already repaired, `repair_method`
"live_resync", `detected_by` "live:<how>", with where and when it was found and
the update ids around it in `detail`. Order books have no REST history to
refetch; trades and candles missing around such a gap are found by the
completeness checks and repaired from REST by gap_repair_sensor like any other.

Each tick reads the new records of every partition (bounded) from the cursor
(JSON {partition: next offset}); gap ids are derived from topic, partition and
offset, so a record read twice is recorded once.
"""

from __future__ import annotations

import json
import time

from confluent_kafka import TopicPartition
from dagster import DefaultSensorStatus, SensorDefinition, SensorEvaluationContext, SensorResult, sensor

from live_relay import codec
from live_relay.messages import StreamGap
from marketlake.kafka_topics import live_topic
from marketlake.settings import Settings
from marketlake.storage import gaps
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource, TopicNotFoundError

MAX_RECORDS_PER_TICK = 5000
BOOK = "book"


def gap_row(gap: StreamGap, partition: int, offset: int) -> gaps.Gap:
    """The market.gaps row of one live gap event (an instant: [detected, detected + 1 µs))."""
    at_us = gap.detected_at_ns // 1000
    ids = ", ".join(f"{k}={v}" for k, v in (("last_seen", gap.last_seen), ("first_missing", gap.first_missing),
                                            ("next_received", gap.next_received)) if v >= 0)  # fmt: skip
    return gaps.Gap(gap_id=f"live-{partition}-{offset}", ticker=gap.ticker, exchange=gap.exchange, data_type=BOOK,
                    period_seconds=0, gap_start=at_us, gap_end=at_us + 1, detected_at=at_us,
                    detected_by=f"live:{gap.how}", status=gaps.REPAIRED, repaired_at=at_us, repair_method="live_resync",
                    detail="; ".join(x for x in (gap.detail, ids) if x) or None)  # fmt: skip


def build_live_gaps_sensor(settings: Settings) -> SensorDefinition:
    status = DefaultSensorStatus.RUNNING if settings.live_sensors_enabled else DefaultSensorStatus.STOPPED

    @sensor(name="live_gaps_sensor", minimum_interval_seconds=30, default_status=status,
            description="Records the live feeds' gap events (Kafka live.gaps) in market.gaps.")  # fmt: skip
    def live_gaps_sensor(context: SensorEvaluationContext, kafka: KafkaResource, iceberg: IcebergResource) -> SensorResult:
        topic = live_topic(settings, "gaps")
        cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        rows: list[gaps.Gap] = []
        undecodable = 0
        deadline = time.monotonic() + 30
        with kafka.consumer("live-gaps") as consumer:
            try:
                partitions = kafka.partitions(consumer, topic)
            except TopicNotFoundError:
                return SensorResult(skip_reason=f"{topic} does not exist yet (no live feed has run)")
            for partition in partitions:
                low, high = kafka.watermarks(consumer, topic, partition)
                start = max(cursor.get(str(partition), low), low)
                consumer.assign([TopicPartition(topic, partition, start)])
                while start < high and len(rows) < MAX_RECORDS_PER_TICK and time.monotonic() < deadline:
                    for record in consumer.consume(min(500, high - start), timeout=5):
                        offset = record.offset()
                        if record.error() is not None or offset is None:
                            continue
                        start = offset + 1
                        try:
                            msg = codec.decode_record(record.value())
                        except codec.FrameError:
                            undecodable += 1
                            continue
                        if isinstance(msg, StreamGap):
                            rows.append(gap_row(msg, partition, offset))
                cursor[str(partition)] = start
        new = gaps.record_once(iceberg.catalog(), rows)
        if undecodable:
            context.log.warning(f"{undecodable} undecodable records on {topic} skipped")
        summary = f"recorded {len(new)} live gaps in market.gaps ({len(rows) - len(new)} known)"
        return SensorResult(cursor=json.dumps(cursor), skip_reason=summary)

    return live_gaps_sensor
