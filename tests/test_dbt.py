"""dbt build from Dagster, offline, over Iceberg tables written through the real write path.

One build per module (dbt parse + build take ~20 s): candles of two exchanges (the replay server's
synthetic klines, Kraken's shifted a few ticks), hourly candles beside the minute ones, a day of
ETH with a 10-minute gap, and the recorded Binance trades. Each mart is compared with the same
figure computed here in Python from the rows that were written, not read back.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, Definitions, ExecuteInProcessResult, materialize
from dagster_dbt import DbtProject

from assets.dbt import build_dbt_assets, dbt_target_path
from live_relay.messages import OHLC, Tick
from marketlake import sql
from marketlake.settings import Settings
from orchestration.analytics import ANALYTICS_JOB, build_analytics_definitions, dbt_project, dbt_resource, parse_manifest
from resources.iceberg import IcebergResource
from tests.analytics_fixtures import AUG_7_US, DAY_US, MINUTE_US, lake_settings, shifted, synthetic_candles, write
from tests.history_fixtures import END_US, START_US, trades_in

BTC, KRAKEN_BTC, ETH = "BINANCE:BTC/USDT", "KRAKEN:BTC/USDT", "BINANCE:ETH/USDT"
AUG_8_US = AUG_7_US + DAY_US
GAP = (600, 610)  # ETH minutes of 2024-08-08 never written
MARTS = ("daily_ohlcv", "daily_vwap", "daily_realised_volatility", "cross_exchange_spread", "data_quality_summary")
MART_KEYS = {AssetKey(["marts", name]) for name in MARTS}


@dataclass(frozen=True)
class Built:
    settings: Settings
    result: ExecuteInProcessResult
    candles: dict[str, list[OHLC]]  # finest (60 s) candles per ticker, as written
    trades: list[Tick]
    data_tests: int  # generic data tests in the manifest
    project: DbtProject


def _day(us: int) -> date:
    return datetime.fromtimestamp(us / 1e6, UTC).date()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("dbt")
    settings = lake_settings(root / "home")
    btc = synthetic_candles("BTCUSDT", BTC, 60, AUG_7_US, AUG_7_US + 2 * DAY_US)
    kraken = shifted(btc, KRAKEN_BTC, [Decimal(k) / 4 for k in range(-6, 7)])
    eth_all = synthetic_candles("ETHUSDT", ETH, 60, AUG_8_US, AUG_8_US + DAY_US)
    for ticker, rows in ((BTC, btc), (KRAKEN_BTC, kraken)):
        write(settings, rows, ticker, 60, AUG_7_US, AUG_7_US + 2 * DAY_US)
    write(settings, synthetic_candles("BTCUSDT", BTC, 3600, AUG_7_US, AUG_8_US), BTC, 3600, AUG_7_US, AUG_8_US)
    gap_start, gap_end = (AUG_8_US + m * MINUTE_US for m in GAP)
    write(settings, eth_all[: GAP[0]], ETH, 60, AUG_8_US, gap_start)
    write(settings, eth_all[GAP[1] :], ETH, 60, gap_end, AUG_8_US + DAY_US)
    trades = trades_in(data_dir, START_US, END_US)
    write(settings, trades, BTC, 0, START_US, END_US)

    project = dbt_project(dbt_target_path(settings))  # the builds' own target: dbt reuses this parse
    manifest = json.loads(parse_manifest(project, settings).read_text())
    data_tests = sum(1 for n in manifest["nodes"].values() if n["resource_type"] == "test")
    result = materialize([build_dbt_assets(settings, project)], resources={"dbt": dbt_resource(project)},
                         instance=DagsterInstance.ephemeral(), raise_on_error=False)  # fmt: skip
    eth = eth_all[: GAP[0]] + eth_all[GAP[1] :]
    yield Built(settings, result, {BTC: btc, KRAKEN_BTC: kraken, ETH: eth}, trades, data_tests, project)


def _mart(built: Built, name: str, order: str) -> list[dict]:
    with duckdb.connect(str(sql.dbt_database_path(built.settings)), read_only=True) as con:
        return con.sql(f"SELECT * FROM marts.{name} ORDER BY {order}").to_arrow_table().to_pylist()


def test_dbt_build_from_dagster_succeeds_with_every_data_and_unit_test_passing(built: Built) -> None:
    assert built.result.success
    materialized = {e.asset_key for e in built.result.get_asset_materialization_events()}
    assert MART_KEYS | {AssetKey(["staging", "stg_market__ohlc"]), AssetKey(["staging", "stg_market__trades"])} <= materialized
    checks = built.result.get_asset_check_evaluations()
    assert built.data_tests >= 40 and len(checks) == built.data_tests
    assert [c.asset_check_key.name for c in checks if not c.passed] == []
    results = json.loads((dbt_target_path(built.settings) / "run_results.json").read_text())["results"]
    unit_tests = [r for r in results if r["unique_id"].startswith("unit_test.")]
    assert len(unit_tests) == 5 and {r["status"] for r in unit_tests} == {"pass"}
    assert {r["status"] for r in results} <= {"pass", "success"}


def test_staging_models_are_downstream_of_the_iceberg_assets(built: Built) -> None:
    shared = Definitions(resources={"iceberg": IcebergResource.from_settings(built.settings)})
    graph = Definitions.merge(build_analytics_definitions(built.settings, built.project), shared).resolve_asset_graph()
    assert graph.get(AssetKey(["staging", "stg_market__ohlc"])).parent_keys == {AssetKey(["market", "ohlc"])}
    assert graph.get(AssetKey(["staging", "stg_market__trades"])).parent_keys == {AssetKey(["market", "trades"])}


def test_code_location_loads_without_a_manifest_and_leaves_dbt_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    project = dbt_project(tmp_path / "no-target")
    with caplog.at_level(logging.WARNING, logger="orchestration.analytics"):
        defs = build_analytics_definitions(lake_settings(tmp_path / "home"), project)
    assert "dbt manifest not found" in caplog.text and str(project.manifest_path) in caplog.text
    assert list(defs.assets or []) == []
    assert {j.name for j in defs.jobs or []} == {"table_maintenance_job"}
    assert ANALYTICS_JOB not in {j.name for j in defs.jobs or []}


def _first_last(rows: Sequence[OHLC]) -> tuple[OHLC, OHLC]:
    ordered = sorted(rows, key=lambda c: c.open_time)
    return ordered[0], ordered[-1]


def _by_day(candles: Sequence[OHLC]) -> dict[date, list[OHLC]]:
    days: dict[date, list[OHLC]] = defaultdict(list)
    for c in candles:
        days[_day(c.open_time)].append(c)
    return days


def test_daily_ohlcv_equals_a_python_rollup_of_the_minute_candles(built: Built) -> None:
    expected = []
    for ticker in sorted(built.candles):
        for day, rows in sorted(_by_day(built.candles[ticker]).items()):
            first, last = _first_last(rows)
            expected.append({
                "ticker": ticker, "trade_date": day, "source_period_seconds": 60, "candle_count": len(rows),
                "open_price": Decimal(first.open), "close_price": Decimal(last.close),
                "high_price": max(Decimal(c.high) for c in rows), "low_price": min(Decimal(c.low) for c in rows),
                "base_volume": sum(Decimal(c.volume) for c in rows), "trade_count": sum(c.trade_count for c in rows),
            })  # fmt: skip
    got = [{k: r[k] for k in expected[0]} for r in _mart(built, "daily_ohlcv", "ticker, trade_date")]
    assert got == expected  # exact decimals; Aug 7 BTC comes from the 60 s candles, not the hourly ones


def test_daily_vwap_equals_python_weighted_averages_of_trades_and_candles(built: Built) -> None:
    rows = {(r["ticker"], r["trade_date"], r["vwap_source"]): r for r in _mart(built, "daily_vwap", "ticker")}
    trades_day = _day(built.trades[0].exchange_time_ns // 1000)
    notional = sum(Decimal(t.price) * Decimal(t.size) for t in built.trades)
    trades_vwap = notional / sum(Decimal(t.size) for t in built.trades)
    got = rows[(BTC, trades_day, "trades")]
    assert got["observation_count"] == len(built.trades)
    assert math.isclose(got["vwap"], float(trades_vwap), rel_tol=1e-12)
    eth = built.candles[ETH]
    candles_vwap = sum(Decimal(c.quote_volume) for c in eth) / sum(Decimal(c.volume) for c in eth)
    assert math.isclose(rows[(ETH, _day(AUG_8_US), "candles")]["vwap"], float(candles_vwap), rel_tol=1e-12)
    assert len(rows) == 2 * 2 + 1 + 1  # BTC and Kraken candles x 2 days, ETH candles, BTC trades


def test_realised_volatility_equals_root_sum_of_squared_log_returns(built: Built) -> None:
    got = {(r["ticker"], r["trade_date"]): r for r in _mart(built, "daily_realised_volatility", "ticker")}
    for ticker, candles in built.candles.items():
        closes = [(c.open_time, float(Decimal(c.close))) for c in sorted(candles, key=lambda c: c.open_time)]
        squares: dict[date, list[float]] = defaultdict(list)
        for (_, previous), (open_time, close) in zip(closes, closes[1:], strict=False):
            squares[_day(open_time)].append(math.log(close / previous) ** 2)
        for day, values in squares.items():
            row = got.pop((ticker, day))
            assert row["return_count"] == len(values)
            assert math.isclose(row["realised_volatility"], math.sqrt(sum(values)), rel_tol=1e-9)
            assert math.isclose(row["annualised_volatility"], math.sqrt(sum(values) * 365), rel_tol=1e-9)
    assert got == {}


def test_cross_exchange_spread_equals_python_spreads_of_matched_candles(built: Built) -> None:
    kraken = {c.open_time: float(Decimal(c.close)) for c in built.candles[KRAKEN_BTC]}
    spreads: dict[date, list[float]] = defaultdict(list)
    for c in built.candles[BTC]:
        a, b = float(Decimal(c.close)), kraken[c.open_time]
        spreads[_day(c.open_time)].append((a - b) / ((a + b) / 2) * 10_000)
    rows = _mart(built, "cross_exchange_spread", "trade_date, period_seconds")
    assert [(r["symbol"], r["exchange_a"], r["exchange_b"], r["period_seconds"]) for r in rows] == [
        ("BTC/USDT", "BINANCE", "KRAKEN", 60)] * 2  # fmt: skip
    for row in rows:
        values = spreads[row["trade_date"]]
        assert row["matched_candles"] == len(values)
        assert math.isclose(row["mean_spread_bps"], sum(values) / len(values), rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(row["max_abs_spread_bps"], max(abs(v) for v in values), rel_tol=1e-9)


def test_data_quality_summary_counts_the_missing_eth_minutes(built: Built) -> None:
    rows = _mart(built, "data_quality_summary", "dataset, ticker, period_seconds, trade_date")
    eth = [r for r in rows if r["ticker"] == ETH]
    assert [(r["row_count"], r["duplicate_rows"], r["invalid_rows"], r["expected_rows"], r["missing_rows"])
            for r in eth] == [(1440 - 10, 0, 0, 1440, 10)]  # fmt: skip
    assert {(r["dataset"], r["missing_rows"]) for r in rows if r["ticker"] != ETH} == {("ohlc", 0), ("trades", None)}
    hourly = [r for r in rows if r["period_seconds"] == 3600]
    assert [(r["ticker"], r["trade_date"], r["row_count"]) for r in hourly] == [(BTC, _day(AUG_7_US), 24)]


def test_analyst_sql_shows_the_marts_beside_the_tables(built: Built) -> None:
    result = sql.run_query(built.settings, "SELECT m.ticker, m.trade_date, m.candle_count, count(*) AS candles "
                           "FROM marts.daily_ohlcv m JOIN market.ohlc o ON o.ticker = m.ticker AND o.period_seconds = 60 "
                           "AND o.open_time::DATE = m.trade_date GROUP BY ALL ORDER BY 1, 2")  # fmt: skip
    assert [(r["ticker"], r["candle_count"] == r["candles"]) for r in result.to_pylist()] == [
        (BTC, True), (BTC, True), (ETH, True), (KRAKEN_BTC, True), (KRAKEN_BTC, True)]  # fmt: skip
