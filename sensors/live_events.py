"""live_events_sensor: a `live_events_job` run for the live records not yet written to Iceberg.

Where Iceberg has got to is the consumer group `<prefix>dagster.live-events`'s
committed offsets, which a run commits only after its Iceberg writes
(assets/live.py). Each tick, unless a live run is still in progress, asks for one
run covering [committed, high watermark) of every partition of the stored live
topics (trades, ohlc, book_snapshots), at most `live_sensor_max_records` a
partition. A failed run leaves the offsets where they were, so the next tick asks
for the same records again; the run's key check makes any re-read harmless.
The cursor records the offsets launched last ({topic: {partition: offset}}), for
the UI. Default status: running when `live_sensors_enabled` (off in tests).
"""

from __future__ import annotations

import json

from confluent_kafka import KafkaException, TopicPartition
from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunConfig,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from dagster._core.storage.dagster_run import RunsFilter

from assets.live import LIVE_GROUP, LIVE_JOB, LIVE_OP, LiveEventsConfig, LiveRange
from marketlake.kafka_topics import live_topic
from marketlake.settings import Settings
from resources.kafka import KafkaResource, TopicNotFoundError

STORED_KINDS = ("trades", "ohlc", "book_snapshots")
IN_PROGRESS = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING,
               DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]  # fmt: skip


def pending_ranges(kafka: KafkaResource, topics: list[str], max_records: int) -> tuple[list[LiveRange], list[str]]:
    """[committed, min(high, committed + max_records)) of every partition with unwritten records, and missing topics."""
    ranges: list[LiveRange] = []
    missing: list[str] = []
    with kafka.consumer(LIVE_GROUP) as consumer:
        for topic in topics:
            try:
                partitions = kafka.partitions(consumer, topic)
            except TopicNotFoundError:
                missing.append(topic)
                continue
            committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
            for tp in committed:
                try:
                    low, high = kafka.watermarks(consumer, topic, tp.partition)
                except KafkaException:  # e.g. a just-created topic still electing its leader: the next tick
                    continue
                start = tp.offset if low <= tp.offset <= high else low  # none yet (-1001), or retention passed it
                if start < high:
                    ranges.append(LiveRange(topic=topic, partition=tp.partition, start_offset=start,
                                            end_offset=min(high, start + max_records)))  # fmt: skip
    return ranges, missing


def build_live_events_sensor(settings: Settings, job: JobDefinition) -> SensorDefinition:
    topics = [live_topic(settings, kind) for kind in STORED_KINDS]
    status = DefaultSensorStatus.RUNNING if settings.live_sensors_enabled else DefaultSensorStatus.STOPPED

    @sensor(name="live_events_sensor", job=job, minimum_interval_seconds=settings.live_sensor_interval_seconds,
            default_status=status,
            description="Launches a live_events_job run for the live Kafka records not yet in Iceberg.")  # fmt: skip
    def live_events_sensor(context: SensorEvaluationContext, kafka: KafkaResource) -> SensorResult:
        busy = context.instance.get_run_records(RunsFilter(job_name=LIVE_JOB, statuses=IN_PROGRESS), limit=1)
        if busy:
            return SensorResult(skip_reason=f"live run {busy[0].dagster_run.run_id} in progress", cursor=context.cursor)
        ranges, missing = pending_ranges(kafka, topics, settings.live_sensor_max_records)
        if not ranges:
            why = f"topics {missing} do not exist yet" if missing else "every live record is in Iceberg"
            return SensorResult(skip_reason=why, cursor=context.cursor)
        launched: dict[str, dict[str, int]] = json.loads(context.cursor) if context.cursor else {}
        for r in ranges:
            launched.setdefault(r.topic, {})[str(r.partition)] = r.end_offset
        records = sum(r.end_offset - r.start_offset for r in ranges)
        request = RunRequest(run_config=RunConfig(ops={LIVE_OP: LiveEventsConfig(ranges=ranges)}),
                             tags={"marketlake/live_records": str(records)})  # fmt: skip
        return SensorResult(run_requests=[request], cursor=json.dumps(launched, sort_keys=True))

    return live_events_sensor
