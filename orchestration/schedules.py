"""Keeping the configured universe current: ticker registration, hourly candles, daily trades.

- `ticker_universe_sensor` registers every ticker of `settings.universe` as a
  partition of the `tickers` dimension (tickers added from the UI stay too).
- `hourly_candles_schedule` (minute 5 of every hour, UTC) refreshes today's
  candles of every registered ticker, and at 00:05 yesterday's as well, so the
  day closes complete.
- `daily_trades_schedule` (00:15 UTC) fetches yesterday's trades.

Each tick is ONE run over a partition range (every ticker × the day), not a run
per ticker: run launch overhead stays flat as the universe grows. Both schedules
start running only when `settings.schedules_enabled` (off in tests, on in `make run`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets.partitions import CANDLE_PERIODS, TICKERS, TRADES, asset_key_for, check_ticker, partition_key
from marketlake.settings import Settings

TICKERS_NAME = TICKERS.name or "tickers"
HOURLY_CANDLES_CRON = "5 * * * *"
DAILY_TRADES_CRON = "15 0 * * *"


def range_request(assets: Sequence[AssetKey], first_day: str, last_day: str, tickers: Sequence[str],
                  kind: str) -> RunRequest:  # fmt: skip
    """One run over days [first_day, last_day] × every ticker (a range of the ticker × day partitions)."""
    return RunRequest(
        asset_selection=list(assets),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: partition_key(first_day, tickers[0]),
            ASSET_PARTITION_RANGE_END_TAG: partition_key(last_day, tickers[-1]),
            "marketlake/schedule": kind,
        },
    )


def candle_days(at: datetime) -> tuple[str, str]:
    """Today; from yesterday at the first tick of a day (the last hour of yesterday closed after its last tick)."""
    first = at - timedelta(days=1) if at.hour == 0 else at
    return first.date().isoformat(), at.date().isoformat()


def build_schedules(settings: Settings, job: UnresolvedAssetJobDefinition) -> list[ScheduleDefinition]:
    status = DefaultScheduleStatus.RUNNING if settings.schedules_enabled else DefaultScheduleStatus.STOPPED
    candle_keys = [asset_key_for(p) for p in CANDLE_PERIODS]

    @schedule(name="hourly_candles_schedule", cron_schedule=HOURLY_CANDLES_CRON, job=job, execution_timezone="UTC",
              default_status=status, description="Today's candles (every period) of every ticker, each hour.")
    def hourly_candles_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        tickers = context.instance.get_dynamic_partitions(TICKERS_NAME)
        if not tickers:
            return SkipReason("no ticker registered yet")
        first, last = candle_days(context.scheduled_execution_time)
        return range_request(candle_keys, first, last, tickers, "hourly_candles")

    @schedule(name="daily_trades_schedule", cron_schedule=DAILY_TRADES_CRON, job=job, execution_timezone="UTC",
              default_status=status, description="Yesterday's trades of every ticker, each day.")
    def daily_trades_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        tickers = context.instance.get_dynamic_partitions(TICKERS_NAME)
        if not tickers:
            return SkipReason("no ticker registered yet")
        yesterday = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
        return range_request([asset_key_for(TRADES)], yesterday, yesterday, tickers, "daily_trades")

    return [hourly_candles_schedule, daily_trades_schedule]


def build_universe_sensor(settings: Settings) -> SensorDefinition:
    """Registers the configured universe as ticker partitions (validated now: a bad ticker fails the load)."""
    universe = [check_ticker(t) for t in settings.universe]

    @sensor(name="ticker_universe_sensor", minimum_interval_seconds=30, default_status=DefaultSensorStatus.RUNNING,
            description="Adds every ticker of MARKETLAKE_UNIVERSE to the `tickers` partitions.")
    def ticker_universe_sensor(context: SensorEvaluationContext) -> SensorResult:
        known = set(context.instance.get_dynamic_partitions(TICKERS_NAME))
        new = [t for t in universe if t not in known]
        if not new:
            return SensorResult(skip_reason=f"all {len(universe)} tickers of the universe are registered")
        context.log.info(f"registering tickers {new}")
        return SensorResult(dynamic_partitions_requests=[TICKERS.build_add_request(new)])

    return ticker_universe_sensor
