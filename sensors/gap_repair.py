"""gap_repair_sensor: one repair run per open gap of `market.gaps`, refetched from the exchange's REST API.

A repair run materialises the gap's one partition (gaps are cut at midnights) of
the matching partitioned asset, with config that limits the fetch to the gap's
range and marks the rows source "repair" (assets/backfill.py); the run ends by
marking the gap repaired, and the asset's checks then run on the partition. Run
key = the gap id, so a gap is launched once; its run carries the gap in its tags
(`marketlake/gap_id`, `marketlake/gap_range`), which the UI shows and filters by.
"""

from __future__ import annotations

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

from assets.backfill import PartitionRunConfig
from assets.partitions import CANDLE_PERIODS, TICKERS, TRADES, asset_key_for, day_of, partition_key
from marketlake.settings import Settings
from marketlake.storage import gaps
from marketlake.storage.quality import TimeRange
from resources.iceberg import IcebergResource

TAG_PREFIX = "marketlake/"


def repairable(gap: gaps.Gap) -> bool:
    """A gap of one of our partitioned assets (trades, or candles of a period we keep by day)."""
    if gap.data_type == "trades":
        return True
    return gap.data_type == "ohlc" and gap.period_seconds in CANDLE_PERIODS


def repair_request(gap: gaps.Gap) -> RunRequest:
    """The run that refetches `gap` through the one ingestion path and marks it repaired."""
    period = TRADES if gap.data_type == "trades" else gap.period_seconds
    key = asset_key_for(period)
    config = PartitionRunConfig(source="repair", gap_id=gap.gap_id, start_us=gap.gap_start, end_us=gap.gap_end)
    tags = {
        "gap_id": gap.gap_id,
        "gap_range": f"{gap.ticker} {gap.data_type} {gap.period_seconds}s {TimeRange(gap.gap_start, gap.gap_end)}",
        "detected_by": gap.detected_by,
        "repair": "rest",
    }
    return RunRequest(
        run_key=f"gap-repair:{gap.gap_id}",
        partition_key=partition_key(day_of(gap.gap_start), gap.ticker),
        asset_selection=[key],
        run_config=RunConfig(ops={key.to_python_identifier(): config}),
        tags={f"{TAG_PREFIX}{k}": v for k, v in tags.items()},
    )


def build_gap_repair_sensor(settings: Settings, job: UnresolvedAssetJobDefinition) -> SensorDefinition:
    """The sensor, on `job` (the partitioned assets' job), at the configured interval."""

    @sensor(
        name="gap_repair_sensor",
        job=job,
        minimum_interval_seconds=settings.gap_repair_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Launches a REST repair run for every open gap in market.gaps.",
    )
    def gap_repair_sensor(context: SensorEvaluationContext, iceberg: IcebergResource) -> SensorResult:
        found = gaps.open_gaps(iceberg.catalog())
        todo = [g for g in found if repairable(g)]
        for gap in found:
            if not repairable(gap):
                context.log.warning(f"gap {gap.gap_id} ({gap.data_type} {gap.period_seconds}s) has no asset to repair it")
        if not todo:
            return SensorResult(skip_reason=f"no open gap to repair ({len(found)} open)")
        known = set(context.instance.get_dynamic_partitions(TICKERS.name or "tickers"))
        new_tickers = sorted({g.ticker for g in todo} - known)  # e.g. a live gap of a ticker never backfilled
        return SensorResult(
            run_requests=[repair_request(g) for g in todo],
            dynamic_partitions_requests=[TICKERS.build_add_request(new_tickers)] if new_tickers else [],
        )

    return gap_repair_sensor
