"""history_batches_sensor: one run per complete Kafka history batch.

Each tick reads the new records of every partition of the history topic
(bounded per tick), follows batches from METADATA to END, and asks for one run
per complete batch with run key `topic:partition:start-end`, so a batch seen
again on a later tick is not run twice. The cursor is JSON {partition: next
offset} and never moves past the METADATA record of a batch still open: if the
sensor stops mid-batch, the next tick reads the batch again from its start. A
batch open longer than `history_batch_abandon_seconds` (its ingestor crashed;
the request is re-served as a new batch) stops holding the cursor.
Batches written by a Dagster run itself (`assets.ingest.written_by_a_run`:
backfills, schedules, gap repairs) are passed over: that run commits them.
"""

import json
import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, TopicPartition
from dagster import (
    DefaultSensorStatus,
    RunConfig,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from assets.history import HISTORY_OP, HistoryBatchConfig
from assets.ingest import written_by_a_run
from live_relay import codec
from live_relay.messages import BatchKind, OHLCBatch
from marketlake.settings import Settings
from marketlake.storage.batches import BatchRange
from resources.kafka import KafkaResource, TopicNotFoundError

TAG_PREFIX = "marketlake/"
TICK_BUDGET_SECONDS = 40.0  # below Dagster's 60 s sensor evaluation timeout


@dataclass(frozen=True, slots=True)
class OpenBatch:
    offset: int
    timestamp_ms: int
    metadata: OHLCBatch


@dataclass(frozen=True, slots=True)
class CompleteBatch:
    location: BatchRange
    metadata: OHLCBatch


@dataclass(slots=True)
class PartitionScan:
    """What one tick learnt about one partition, read from `start_offset` on (pure bookkeeping)."""

    topic: str
    partition: int
    start_offset: int
    next_offset: int = -1
    open: dict[str, OpenBatch] = field(default_factory=dict)
    complete: list[CompleteBatch] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # offsets of undecodable or orphan records
    caught_up: bool = False

    def __post_init__(self) -> None:
        if self.next_offset < 0:
            self.next_offset = self.start_offset

    def add(self, offset: int, timestamp_ms: int, message: OHLCBatch | None) -> None:
        """Account for the record at `offset` (None: not a decodable OHLCBatch)."""
        self.next_offset = offset + 1
        if message is None:
            self.skipped.append(offset)
        elif message.kind == BatchKind.METADATA:
            self.open[message.batch_id] = OpenBatch(offset, timestamp_ms, message)  # a restart replaces it
        elif message.kind == BatchKind.END:
            started = self.open.pop(message.batch_id, None)
            if started is None:  # its METADATA is before our cursor: an abandoned batch ending late
                self.skipped.append(offset)
            else:
                where = BatchRange(self.topic, self.partition, started.offset, offset, message.batch_id)
                self.complete.append(CompleteBatch(where, started.metadata))

    def made_progress(self) -> bool:
        return bool(self.complete) or self.cursor(now_ms=0, abandon_after_ms=0)[0] > self.start_offset

    def cursor(self, now_ms: int, abandon_after_ms: int) -> tuple[int, list[OpenBatch]]:
        """The next start offset, and the open batches given up on (only judged once caught up)."""
        abandoned = [
            b for b in self.open.values() if self.caught_up and now_ms - b.timestamp_ms > abandon_after_ms
        ]
        held = [b.offset for b in self.open.values() if b not in abandoned]
        return min([*held, self.next_offset]), abandoned


def _decode(value: bytes | None) -> OHLCBatch | None:
    try:
        message = codec.decode_record(value)
    except codec.FrameError:
        return None
    return message if isinstance(message, OHLCBatch) else None


def scan_partition(
    consumer: Consumer, topic: str, partition: int, start: int, high: int, max_records: int, deadline: float
) -> PartitionScan:
    """Read [start, high) of one partition; stop early after `max_records` once a batch completed or
    the cursor can move (so one huge open batch cannot stall the sensor), or at the deadline."""
    scan = PartitionScan(topic, partition, start)
    tp = TopicPartition(topic, partition, start)
    if start < high:
        consumer.assign([tp])
    read = 0
    while scan.next_offset < high and time.monotonic() < deadline:
        if read >= max_records and scan.made_progress():
            break
        # Up to the bound in chunks; past it (no progress yet) one record at a time until progress.
        want = min(1000, max_records - read, high - scan.next_offset) if read < max_records else 1
        messages = consumer.consume(num_messages=max(want, 1), timeout=0.5)
        for msg in messages:
            if msg.error():
                raise KafkaException(msg.error())
            offset = msg.offset() or 0  # never None for a fetched record
            if offset >= high:
                break
            scan.add(offset, msg.timestamp()[1], _decode(msg.value()))
            read += 1
        if not messages and consumer.position([tp])[0].offset >= high:
            scan.next_offset = high  # only control records (transaction markers) were left
    scan.caught_up = scan.next_offset >= high
    return scan


def run_tags(batch: CompleteBatch) -> dict[str, str]:
    """Run tags the run-status sensors use to address and fill the HistoryReady notification."""
    m = batch.metadata
    values = {
        "request_id": m.request_id, "client_id": m.client_id, "ticker": m.ticker,
        "period_seconds": m.period_seconds, "start_time": m.start_time, "end_time": m.end_time,
        "notification_topic": m.notification_topic, "batch_id": m.batch_id,
    }  # fmt: skip
    return {f"{TAG_PREFIX}{k}": str(v) for k, v in values.items()}


def run_request(batch: CompleteBatch) -> RunRequest:
    loc = batch.location
    config = HistoryBatchConfig(
        topic=loc.topic, partition=loc.partition, start_offset=loc.start_offset,
        end_offset=loc.end_offset, batch_id=loc.batch_id,
    )  # fmt: skip
    return RunRequest(run_key=loc.run_key, run_config=RunConfig(ops={HISTORY_OP: config}), tags=run_tags(batch))


def parse_cursor(cursor: str | None) -> dict[int, int]:
    """{partition: next offset} from the sensor cursor (empty when the sensor never ran)."""
    if not cursor:
        return {}
    return {int(p): int(o) for p, o in json.loads(cursor).items()}


def build_history_batches_sensor(settings: Settings, job: UnresolvedAssetJobDefinition) -> SensorDefinition:
    """The sensor, with its interval, per-tick bound and abandon time taken from settings."""
    max_records = settings.history_sensor_max_records
    abandon_after_ms = int(settings.history_batch_abandon_seconds * 1000)

    @sensor(
        name="history_batches_sensor",
        job=job,
        minimum_interval_seconds=settings.history_sensor_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Launches one history_batch_job run per complete Kafka history batch.",
    )
    def history_batches_sensor(context: SensorEvaluationContext, kafka: KafkaResource) -> SensorResult:
        topic = kafka.history_topic()
        offsets = parse_cursor(context.cursor)
        deadline = time.monotonic() + TICK_BUDGET_SECONDS
        requests: list[RunRequest] = []
        with kafka.consumer("history-sensor") as consumer:
            # All watermarks first: asked after an assign, each one waits on the fetcher (~0.25 s).
            try:
                partitions = kafka.partitions(consumer, topic)
            except TopicNotFoundError as exc:  # the platform is still creating its topics
                return SensorResult(skip_reason=str(exc), cursor=context.cursor)
            marks = {p: kafka.watermarks(consumer, topic, p) for p in partitions}
            for partition, (low, high) in marks.items():
                start = offsets.get(partition, low)
                if not low <= start <= high:  # retention passed it, or the topic was recreated: read all kept
                    context.log.warning(f"{topic}:{partition}: cursor {start} outside [{low}, {high}]; from {low}")
                    start = low
                scan = scan_partition(consumer, topic, partition, start, high, max_records, deadline)
                offsets[partition], abandoned = scan.cursor(int(time.time() * 1000), abandon_after_ms)
                for gone in abandoned:
                    context.log.warning(
                        f"abandoned batch {gone.metadata.batch_id} (request {gone.metadata.request_id}) at "
                        f"{topic}:{partition}:{gone.offset}: no END after {settings.history_batch_abandon_seconds}s"
                    )
                if scan.skipped:
                    context.log.warning(f"{topic}:{partition}: skipped records at offsets {scan.skipped[:20]}")
                # A batch a Dagster run wrote itself (backfill, schedule, gap repair) is committed by that run.
                requests.extend(run_request(b) for b in scan.complete if not written_by_a_run(b.metadata))
        cursor = json.dumps({str(p): o for p, o in sorted(offsets.items())})
        if not requests:
            return SensorResult(skip_reason=f"no complete batch in {topic}", cursor=cursor)
        return SensorResult(run_requests=requests, cursor=cursor)

    return history_batches_sensor
