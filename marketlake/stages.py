"""Where the time of one historical request went, stage by stage.

Stages: relay ack (client clock), fetch (relay ack → END record in Kafka,
from the records' broker timestamps), sensor pickup (END record → run
created), run (created → finished, launch included), notify (run finished →
HistoryReady received by the client).
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from live_relay import codec
from live_relay.messages import BatchKind, OHLCBatch
from marketlake.kafka_topics import consumer_config, history_topic
from marketlake.settings import Settings


@dataclass
class RequestTimes:
    submitted: float  # client clock, seconds since epoch
    acked: float
    ready: float  # HistoryReady received


def batch_end_time(settings: Settings, request_id: str, timeout: float = 10.0) -> float | None:
    """Broker timestamp (s) of the END record of the request's batch."""
    consumer = Consumer(consumer_config(settings, "marketlake-stages", **{"enable.partition.eof": True}))
    topic = history_topic(settings)
    parts = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    found: float | None = None
    done: set[int] = set()
    while len(done) < len(parts):
        batch = consumer.consume(1000, timeout=timeout)
        if not batch:
            break
        for msg in batch:
            if msg.error():  # partition EOF (enable.partition.eof): that partition is read to its end
                done.add(msg.partition() or 0)
                continue
            rec = codec.decode_record(msg.value())
            if isinstance(rec, OHLCBatch) and rec.request_id == request_id and rec.kind == BatchKind.END:
                found = msg.timestamp()[1] / 1000
    consumer.close()
    return found


def stage_seconds(settings: Settings, request_id: str, times: RequestTimes) -> dict[str, float]:
    from dagster import DagsterInstance, RunsFilter

    stages = {"relay_ack": times.acked - times.submitted}
    end_ts = batch_end_time(settings, request_id)
    with DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        records = instance.get_run_records(RunsFilter(tags={"marketlake/request_id": request_id}), limit=1)
    if end_ts is None or not records:
        return {**stages, "total": times.ready - times.submitted}
    run = records[0]
    created = run.create_timestamp.timestamp()
    finished = run.end_time or created
    stages.update(
        fetch=end_ts - times.acked,
        sensor_pickup=created - end_ts,
        run=finished - created,
        notify=times.ready - finished,
        total=times.ready - times.submitted,
    )
    return {k: round(v, 3) for k, v in stages.items()}
