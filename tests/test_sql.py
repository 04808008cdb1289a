"""Analyst SQL: DuckDB views over a real SQLite Iceberg catalog in a temporary directory."""

from __future__ import annotations

import csv
import io
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from pyiceberg.expressions import EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform, MonthTransform
from pyiceberg.types import DecimalType, LongType, NestedField, StringType, TimestamptzType

from marketlake import sql
from marketlake.settings import Settings
from marketlake.storage.iceberg_tables import load_catalog

BTC = "BINANCE:BTC/USDT"
ETH = "BINANCE:ETH/USDT"
TINY = "0.000000000000000001"
HUGE = "12345678901234567890.123456789012345678"  # 38 digits: the full precision of decimal(38,18)

SCHEMA = Schema(
    NestedField(1, "ticker", StringType(), required=True),
    NestedField(2, "open_time", TimestamptzType(), required=True),
    NestedField(3, "open", DecimalType(38, 18), required=True),
    NestedField(4, "close", DecimalType(38, 18), required=True),
    NestedField(5, "trade_count", LongType(), required=False),
)
SPEC = PartitionSpec(
    PartitionField(source_id=2, field_id=1000, transform=MonthTransform(), name="open_time_month"),
    PartitionField(source_id=1, field_id=1001, transform=IdentityTransform(), name="ticker"),
)


def _rows(table: Table, rows: list[tuple[str, datetime, str, str, int | None]]) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    data = pa.table(
        {
            "ticker": list(columns[0]),
            "open_time": list(columns[1]),
            "open": [Decimal(v) for v in columns[2]],
            "close": [Decimal(v) for v in columns[3]],
            "trade_count": list(columns[4]),
        }
    )
    return data.cast(table.schema().as_arrow())


def _day(month: int, day: int) -> datetime:
    return datetime(2024, month, day, tzinfo=UTC)


BASE_ROWS = [
    (BTC, _day(1, 1), "42000.10", "42100.5", 10),
    (BTC, _day(1, 2), "42100.5", HUGE, 20),
    (BTC, _day(2, 1), "43000", "43000.000000000000000001", None),
    (ETH, _day(1, 1), "2200.25", TINY, 5),
    (ETH, _day(2, 15), "2300", "2310.75", 7),
]


@pytest.fixture
def lake(tmp_path: Path) -> tuple[Settings, Table]:
    home = tmp_path / "home"
    settings = Settings(
        home=home,
        catalog_name="marketlake",
        catalog_uri=f"sqlite:///{home / 'iceberg' / 'catalog.db'}",
        warehouse=f"file://{home / 'iceberg' / 'warehouse'}",
    )
    table = load_catalog(settings).create_table("market.ohlc", schema=SCHEMA, partition_spec=SPEC)
    table.append(_rows(table, BASE_ROWS))
    return settings, table


def _scalar(con: duckdb.DuckDBPyConnection, query: str) -> object:
    row = con.sql(query).fetchone()
    assert row is not None
    return row[0]


def test_iceberg_extension_is_loaded_from_extension_dir_under_home(lake: tuple[Settings, Table]) -> None:
    settings, _ = lake
    with sql.connect(settings) as con:
        paths = dict(con.sql(
            "SELECT extension_name, install_path FROM duckdb_extensions() WHERE loaded AND extension_name IN "
            "('iceberg', 'avro')"
        ).fetchall())  # fmt: skip
    assert set(paths) == {"iceberg", "avro"}
    assert all(p.startswith(str(settings.home / "duckdb" / "extensions")) for p in paths.values())


def test_view_counts_rows_per_ticker(lake: tuple[Settings, Table]) -> None:
    settings, _ = lake
    result = sql.run_query(settings, "SELECT ticker, count(*) AS n FROM market.ohlc GROUP BY ticker ORDER BY ticker")
    assert result.to_pylist() == [{"ticker": BTC, "n": 3}, {"ticker": ETH, "n": 2}]


def test_min_max_of_time_and_prices(lake: tuple[Settings, Table]) -> None:
    settings, _ = lake
    row = sql.run_query(
        settings, "SELECT min(open_time) AS first, max(open_time) AS last, min(open) AS lo, max(close) AS hi "
        "FROM market.ohlc",
    ).to_pylist()[0]  # fmt: skip
    assert row == {"first": _day(1, 1), "last": _day(2, 15), "lo": Decimal("2200.25"), "hi": Decimal(HUGE)}


def test_decimal_prices_are_exact(lake: tuple[Settings, Table]) -> None:
    settings, _ = lake
    result = sql.run_query(settings, "SELECT close FROM market.ohlc WHERE close IN "
                           f"('{TINY}', '{HUGE}', '43000.000000000000000001') ORDER BY close")  # fmt: skip
    assert pa.types.is_decimal(result.schema.field("close").type)
    assert result.column("close").to_pylist() == [Decimal(TINY), Decimal("43000.000000000000000001"), Decimal(HUGE)]


def test_where_on_ticker_reads_only_that_tickers_files(lake: tuple[Settings, Table]) -> None:
    settings, table = lake
    eth_files = [task.file.file_path for task in table.scan(row_filter=EqualTo("ticker", ETH)).plan_files()]
    assert len(eth_files) == 2  # one per month partition
    for uri in eth_files:
        Path(sql.metadata_path(uri)).unlink()
    # With ETH's files gone, a BTC query can only succeed if the scan pruned ETH's partitions.
    # (Read values, not count(*): DuckDB may answer a bare count from the manifests' record counts.)
    btc = sql.run_query(settings, f"SELECT close FROM market.ohlc WHERE ticker = '{BTC}' ORDER BY open_time")
    assert btc.column("close").to_pylist() == [Decimal(r[3]) for r in BASE_ROWS if r[0] == BTC]
    with pytest.raises(sql.QueryError, match="ETH"):
        sql.run_query(settings, "SELECT close FROM market.ohlc")


def test_append_after_connect_is_seen_after_reconnect(lake: tuple[Settings, Table]) -> None:
    settings, table = lake
    with sql.connect(settings) as pinned:
        assert _scalar(pinned, "SELECT count(*) FROM market.ohlc") == 5
        table.append(_rows(table, [(ETH, _day(3, 1), "2400", "2401", 3)]))
        assert _scalar(pinned, "SELECT count(*) FROM market.ohlc") == 5  # the view pins its snapshot
        sql.refresh_views(pinned, settings)
        assert _scalar(pinned, "SELECT count(*) FROM market.ohlc") == 6
    with sql.connect(settings) as fresh:
        assert _scalar(fresh, f"SELECT count(*) FROM market.ohlc WHERE ticker = '{ETH}'") == 3


def test_table_without_snapshot_is_an_empty_view_with_its_columns(lake: tuple[Settings, Table]) -> None:
    settings, _ = lake
    load_catalog(settings).create_table("market.trades_empty", schema=SCHEMA)
    with sql.connect(settings) as con:
        relation = con.sql("SELECT * FROM market.trades_empty")
        assert relation.columns == ["ticker", "open_time", "open", "close", "trade_count"]
        assert [str(t) for t in relation.types] == [
            "VARCHAR", "TIMESTAMP WITH TIME ZONE", "DECIMAL(38,18)", "DECIMAL(38,18)", "BIGINT",
        ]  # fmt: skip
        assert relation.fetchall() == []


def test_bad_sql_raises_query_error_with_duckdb_message(lake: tuple[Settings, Table]) -> None:
    settings, _ = lake
    with pytest.raises(sql.QueryError, match="no_such_column") as info:
        sql.run_query(settings, "SELECT no_such_column FROM market.ohlc")
    assert isinstance(info.value.cause, duckdb.BinderException)
    assert "SELECT no_such_column FROM market.ohlc" in str(info.value)
    with pytest.raises(sql.QueryError, match="syntax error"):
        sql.run_query(settings, "SELEC 1")


def test_csv_format_has_header_and_exact_values(lake: tuple[Settings, Table]) -> None:
    settings, _ = lake
    result = sql.run_query(settings, f"SELECT ticker, close, trade_count FROM market.ohlc WHERE ticker = '{ETH}' "
                           "ORDER BY open_time")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(sql.format_result(result, "csv"))))
    assert [(r["ticker"], Decimal(r["close"]), r["trade_count"]) for r in rows] == [
        (ETH, Decimal(TINY), "5"), (ETH, Decimal("2310.75"), "7"),
    ]  # fmt: skip


def test_json_format_is_array_of_rows_with_decimals_as_strings(lake: tuple[Settings, Table]) -> None:
    settings, _ = lake
    result = sql.run_query(settings, f"SELECT open_time, close, trade_count FROM market.ohlc "
                           f"WHERE ticker = '{BTC}' ORDER BY open_time")  # fmt: skip
    rows = json.loads(sql.format_result(result, "json"))
    assert [Decimal(r["close"]) for r in rows] == [Decimal("42100.5"), Decimal(HUGE), Decimal("43000.000000000000000001")]
    assert rows[0]["open_time"] == "2024-01-01T00:00:00+00:00"
    assert [r["trade_count"] for r in rows] == [10, 20, None]


def test_table_format_shows_every_digit_and_row_count(lake: tuple[Settings, Table]) -> None:
    settings, _ = lake
    result = sql.run_query(settings, f"SELECT ticker, close FROM market.ohlc WHERE close = '{HUGE}'")
    text = sql.format_result(result, "table", width=200)
    assert BTC in text and "12345678901234567890.123456789012345678" in text
    assert "1 row" in text
    with pytest.raises(ValueError, match="'xml'"):
        sql.format_result(result, "xml")


def test_shell_runs_statements_and_reports_errors(lake: tuple[Settings, Table]) -> None:
    settings, _ = lake
    script = ".tables\n.refresh\nSELECT count(*) AS n\n  FROM market.ohlc;\nSELECT nope;\n.quit\nSELECT 'never run';\n"
    out = io.StringIO()
    sql.shell(settings, "csv", stdin=io.StringIO(script), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[:8] == ['"schema","name"', '"market","ohlc"', "", "views: ohlc", "marts: (none)", '"n"', "5", ""]
    assert lines[8].startswith("error: BinderException") and "nope" in out.getvalue()
    assert "never run" not in out.getvalue()


def _write_dbt_database(settings: Settings, close: str) -> None:
    """A dbt DuckDB file as dbt-duckdb leaves it: a mart table in schema marts, a staging view beside it."""
    path = sql.dbt_database_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.sql("CREATE SCHEMA IF NOT EXISTS marts; CREATE SCHEMA IF NOT EXISTS staging")
        con.sql(f"CREATE OR REPLACE TABLE marts.daily_ohlcv AS SELECT '{BTC}' AS ticker, DECIMAL(38,18) '{close}' AS close")
        con.sql("CREATE OR REPLACE VIEW staging.stg_market__ohlc AS SELECT 1 AS x")


def test_dbt_marts_are_copied_into_schema_marts_and_the_file_is_left_unlocked(lake: tuple[Settings, Table]) -> None:
    settings, _ = lake
    _write_dbt_database(settings, HUGE)
    with sql.connect(settings) as con:
        assert con.sql("SELECT ticker, close FROM marts.daily_ohlcv").fetchall() == [(BTC, Decimal(HUGE))]
        assert _scalar(con, "SELECT count(*) FROM duckdb_views() WHERE schema_name = 'staging'") == 0
        with duckdb.connect(str(sql.dbt_database_path(settings))) as writer:  # what the next dbt build does
            writer.sql("DROP TABLE marts.daily_ohlcv")
        assert sql.attach_marts(con, settings) == []  # the model is gone: so is its copy
        assert _scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts'") == 0


HOLD_FILE = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""


def test_marts_stay_as_they_were_while_a_dbt_build_holds_the_file(
    lake: tuple[Settings, Table], caplog: pytest.LogCaptureFixture
) -> None:
    settings, _ = lake
    _write_dbt_database(settings, "1.5")
    out = io.StringIO()
    with sql.connect(settings) as con:
        _write_dbt_database(settings, "2.5")  # a build rewrote the mart...
        holder = subprocess.Popen([sys.executable, "-c", HOLD_FILE, str(sql.dbt_database_path(settings))],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "holding\n"  # ...and holds the file
            with caplog.at_level(logging.WARNING, logger="marketlake.sql"):
                assert sql.attach_marts(con, settings) == ["daily_ohlcv"]
            assert "is busy" in caplog.text
            assert _scalar(con, "SELECT close FROM marts.daily_ohlcv") == Decimal("1.5")
        finally:
            holder.communicate("", timeout=30)
        sql.shell(settings, "csv", stdin=io.StringIO(".refresh\nSELECT close FROM marts.daily_ohlcv;\n"), stdout=out)
    assert out.getvalue().splitlines()[1:3] == ["marts: daily_ohlcv", '"close"']
    assert Decimal(out.getvalue().splitlines()[3]) == Decimal("2.5")
