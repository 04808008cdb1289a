"""Partitioned assets, ticker × day, for candles (one asset per period) and trades: backfills, schedules, repairs.

`market/ohlc_1m_daily`, `market/ohlc_1h_daily` and `market/trades_daily` are
`market.ohlc` / `market.trades` seen by Dagster partition. Materialising
partitions fetches their days from the exchange through the one ingestion path
(assets/ingest.py: the ingestor's fetcher and BatchWriter → Kafka history topic →
batch reader → idempotent Iceberg overwrite) and fires HistoryReady on
`HISTORY_READY:dagster-run-<run id>-<n>`, like a client request.

Backfills run up to a month of days per run (BackfillPolicy.multi_run), and a run
fetches each ticker's consecutive days as one batch: one Kafka batch, one
Iceberg commit, one notification. A repair run (gap repair sensor) refetches
only its gap's range, with source "repair", then marks the gap repaired.

No `from __future__ import annotations`: Dagster reads the asset function's annotations.
"""

import time
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Backoff,
    Config,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)
from pydantic import Field

from assets.ingest import RUN_CLIENT_ID, commit_batch, fetch_into_kafka, run_writer_id
from assets.partitions import (
    CANDLE_PERIODS,
    PARTITIONS,
    TRADES,
    RepairRangeError,
    Window,
    asset_key_for,
    plan_windows,
    repair_window,
)
from live_relay.messages import DataRequest, HistoryReadyNotification, Status
from marketlake.settings import Settings
from marketlake.storage import gaps
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from resources.relay import RelayNotifierResource

MAX_BATCH_DAYS = {"candles": 31, "trades": 1}  # 44,640 1-minute candles; one day of trades (~50k for BTC)
RUN_DAYS = 31  # partitions per backfill run
ASSET_GROUP = "market_partitions"
# Nobody asked for a run's data, so do not wait long for a subscriber: an existing subscription
# reaches a new publisher through the relay's XSUB in milliseconds.
RUN_NOTIFY_WAIT_SECONDS = 0.5


class PartitionRunConfig(Config):
    """Empty for backfills and schedules; set by the gap repair sensor for a repair run."""

    source: str = Field(default="rest", description="Provenance of the fetched rows: rest, or repair.")
    gap_id: str = Field(default="", description="The market.gaps row this run repairs.")
    start_us: int = Field(default=0, description="Repair only [start_us, end_us) of the partition (0: all).")
    end_us: int = Field(default=0, description="End of the repair range, exclusive.")


def request_for(run_id: str, index: int, window: Window, period_seconds: int) -> DataRequest:
    """The DataRequest a run makes for one window: its request id (and notification topic) from the run id."""
    request_id = f"dagster-run-{run_id}-{index:03d}"
    return DataRequest(
        request_id=request_id, client_id=RUN_CLIENT_ID, ticker=window.ticker, period_seconds=period_seconds,
        start_time=window.start_us, end_time=window.end_us, notification_topic=f"HISTORY_READY:{request_id}",
        submitted_at=time.time_ns() // 1000,
    )  # fmt: skip


def notification(req: DataRequest, status: Status, **outcome: Any) -> HistoryReadyNotification:
    """The HistoryReady of one window's request: OK with table, snapshot and rows, or ERROR with the reason."""
    return HistoryReadyNotification(
        request_id=req.request_id, client_id=req.client_id, status=status, ticker=req.ticker,
        period_seconds=req.period_seconds, start_time=req.start_time, end_time=req.end_time,
        completed_at=time.time_ns() // 1000, **outcome,
    )  # fmt: skip


def _notify(context: AssetExecutionContext, relay: RelayNotifierResource, msg: HistoryReadyNotification) -> None:
    quick = RelayNotifierResource(relay_host=relay.relay_host, xsub_port=relay.xsub_port,
                                  subscriber_wait_seconds=min(relay.subscriber_wait_seconds, RUN_NOTIFY_WAIT_SECONDS))
    topic = f"HISTORY_READY:{msg.request_id}"
    try:
        quick.send(topic, msg, wait_for_subscriber=False)
    except RuntimeError as exc:  # NotifyError: the data is written; say so in the log, do not fail the run
        context.log.warning(f"HistoryReady {msg.status.name} on {topic} not sent: {exc}")


def materialize_windows(
    context: AssetExecutionContext, config: PartitionRunConfig, settings: Settings, period_seconds: int,
    kafka: KafkaResource, iceberg: IcebergResource, relay: RelayNotifierResource,
) -> MaterializeResult:
    """Fetch, commit and announce every window of the run's partitions (or its repair range)."""
    keys = context.partition_keys
    if config.gap_id or config.start_us:
        try:
            windows = [repair_window(keys, config.start_us, config.end_us)]
        except RepairRangeError as exc:  # a wrong config: retrying cannot help
            raise Failure(description=str(exc), allow_retries=False) from exc
    else:
        max_days = MAX_BATCH_DAYS["trades" if period_seconds == TRADES else "candles"]
        windows = plan_windows(keys, period_seconds, time.time_ns() // 1000, max_days)
    done: list[dict[str, Any]] = []
    failed: list[str] = []
    for index, window in enumerate(windows):
        req = request_for(context.run.run_id, index, window, period_seconds)
        location = fetch_into_kafka(settings, req, config.source, run_writer_id(context.run.run_id))
        try:
            _, written = commit_batch(kafka, iceberg, location)
        except Failure as exc:
            failed.append(f"{window}: {exc.description}")
            _notify(context, relay, notification(req, Status.ERROR, error_message=exc.description or ""))
            continue
        _notify(context, relay, notification(req, Status.OK, row_count=written.row_count, table=written.table,
                                             snapshot_id=written.snapshot_id))  # fmt: skip
        context.log.info(f"{window}: {written.row_count} rows into {written.table} (snapshot {written.snapshot_id})")
        done.append({"window": str(window), "rows": written.row_count, "snapshot_id": written.snapshot_id,
                     "request_id": req.request_id, "kafka": location.run_key})  # fmt: skip
    if failed:
        raise Failure(description=f"{len(failed)} of {len(windows)} windows failed: " + "; ".join(failed),
                      metadata={"failed": MetadataValue.json(failed), "written": MetadataValue.json(done)},
                      allow_retries=False)  # fmt: skip
    if config.gap_id:
        repaired = gaps.mark_repaired(iceberg.catalog(), config.gap_id, context.run.run_id, "rest", time.time_ns() // 1000)
        context.log.info(f"gap {repaired.gap_id} repaired: {repaired.ticker} {windows[0].range}")
    return MaterializeResult(metadata={
        "row_count": MetadataValue.int(sum(d["rows"] for d in done)),
        "batches": MetadataValue.json(done),
        "source": config.source,
        **({"gap_id": config.gap_id} if config.gap_id else {}),
    })  # fmt: skip


def build_partitioned_asset(settings: Settings, period_seconds: int) -> AssetsDefinition:
    """The partitioned asset of one candle period, or of trades (period 0); settings give the fetchers."""
    what = "trades" if period_seconds == TRADES else f"{CANDLE_PERIODS[period_seconds]} candles"
    table = "market.trades" if period_seconds == TRADES else "market.ohlc"

    @asset(
        key=asset_key_for(period_seconds),
        partitions_def=PARTITIONS,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=RUN_DAYS),
        group_name=ASSET_GROUP,
        kinds={"iceberg", "kafka"},
        description=f"Exchange {what} by ticker × day, in Iceberg table {table}; fetched through the ingestors "
                    "and the Kafka history topic like a client request.",
        # Transient trouble (Kafka, a conflicting commit) is retried: every write is idempotent.
        retry_policy=RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS),
    )  # fmt: skip
    def partitioned(
        context: AssetExecutionContext, config: PartitionRunConfig, kafka: KafkaResource, iceberg: IcebergResource,
        relay: RelayNotifierResource,
    ) -> MaterializeResult:
        return materialize_windows(context, config, settings, period_seconds, kafka, iceberg, relay)

    return partitioned


def build_partitioned_assets(settings: Settings) -> list[AssetsDefinition]:
    return [build_partitioned_asset(settings, p) for p in (*CANDLE_PERIODS, TRADES)]
