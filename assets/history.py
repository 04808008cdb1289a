"""`market/ohlc` and `market/trades`: materialised from one Kafka history batch per run.

The run config carries the batch's Kafka offsets, never its rows. One op reads
the range, checks it and commits it to whichever table the batch is for (a
batch is candles or trades, learnt from its METADATA record), so each run
materialises exactly one of the two assets.

No `from __future__ import annotations` here: Dagster reads the config and
resource annotations of the asset function at definition time.
"""

from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AssetSpec,
    Backoff,
    Config,
    Jitter,
    MaterializeResult,
    RetryPolicy,
    define_asset_job,
    in_process_executor,
    multi_asset,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from pydantic import Field

from assets.ingest import batch_metadata, commit_batch
from marketlake.storage.batches import BatchRange
from marketlake.storage.iceberg_tables import OHLC_TABLE, TRADES_TABLE
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource

OHLC_KEY = AssetKey(["market", "ohlc"])
TRADES_KEY = AssetKey(["market", "trades"])
ASSET_KEY_OF_TABLE = {OHLC_TABLE: OHLC_KEY, TRADES_TABLE: TRADES_KEY}
HISTORY_OP = "history_batch"
HISTORY_JOB = "history_batch_job"


class HistoryBatchConfig(Config):
    """One batch's place in Kafka: its METADATA record's offset to its END record's offset."""

    topic: str = Field(description="Kafka topic of the batch.")
    partition: int = Field(description="Kafka partition of the batch.")
    start_offset: int = Field(description="Offset of the batch's METADATA record.")
    end_offset: int = Field(description="Offset of the batch's END record.")
    batch_id: str = Field(description="The batch id (Kafka key of all its records).")

    def location(self) -> BatchRange:
        return BatchRange(self.topic, self.partition, self.start_offset, self.end_offset, self.batch_id)


@multi_asset(
    name=HISTORY_OP,
    specs=[
        AssetSpec(OHLC_KEY, skippable=True, group_name="market",
                  description="Candles: exchange klines and tick-built bars, Iceberg table market.ohlc."),
        AssetSpec(TRADES_KEY, skippable=True, group_name="market",
                  description="Trades with exchange-native ids, Iceberg table market.trades."),
    ],
    can_subset=False,
    # Transient trouble (Kafka, a conflicting concurrent commit of the same range) is retried: the write
    # is idempotent. A bad or ERROR batch is not: it raises Failure(allow_retries=False).
    retry_policy=RetryPolicy(max_retries=3, delay=1, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS),
)  # fmt: skip
def history_batch(
    context: AssetExecutionContext, config: HistoryBatchConfig, kafka: KafkaResource, iceberg: IcebergResource
) -> Iterator[MaterializeResult]:
    """Read one batch's offset range, check it, overwrite its key range in Iceberg (assets/ingest.py)."""
    location = config.location()
    batch, written = commit_batch(kafka, iceberg, location)
    context.log.info(f"{location.run_key}: {written.row_count} rows of {batch.metadata.ticker} into {written.table}")
    yield MaterializeResult(asset_key=ASSET_KEY_OF_TABLE[written.table], metadata=batch_metadata(batch, written))


history_batch_job: UnresolvedAssetJobDefinition = define_asset_job(
    HISTORY_JOB,
    selection=AssetSelection.assets(history_batch),
    description="Write one Kafka history batch (offsets in the run config) to Iceberg.",
    executor_def=in_process_executor,  # one step: a step subprocess would only add seconds of latency
)
