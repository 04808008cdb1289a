"""The one ingestion path, shared by client-requested history and the work Dagster launches itself.

`commit_batch` reads one batch's Kafka offset range, checks it and overwrites its
key range in Iceberg: `history_batch` (one run per client batch) and the
partitioned assets (backfills, schedules, gap repairs) both call it. For the
latter, `fetch_into_kafka` first writes the batch itself, with the ingestor's own
code (the exchange's fetcher from `ingestors.registry`, `ingestors.worker.BatchWriter`)
into the same history topic, and learns the batch's offsets from Kafka's
delivery reports; the run then commits exactly that range, like a client batch.

Such batches are marked as written by a run (`ingestor_id` = "dagster-run:<run id>"),
so the history batch sensor, which also sees them in the topic, does not launch a
second write for them (`written_by_a_run`).
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from dagster import Failure, MetadataValue

from ingestors.registry import fetcher_for
from ingestors.worker import BatchWriter
from live_relay.messages import DataRequest, OHLCBatch, Status
from live_relay.topics import parse_ticker
from marketlake.kafka_topics import history_topic, producer_config
from marketlake.settings import Settings
from marketlake.storage.batches import BatchFailedError, BatchRange, HistoryBatch, InvalidBatchError
from resources.iceberg import BatchWrite, IcebergResource
from resources.kafka import KafkaResource

RUN_WRITER_PREFIX = "dagster-run:"
RUN_CLIENT_ID = "dagster"
FLUSH_TIMEOUT_SECONDS = 60.0


def run_writer_id(run_id: str) -> str:
    """The `ingestor_id` of batches a Dagster run writes itself."""
    return f"{RUN_WRITER_PREFIX}{run_id}"


def written_by_a_run(metadata: OHLCBatch) -> bool:
    """A batch that the run which wrote it also commits: the history sensor must not launch it again."""
    return metadata.ingestor_id.startswith(RUN_WRITER_PREFIX)


class BatchDeliveryError(RuntimeError):
    """Kafka did not report where the records of a batch went."""


class OffsetRecordingProducer(Producer):
    """A Producer that keeps the (partition, offset) of every record Kafka acknowledged."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.delivered: list[tuple[int, int]] = []

    def produce(self, topic: str, value: Any = None, key: Any = None, *args: Any, **kwargs: Any) -> None:
        user_callback = kwargs.pop("on_delivery", None)

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                self.delivered.append((int(msg.partition() or 0), int(msg.offset() or 0)))
            if user_callback is not None:
                user_callback(err, msg)

        super().produce(topic, value, key, *args, **{**kwargs, "on_delivery": on_delivery})

    def batch_range(self, topic: str, batch_id: str, records: int) -> BatchRange:
        """Where the batch went: all its records share a key, so one partition, METADATA first, END last."""
        partitions = {p for p, _ in self.delivered}
        if len(self.delivered) != records or len(partitions) != 1:
            raise BatchDeliveryError(
                f"batch {batch_id}: {len(self.delivered)} of {records} records acknowledged in partitions {partitions}"
            )
        offsets = [o for _, o in self.delivered]
        return BatchRange(topic, partitions.pop(), min(offsets), max(offsets), batch_id)


def fetch_into_kafka(settings: Settings, request: DataRequest, source: str, writer_id: str) -> BatchRange:
    """Fetch `request` from its exchange into one batch in the history topic, as an ingestor does.

    A failure of the exchange side ends the batch with status ERROR and the reason (so the commit
    reports it exactly as for a client request); a Kafka failure raises.
    """
    topic = history_topic(settings)
    producer = OffsetRecordingProducer(producer_config(settings))
    writer = BatchWriter(producer, topic, request, writer_id, source)
    writer.metadata()
    try:
        fetcher = fetcher_for(parse_ticker(request.ticker).exchange, settings)
        for page in fetcher.pages(request.ticker, request.period_seconds, request.start_time, request.end_time):
            writer.page(page)
    except Exception as exc:  # any failure of the exchange side is this batch's answer, as in the ingestor
        writer.end(Status.ERROR, f"{type(exc).__name__}: {exc}")
    else:
        writer.end(Status.OK)
    writer.flush(FLUSH_TIMEOUT_SECONDS)
    return producer.batch_range(topic, writer.head.batch_id, writer.sequence)


def read_checked_batch(kafka: KafkaResource, location: BatchRange) -> HistoryBatch:
    """Read and check one batch; a bad or ERROR batch is a Failure that retrying cannot fix."""
    try:
        return kafka.read_batch(location)
    except (InvalidBatchError, BatchFailedError) as exc:  # BatchReadError is transient: retried
        raise Failure(
            description=exc.reason,
            metadata={"batch_id": exc.batch_id, "run_key": location.run_key},
            allow_retries=False,
        ) from exc


def commit_batch(kafka: KafkaResource, iceberg: IcebergResource, location: BatchRange) -> tuple[HistoryBatch, BatchWrite]:
    """Read, check and write one batch: one atomic overwrite of its key range, Kafka offsets in the snapshot."""
    batch = read_checked_batch(kafka, location)
    return batch, iceberg.write_batch(batch)


def batch_metadata(batch: HistoryBatch, written: BatchWrite) -> dict[str, Any]:
    """The materialization metadata of one committed batch (the HistoryReady sensors read table,
    snapshot_id and row_count from it)."""
    meta, location = batch.metadata, batch.location
    return {
        "table": written.table,
        "snapshot_id": MetadataValue.int(written.snapshot_id),
        "row_count": MetadataValue.int(written.row_count),
        "ticker": meta.ticker,
        "period_seconds": MetadataValue.int(meta.period_seconds),
        "start_time": MetadataValue.int(meta.start_time),
        "end_time": MetadataValue.int(meta.end_time),
        "kafka_topic": location.topic,
        "kafka_partition": MetadataValue.int(location.partition),
        "kafka_start_offset": MetadataValue.int(location.start_offset),
        "kafka_end_offset": MetadataValue.int(location.end_offset),
        "batch_id": meta.batch_id,
        "request_id": meta.request_id,
    }
