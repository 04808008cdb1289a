"""gap_repair_sensor: one repair run per open gap of `market.gaps`, refetched from the exchange's REST API.

A repair run materialises the gap's one partition (gaps are cut at midnights) of
the matching partitioned asset, with config that limits the fetch to the gap's
range and marks the rows source "repair" (assets/backfill.py); the run ends by
marking the gap repaired, and the asset's checks then run on the partition. Its
run carries the gap in its tags (`marketlake/gap_id`, `marketlake/gap_range`,
`marketlake/attempt`), which the UI shows and filters by.

A repair run that fails (the exchange is down, a rate limit outlasted the
retries) is retried: run key = gap id + attempt number, so each attempt is
launched once; the next attempt waits `gap_repair_retry_seconds` after the
previous one ended, and after `gap_repair_max_attempts` failures the gap stays
open and the sensor says so (a human looks at it; it is not silently dropped).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunConfig,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._core.storage.dagster_run import FINISHED_STATUSES, RunsFilter

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


@dataclass(frozen=True)
class Attempt:
    """One earlier repair run of a gap: its status and when it ended (epoch s, None while running)."""

    status: DagsterRunStatus
    ended_at: float | None


def next_attempt(attempts: Sequence[Attempt], now: float, retry_seconds: float, max_attempts: int) -> int | str:
    """The number of the repair attempt to launch now, or why none is launched."""
    if any(a.status not in FINISHED_STATUSES for a in attempts):
        return "a repair run is in progress"
    if any(a.status == DagsterRunStatus.SUCCESS for a in attempts):
        return "repaired by an earlier run"  # the gap row is updated by that run; nothing to launch
    if len(attempts) >= max_attempts:
        return f"gave up after {len(attempts)} failed repair runs"
    last_end = max((a.ended_at or 0.0 for a in attempts), default=0.0)
    if attempts and now < last_end + retry_seconds:
        return f"retry in {last_end + retry_seconds - now:.0f}s"
    return len(attempts) + 1


def past_attempts(context: SensorEvaluationContext, gap_id: str) -> list[Attempt]:
    records = context.instance.get_run_records(filters=RunsFilter(tags={f"{TAG_PREFIX}gap_id": gap_id}))
    return [Attempt(r.dagster_run.status, r.end_time) for r in records]


def repair_request(gap: gaps.Gap, attempt: int = 1) -> RunRequest:
    """The run that refetches `gap` through the one ingestion path and marks it repaired."""
    period = TRADES if gap.data_type == "trades" else gap.period_seconds
    key = asset_key_for(period)
    config = PartitionRunConfig(source="repair", gap_id=gap.gap_id, start_us=gap.gap_start, end_us=gap.gap_end)
    tags = {
        "gap_id": gap.gap_id,
        "gap_range": f"{gap.ticker} {gap.data_type} {gap.period_seconds}s {TimeRange(gap.gap_start, gap.gap_end)}",
        "detected_by": gap.detected_by,
        "repair": "rest",
        "attempt": str(attempt),
    }
    return RunRequest(
        run_key=f"gap-repair:{gap.gap_id}:{attempt}",
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
        requests: list[RunRequest] = []
        waiting: list[str] = []
        for gap in todo:
            attempt = next_attempt(past_attempts(context, gap.gap_id), time.time(), settings.gap_repair_retry_seconds,
                                   settings.gap_repair_max_attempts)  # fmt: skip
            if isinstance(attempt, int):
                requests.append(repair_request(gap, attempt))
            else:
                waiting.append(f"{gap.gap_id}: {attempt}")
                if attempt.startswith("gave up"):
                    context.log.error(f"gap {gap.gap_id} ({gap.ticker} {TimeRange(gap.gap_start, gap.gap_end)}) {attempt}")
        if not requests:
            return SensorResult(skip_reason=f"no gap to launch a repair for ({len(found)} open): " + "; ".join(waiting))
        known = set(context.instance.get_dynamic_partitions(TICKERS.name or "tickers"))
        new_tickers = sorted({g.ticker for g in todo} - known)  # e.g. a live gap of a ticker never backfilled
        return SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[TICKERS.build_add_request(new_tickers)] if new_tickers else [],
        )

    return gap_repair_sensor
