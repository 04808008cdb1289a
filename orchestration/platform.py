"""The data platform part of the code location: partitioned assets, their checks, schedules, gap repair.

Backfills launched from the UI run the partitioned assets (and their checks)
through Dagster's implicit asset job; schedules and gap repairs run them through
`market_partitions_job`. Runs execute their steps in the run's own process.
`market_checks_job` runs the checks alone over every materialized partition.
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from assets.backfill import build_partitioned_assets
from assets.checks import build_checks
from assets.live import LIVE_ASSET_SPECS, build_live_job
from assets.partitions import CANDLE_PERIODS, TRADES
from marketlake.settings import Settings
from orchestration.schedules import build_schedules, build_universe_sensor
from sensors.gap_repair import build_gap_repair_sensor
from sensors.live_events import build_live_events_sensor
from sensors.live_gaps import build_live_gaps_sensor

PARTITIONS_JOB = "market_partitions_job"
CHECKS_JOB = "market_checks_job"


def build_platform_definitions(settings: Settings) -> Definitions:
    """Assets, checks, the partitions job, schedules and sensors of the data platform, for `settings`."""
    assets = build_partitioned_assets(settings)
    checks = [build_checks(settings, period) for period in (*CANDLE_PERIODS, TRADES)]
    job = define_asset_job(
        PARTITIONS_JOB,
        selection=AssetSelection.assets(*assets),  # with their checks
        description="Partitioned candles and trades with their checks: schedule ticks and gap repairs.",
    )
    checks_job = define_asset_job(
        CHECKS_JOB,
        selection=AssetSelection.checks_for_assets(*assets),
        description="Every check of the partitioned assets, over all their materialized partitions.",
    )
    live_job = build_live_job(settings)  # live Kafka topics -> Iceberg (assets/live.py, sensors/live_events.py)
    return Definitions(
        # The default executor of jobs that name none, among them the implicit asset job that runs UI
        # backfills: a run's steps (fetch + commit, then the checks) follow each other, so step
        # subprocesses would only add their start-up (10-40 s each on 2 busy cores).
        executor=in_process_executor,
        assets=[*assets, *LIVE_ASSET_SPECS],
        asset_checks=checks,
        jobs=[job, checks_job, live_job],
        schedules=build_schedules(settings, job),
        sensors=[
            build_universe_sensor(settings),
            build_gap_repair_sensor(settings, job),
            build_live_gaps_sensor(settings),
            build_live_events_sensor(settings, live_job),
        ],
    )
