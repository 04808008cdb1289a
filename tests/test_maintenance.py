"""Table maintenance on a real SQLite catalog: 100 small appends compacted, snapshots expired, no row lost.

`market.ohlc` gets 100 half-hour batches (two tickers, across a month boundary: four partitions of
24-26 files) through the history write path; the maintenance job then runs in-process twice with its
real resources, keeping no snapshot history (retention 0). The same DuckDB and pyiceberg queries are
run before, between and after, and must give identical results.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from dagster import AssetKey, DagsterInstance, DefaultScheduleStatus, ScheduleDefinition
from pyiceberg.expressions import EqualTo
from pyiceberg.transforms import DayTransform, HourTransform, MonthTransform, YearTransform

from assets.maintenance import table_maintenance_job
from marketlake import sql
from marketlake.settings import Settings
from marketlake.storage import maintenance
from marketlake.storage.iceberg_tables import load_catalog, ohlc_table
from orchestration.analytics import build_analytics_definitions, dbt_project
from resources.iceberg import IcebergResource
from tests.analytics_fixtures import MINUTE_US, lake_settings, synthetic_candles, write

BTC, ETH = "BINANCE:BTC/USDT", "BINANCE:ETH/USDT"
JUL_31_NOON_US = 1_722_427_200_000_000  # 2024-07-31 12:00 UTC: 12 h of July, 13 h of August per ticker
BATCHES_PER_TICKER, BATCH_MINUTES = 50, 30
QUERIES = (
    "SELECT * FROM market.ohlc ORDER BY ticker, open_time",
    "SELECT ticker, count(*) AS n, sum(volume) AS volume, min(low) AS low, max(high) AS high, min(open_time) AS first, "
    "max(open_time) AS last, sum(trade_count) AS trades FROM market.ohlc GROUP BY ticker ORDER BY ticker",
    f"SELECT open_time, close FROM market.ohlc WHERE ticker = '{ETH}' AND open_time >= '2024-08-01' ORDER BY open_time",
)


@dataclass(frozen=True)
class Stage:
    """What the queries, the table and the warehouse directory looked like at one point."""

    duckdb: list[pa.Table]
    pyiceberg: pa.Table
    data_files: int  # live in the current snapshot, from the scan plan
    parquet_on_disk: int
    observation: dict[str, Any]  # the job's metadata for market/ohlc (empty before any run)


@dataclass(frozen=True)
class Maintained:
    before: Stage
    first: Stage
    second: Stage


def _stage(settings: Settings, observation: dict[str, Any]) -> Stage:
    table = ohlc_table(load_catalog(settings))
    scan = table.scan(row_filter=EqualTo("ticker", BTC)).to_arrow().sort_by("open_time")
    warehouse = Path(settings.warehouse.removeprefix("file://"))
    return Stage(
        duckdb=[sql.run_query(settings, q) for q in QUERIES],
        pyiceberg=scan,
        data_files=sum(1 for _ in table.scan().plan_files()),
        parquet_on_disk=sum(1 for _ in warehouse.rglob("*.parquet")),
        observation=observation,
    )


def _run(settings: Settings) -> dict[str, Any]:
    """One in-process run of the job with its real resource; returns market/ohlc's observation metadata."""
    result = table_maintenance_job.execute_in_process(
        run_config={"ops": {"maintain_tables": {"config": {"snapshot_retention_hours": 0.0}}}},
        resources={"iceberg": IcebergResource.from_settings(settings)},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    observations = [e.event_specific_data.asset_observation for e in result.all_events  # type: ignore[union-attr]
                    if e.event_type_value == "ASSET_OBSERVATION"]  # fmt: skip
    assert [o.asset_key for o in observations] == [AssetKey(["market", "ohlc"])]
    return {k: v.value for k, v in observations[0].metadata.items()}


@pytest.fixture(scope="module")
def maintained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Maintained]:
    settings = lake_settings(tmp_path_factory.mktemp("maintenance") / "home")
    span_us = BATCHES_PER_TICKER * BATCH_MINUTES * MINUTE_US
    candles = {t: synthetic_candles(s, t, 60, JUL_31_NOON_US, JUL_31_NOON_US + span_us)
               for t, s in ((BTC, "BTCUSDT"), (ETH, "ETHUSDT"))}  # fmt: skip
    for i in range(BATCHES_PER_TICKER):
        for ticker, rows in candles.items():
            part = rows[i * BATCH_MINUTES : (i + 1) * BATCH_MINUTES]
            write(settings, part, ticker, 60, part[0].open_time, part[-1].open_time + MINUTE_US)
    before = _stage(settings, {})
    first = _stage(settings, _run(settings))
    second = _stage(settings, _run(settings))
    yield Maintained(before, first, second)


def test_one_hundred_small_appends_become_one_file_per_partition(maintained: Maintained) -> None:
    assert maintained.before.data_files == 2 * BATCHES_PER_TICKER
    assert maintained.first.data_files == 4  # 2 tickers x (July, August)
    meta = maintained.first.observation
    assert (meta["data_files_before"], meta["data_files_after"]) == (100, 4)
    assert (meta["partitions_compacted"], meta["partitions_skipped"]) == (4, {})
    assert meta["rows_before"] == meta["rows_after"] == 2 * BATCHES_PER_TICKER * BATCH_MINUTES


def test_duckdb_and_pyiceberg_query_results_are_identical_before_and_after(maintained: Maintained) -> None:
    for stage in (maintained.first, maintained.second):
        for query, before, after in zip(QUERIES, maintained.before.duckdb, stage.duckdb, strict=True):
            assert after.equals(before), query
        assert stage.pyiceberg.equals(maintained.before.pyiceberg)
    assert maintained.before.duckdb[1].column("n").to_pylist() == [1500, 1500]


def test_first_run_expires_the_append_snapshots(maintained: Maintained) -> None:
    meta = maintained.first.observation
    assert (meta["snapshots_before"], meta["snapshots_expired"]) == (100, 100)
    assert meta["snapshots_after"] == 2 * 4  # each partition's overwrite: a delete and an append snapshot
    assert meta["files_deleted"] > 0


def test_second_run_compacts_nothing_and_deletes_every_file_no_snapshot_references(maintained: Maintained) -> None:
    meta = maintained.second.observation
    assert (meta["partitions_compacted"], meta["data_files_before"], meta["data_files_after"]) == (0, 4, 4)
    assert (meta["snapshots_expired"], meta["snapshots_after"]) == (7, 1)
    assert maintained.before.parquet_on_disk == 100
    assert maintained.second.parquet_on_disk == 4


def test_a_write_landing_during_compaction_is_kept_and_its_partition_skipped(tmp_path: Path) -> None:
    settings = lake_settings(tmp_path / "home")
    candles = synthetic_candles("BTCUSDT", BTC, 60, JUL_31_NOON_US, JUL_31_NOON_US + 6 * BATCH_MINUTES * MINUTE_US)
    batches = [candles[i : i + BATCH_MINUTES] for i in range(0, len(candles), BATCH_MINUTES)]
    for part in batches[:5]:
        write(settings, part, BTC, 60, part[0].open_time, part[-1].open_time + MINUTE_US)
    as_maintenance_saw_it = ohlc_table(load_catalog(settings))  # planned on this snapshot...
    write(settings, batches[5], BTC, 60, batches[5][0].open_time, batches[5][-1].open_time + MINUTE_US)  # ...then a run
    result = maintenance.compact_table(as_maintenance_saw_it, min_files=5)
    assert result.compacted == [] and list(result.skipped) == ["open_time_month=2024-07/ticker=BINANCE%3ABTC%2FUSDT"]
    table = ohlc_table(load_catalog(settings))
    assert maintenance.table_state(table).rows == len(candles) == 180
    assert sum(1 for _ in table.scan().plan_files()) == 6


def test_fingerprint_ignores_order_and_sees_a_changed_or_missing_row() -> None:
    rows = pa.table({"ticker": [BTC, BTC, ETH], "close": [1, 2, 3], "note": ["a", None, "c"]})
    same = maintenance.fingerprint(rows)
    assert maintenance.fingerprint(rows.take([2, 0, 1])) == same
    assert maintenance.fingerprint(rows.slice(0, 2)).rows == 2
    assert maintenance.fingerprint(rows.slice(0, 2)) != same
    changed = rows.set_column(1, "close", pa.array([1, 2, 4]))
    assert maintenance.fingerprint(changed) != same and maintenance.fingerprint(changed).rows == 3


@pytest.mark.parametrize(("transform", "value", "start", "end"), [
    (YearTransform(), 54, datetime(2024, 1, 1), datetime(2025, 1, 1)),
    (MonthTransform(), 654, datetime(2024, 7, 1), datetime(2024, 8, 1)),
    (MonthTransform(), 659, datetime(2024, 12, 1), datetime(2025, 1, 1)),
    (DayTransform(), 19_943, datetime(2024, 8, 8), datetime(2024, 8, 9)),
    (HourTransform(), 478_655, datetime(2024, 8, 8, 23), datetime(2024, 8, 9)),
])  # fmt: skip
def test_partition_time_bounds_are_the_whole_partition(transform: object, value: int, start: datetime, end: datetime) -> None:
    assert maintenance._time_bounds(transform, value) == (start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))


def _maintenance_schedule(settings: Settings, tmp_path: Path) -> ScheduleDefinition:
    defs = build_analytics_definitions(settings, dbt_project(tmp_path / "no-manifest"))
    return {s.name: s for s in defs.schedules or []}["table_maintenance_daily"]  # type: ignore[union-attr]


def test_maintenance_schedule_is_daily_and_off_unless_schedules_are_enabled(tmp_path: Path) -> None:
    schedule = _maintenance_schedule(lake_settings(tmp_path / "home"), tmp_path)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 3 * * *", "UTC")
    assert schedule.default_status == DefaultScheduleStatus.STOPPED
    assert schedule.job_name == table_maintenance_job.name
    enabled = lake_settings(tmp_path / "home").model_copy(update={"schedules_enabled": True})
    assert _maintenance_schedule(enabled, tmp_path).default_status == DefaultScheduleStatus.RUNNING
