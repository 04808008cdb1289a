"""The data-quality rules: pure (parametrized, on real recorded Binance trades) and as Dagster asset checks.

The in-process part materialises a day of real-format Binance trades and 1-minute
klines through the one ingestion path (replay server, Kafka, Iceberg), then runs
the checks: reconciliation compares every minute, a tampered candle and a
deleted range of trades are each found and named.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from msgspec.structs import replace
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan
from pyiceberg.expressions.literals import literal
from pyiceberg.table import Table

from live_relay.messages import OHLC, Tick
from marketlake.storage import gaps, quality
from marketlake.storage.iceberg_tables import (
    OHLC_SCHEMA,
    TRADES_SCHEMA,
    load_catalog,
    ohlc_table,
    trades_table,
    write_ohlc_batch,
)
from marketlake.storage.quality import DAY_US, TimeRange
from orchestration.platform import CHECKS_JOB
from tests.history_fixtures import END_US, START_US, candles_from_trades, trades_in
from tests.test_gap_repair import BTC, InProcessPlatform, evaluations, inproc  # noqa: F401 - inproc is a fixture

M = 60_000_000
T0 = 1_709_337_600_000_000  # 2024-03-02T00:00:00Z
AUG_8 = 1_723_075_200_000_000  # 2024-08-08T00:00:00Z, the day of the Binance recording


def candle_rows(candles: list[OHLC]) -> pa.Table:
    return pa.Table.from_pylist([{
        "ticker": c.ticker, "exchange": "BINANCE", "period_seconds": c.period_seconds, "open_time": c.open_time,
        "open": Decimal(c.open), "high": Decimal(c.high), "low": Decimal(c.low), "close": Decimal(c.close),
        "volume": Decimal(c.volume), "trade_count": c.trade_count, "source": "rest", "batch_id": "b",
        "kafka_topic": "t", "kafka_partition": 0, "kafka_offset": i,
    } for i, c in enumerate(candles)], schema=OHLC_SCHEMA.as_arrow())  # fmt: skip


def trade_rows(ticks: list[Tick]) -> pa.Table:
    return pa.Table.from_pylist([{
        "ticker": t.ticker, "exchange": "BINANCE", "trade_id": t.trade_id, "first_trade_id": t.trade_id,
        "last_trade_id": t.trade_id, "price": Decimal(t.price), "size": Decimal(t.size),
        "exchange_time_ns": t.exchange_time_ns, "trade_time": t.exchange_time_ns // 1000, "source": "rest",
        "batch_id": "b", "kafka_topic": "t", "kafka_partition": 0, "kafka_offset": i,
    } for i, t in enumerate(ticks)], schema=TRADES_SCHEMA.as_arrow())  # fmt: skip


@pytest.fixture
def recorded(data_dir: Path) -> tuple[list[Tick], list[OHLC]]:
    ticks = trades_in(data_dir, START_US, END_US)
    return ticks, candles_from_trades(ticks)


# --- completeness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ([0, 1, 2, 3], []),
        ([0, 3], [TimeRange(M, 3 * M)]),
        ([1, 2], [TimeRange(0, M), TimeRange(3 * M, 4 * M)]),
        ([], [TimeRange(0, 4 * M)]),
    ],
)
def test_missing_candles_are_merged_into_ranges(present: list[int], expected: list[TimeRange]) -> None:
    assert quality.runs_of_missing([p * M for p in present], range(0, 4 * M, M), M) == expected


def test_binance_expects_every_minute_an_exchange_that_omits_empty_candles_only_traded_ones() -> None:
    window = TimeRange(T0, T0 + 10 * M)
    opens = [T0 + i * M for i in (0, 1, 2, 5, 9)]
    binance = quality.missing_candles(opens, window, M, T0 + DAY_US, quality.facts_for("BINANCE"))
    assert binance == [TimeRange(T0 + 3 * M, T0 + 5 * M), TimeRange(T0 + 6 * M, T0 + 9 * M)]
    coinbase = quality.missing_candles(opens, window, M, T0 + DAY_US, quality.facts_for("COINBASE"),
                                       traded_periods={T0 + 1 * M, T0 + 7 * M})  # fmt: skip
    assert coinbase == [TimeRange(T0 + 7 * M, T0 + 8 * M)]
    assert str(binance[0]) == "[2024-03-02T00:03:00Z, 2024-03-02T00:05:00Z)"


def test_completeness_of_the_current_day_stops_at_the_newest_candle() -> None:
    today = TimeRange(T0, T0 + DAY_US)
    now = T0 + 600 * M + 30_000_000  # 10:00:30
    opens = [T0 + i * M for i in range(0, 500) if i != 7]  # fetched at 08:20, one hole at 00:07
    assert quality.missing_candles(opens, today, M, now, quality.facts_for("BINANCE")) == [
        TimeRange(T0 + 7 * M, T0 + 8 * M)]
    assert not quality.is_fresh(T0 + 500 * M, today, now, 3600 * 1_000_000)  # 08:20 is 100 min behind 10:00
    assert quality.is_fresh(T0 + 500 * M, today, now, 7200 * 1_000_000)


def test_trade_id_jumps_are_gaps_between_the_neighbouring_trades() -> None:
    ids, times = [10, 11, 12, 20, 21, 25], [100, 200, 300, 900, 950, 990]
    assert quality.trade_id_gaps(ids, times) == [TimeRange(300, 901), TimeRange(950, 991)]


def test_ranges_are_cut_at_midnight() -> None:
    r = TimeRange(T0 - 10 * M, T0 + 5 * M)
    assert quality.split_at_days([r]) == [TimeRange(T0 - 10 * M, T0), TimeRange(T0, T0 + 5 * M)]


# --- validity ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: replace(c, high=str(Decimal(max(c.open, c.close, key=Decimal)) - 1)), "< max(open, close)"),
        (lambda c: replace(c, low=str(Decimal(min(c.open, c.close, key=Decimal)) + 1)), "> min(open, close)"),
        (lambda c: replace(c, volume="-0.5"), "volume -0.500000000000000000 < 0"),
    ],
)
def test_candle_validity_names_the_candle_and_the_rule(recorded: tuple[list[Tick], list[OHLC]], change,
                                                       named: str) -> None:  # fmt: skip
    _, candles = recorded
    assert quality.candle_violations(candle_rows(candles)) == []
    bad = candle_rows([*candles[:-1], change(candles[-1])])
    [violation] = quality.candle_violations(bad)
    assert violation.startswith(f"{BTC} 60s candle {quality.iso(candles[-1].open_time)}: ")
    assert named in violation


def test_duplicate_candles_and_trades_are_violations(recorded: tuple[list[Tick], list[OHLC]]) -> None:
    ticks, candles = recorded
    assert quality.candle_violations(candle_rows([*candles, candles[2]])) == [
        f"{BTC} 60s candle {quality.iso(candles[2].open_time)}: appears 2 times"]
    assert quality.trade_violations(trade_rows(ticks)) == []
    [dup] = quality.trade_violations(trade_rows([*ticks, ticks[5]]))
    assert dup.endswith(f"trade {ticks[5].trade_id} at {quality.iso(ticks[5].exchange_time_ns // 1000)}: appears 2 times")


# --- reconciliation ---------------------------------------------------------------------------


def test_candles_built_from_the_same_trades_reconcile_and_a_changed_close_does_not(
    recorded: tuple[list[Tick], list[OHLC]],
) -> None:
    ticks, candles = recorded
    ok = quality.reconcile(candle_rows(candles), trade_rows(ticks), 60)
    assert (ok.compared, ok.mismatches) == (len(candles), [])
    off = replace(candles[3], close=candles[3].high)
    bad = quality.reconcile(candle_rows([*candles[:3], off, *candles[4:]]), trade_rows(ticks), 60)
    assert bad.mismatches == [f"candle {quality.iso(off.open_time)}: close {Decimal(off.close):.18f} vs "
                              f"{Decimal(candles[3].close):.18f} (kline vs trades)"]  # fmt: skip


def test_reconciliation_without_trades_compares_nothing(recorded: tuple[list[Tick], list[OHLC]]) -> None:
    _, candles = recorded
    assert quality.reconcile(candle_rows(candles), trade_rows([]), 60) == quality.Reconciliation(0, [])


# --- the asset checks, in-process on the real path ---------------------------------------------


def test_checks_reconcile_a_day_of_klines_with_its_trades_and_find_tampering_and_missing_trades(
    inproc: InProcessPlatform,  # noqa: F811 - the fixture imported above
) -> None:
    assert inproc.materialize(0, "2024-08-08", "2024-08-08").success
    candles = inproc.materialize(60, "2024-08-08", "2024-08-08")
    assert candles.success
    checked = evaluations(candles)
    assert all(e.passed for e in checked.values()), checked
    assert checked["reconciliation"].metadata["compared"].value == 1440

    # Tamper with one kline (still a valid candle) and cut ten minutes out of the trades.
    catalog = load_catalog(inproc.settings)
    noon = AUG_8 + 720 * M
    table = ohlc_table(catalog)
    row = _candle_at(table, noon)
    tampered = {**row, "close": row["high"]}
    write_ohlc_batch(table, pa.Table.from_pylist([tampered], schema=OHLC_SCHEMA.as_arrow()), BTC, 60, noon,
                     noon + M, {})  # fmt: skip
    trades_table(catalog).delete(And(EqualTo("ticker", literal(BTC)), And(
        GreaterThanOrEqual("trade_time", literal(AUG_8 + 60 * M)), LessThan("trade_time", literal(AUG_8 + 70 * M)))))

    run = inproc.run(CHECKS_JOB)
    reconciliation = evaluations(run)["reconciliation"]
    assert not reconciliation.passed
    mismatches = reconciliation.metadata["mismatches"].value
    assert f"{BTC} candle 2024-08-08T12:00:00Z: close {row['high']} vs {row['close']} (kline vs trades)" in mismatches
    assert all("2024-08-08T01:0" in m or "12:00:00" in m for m in mismatches), mismatches  # the cut: no trades
    trades_completeness = evaluations(run, period=0)["completeness"]
    assert not trades_completeness.passed
    [missing] = trades_completeness.metadata["missing_ranges"].value
    assert missing.startswith(f"{BTC} [2024-08-08T00:59:") and "2024-08-08T01:10:" in missing
    [gap] = [g for g in gaps.read_gaps(catalog) if g.data_type == "trades"]
    assert (gap.status, gap.gap_start < AUG_8 + 60 * M, gap.gap_end > AUG_8 + 70 * M) == ("open", True, True)


def _candle_at(table: Table, open_us: int) -> dict[str, Any]:
    rows = table.scan(row_filter=f"ticker == '{BTC}' and period_seconds == 60").to_arrow().to_pylist()
    return next(r for r in rows if int(r["open_time"].timestamp() * 1_000_000) == open_us)
