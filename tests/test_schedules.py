"""Schedules and the ticker universe sensor, evaluated against a real Dagster instance.

Each schedule tick asks for ONE run over a partition range (every registered
ticker × the day(s)); the schedules start stopped unless settings turn them on;
the universe sensor registers the configured tickers as partitions.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    DefaultScheduleStatus,
    Definitions,
    RunRequest,
    SensorResult,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.definitions.partitions.partition_key_range import PartitionKeyRange
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets.partitions import PARTITIONS, TickerPartitionError, asset_key_for
from marketlake.settings import Settings
from orchestration.definitions import build_definitions

BTC, ETH, SOL = "BINANCE:BTC/USDT", "BINANCE:ETH/USDT", "BINANCE:SOL/USDT"


def definitions(tmp_path: Path, **overrides: object) -> Definitions:
    return build_definitions(Settings(home=tmp_path / "home", **overrides))  # type: ignore[arg-type]


def tick(defs: Definitions, name: str, instance: DagsterInstance, at: datetime) -> RunRequest:
    schedule = defs.resolve_schedule_def(name)
    with build_schedule_context(instance=instance, scheduled_execution_time=at) as context:
        [request] = schedule.evaluate_tick(context).run_requests or []
    return request


def partitions_of(request: RunRequest, instance: DagsterInstance) -> list[str]:
    """Every partition key the run's range covers."""
    span = PartitionKeyRange(request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG])
    return list(PARTITIONS.get_partition_keys_in_range(span, dynamic_partitions_store=instance))


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    """A real instance on disk (schedule evaluation needs one it can refer to), three tickers registered."""
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        instance.add_dynamic_partitions("tickers", [BTC, ETH, SOL])
        yield instance


def test_hourly_candles_tick_is_one_run_over_today_for_every_ticker(tmp_path: Path, instance: DagsterInstance) -> None:
    defs = definitions(tmp_path)
    request = tick(defs, "hourly_candles_schedule", instance, datetime(2024, 3, 2, 13, 5, tzinfo=UTC))
    assert set(request.asset_selection or []) == {asset_key_for(60), asset_key_for(3600)}
    assert partitions_of(request, instance) == [f"2024-03-02|{t}" for t in (BTC, ETH, SOL)]


def test_first_hourly_tick_of_a_day_also_closes_yesterday(tmp_path: Path, instance: DagsterInstance) -> None:
    request = tick(definitions(tmp_path), "hourly_candles_schedule", instance, datetime(2024, 3, 2, 0, 5, tzinfo=UTC))
    assert partitions_of(request, instance) == [f"{d}|{t}" for d in ("2024-03-01", "2024-03-02") for t in (BTC, ETH, SOL)]


def test_daily_trades_tick_is_one_run_over_yesterday_for_every_ticker(tmp_path: Path, instance: DagsterInstance) -> None:
    request = tick(definitions(tmp_path), "daily_trades_schedule", instance, datetime(2024, 3, 2, 0, 15, tzinfo=UTC))
    assert request.asset_selection == [asset_key_for(0)]
    assert partitions_of(request, instance) == [f"2024-03-01|{t}" for t in (BTC, ETH, SOL)]


def test_schedules_are_stopped_by_default_and_running_when_enabled(tmp_path: Path) -> None:
    names = ("hourly_candles_schedule", "daily_trades_schedule")
    off, on = definitions(tmp_path), definitions(tmp_path, schedules_enabled=True)
    assert {off.resolve_schedule_def(n).default_status for n in names} == {DefaultScheduleStatus.STOPPED}
    assert {on.resolve_schedule_def(n).default_status for n in names} == {DefaultScheduleStatus.RUNNING}
    assert on.resolve_schedule_def(names[0]).cron_schedule == "5 * * * *"
    assert on.resolve_schedule_def(names[1]).cron_schedule == "15 0 * * *"


def test_universe_sensor_registers_the_configured_tickers_once(tmp_path: Path) -> None:
    defs = definitions(tmp_path, universe=[BTC, SOL])
    instance = DagsterInstance.ephemeral()
    sensor = defs.resolve_sensor_def("ticker_universe_sensor")
    for expected_new in ([BTC, SOL], []):
        with build_sensor_context(instance=instance, definitions=defs) as context:
            result = sensor(context)
        assert isinstance(result, SensorResult)
        added = [k for r in result.dynamic_partitions_requests or [] for k in r.partition_keys]  # type: ignore[union-attr]
        assert added == expected_new
        for request in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions("tickers", list(request.partition_keys))  # type: ignore[union-attr]
    assert instance.get_dynamic_partitions("tickers") == [BTC, SOL]


def test_a_malformed_universe_ticker_fails_the_code_location_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(TickerPartitionError, match="'BTCUSDT' cannot be a partition"):
        definitions(tmp_path, universe=["BTCUSDT"])


def test_universe_reads_a_comma_separated_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETLAKE_UNIVERSE", f"{BTC}, {SOL}")
    assert Settings().universe == [BTC, SOL]
    monkeypatch.setenv("MARKETLAKE_UNIVERSE", str([BTC, ETH]))  # what marketlake.supervisor passes to children
    assert Settings().universe == [BTC, ETH]
