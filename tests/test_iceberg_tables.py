"""The Iceberg store on a real SQLite catalog in a tmp dir: exact decimals, idempotent overwrite, Kafka coverage."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from msgspec.structs import replace
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.transforms import DayTransform, IdentityTransform, MonthTransform

from live_relay.messages import OHLC
from marketlake.settings import Settings
from marketlake.storage import iceberg_tables as it
from marketlake.storage.batches import BatchRange, BatchRecord, assemble_batch, ohlc_arrow_table, trades_arrow_table
from tests.history_fixtures import END_US, MINUTE_US, START_US, TICKER, batch_records, candles_from_trades, trades_in

TOPIC = "t.history"


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalog:
    return it.open_catalog("test", f"sqlite:///{tmp_path / 'catalog.db'}", f"file://{tmp_path / 'warehouse'}")


def as_arrow(rows: list[OHLC], period: int, first_offset: int = 100, **kwargs: object) -> tuple[pa.Table, dict]:
    """The Arrow table and snapshot summary of a batch placed at Kafka offsets first_offset..."""
    records = batch_records(rows, period_seconds=period, **kwargs)  # type: ignore[arg-type]
    location = BatchRange(TOPIC, 3, first_offset, first_offset + len(records) - 1, records[0].batch_id)
    batch = assemble_batch(location, [BatchRecord(first_offset + i, r) for i, r in enumerate(records)])
    table = trades_arrow_table(batch) if period == 0 else ohlc_arrow_table(batch)
    summary = it.kafka_snapshot_summary(TOPIC, 3, location.start_offset, location.end_offset,
                                        records[0].batch_id, records[0].request_id)  # fmt: skip
    return table, summary


def sorted_rows(table: pa.Table, key: str) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: r[key])


def test_tables_are_created_with_partition_specs_and_commit_properties(catalog: SqlCatalog) -> None:
    ohlc, trades = it.ohlc_table(catalog), it.trades_table(catalog)
    assert [(f.transform, ohlc.schema().find_field(f.source_id).name) for f in ohlc.spec().fields] == [
        (MonthTransform(), "open_time"), (IdentityTransform(), "ticker")]  # fmt: skip
    assert [(f.transform, trades.schema().find_field(f.source_id).name) for f in trades.spec().fields] == [
        (DayTransform(), "trade_time"), (IdentityTransform(), "ticker")]  # fmt: skip
    for table in (ohlc, trades):
        assert {k: table.properties[k] for k in it.TABLE_PROPERTIES} == it.TABLE_PROPERTIES
    assert it.ohlc_table(catalog).metadata.table_uuid == ohlc.metadata.table_uuid  # loaded, not re-created


def test_load_catalog_from_settings_creates_its_directories(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    catalog = it.load_catalog(settings)
    it.ohlc_table(catalog)
    assert (tmp_path / "home" / "iceberg" / "catalog.db").is_file()
    assert (tmp_path / "home" / "iceberg" / "warehouse").is_dir()
    assert catalog.name == settings.catalog_name and ("market",) in catalog.list_namespaces()


def test_ohlc_decimal_strings_round_trip_exactly(catalog: SqlCatalog) -> None:
    extremes = ["0.000000000000000001", "99999999999999999999.999999999999999999", "61234.56000000", "1E-7", "0"]
    rows = [
        OHLC(ticker=TICKER, period_seconds=60, open_time=START_US + i * MINUTE_US, open=v, high=v, low=v, close=v,
             volume=v, quote_volume=v, taker_buy_volume=v, taker_buy_quote_volume=v, trade_count=i)
        for i, v in enumerate(extremes)
    ]  # fmt: skip
    table = it.ohlc_table(catalog)
    arrow, summary = as_arrow(rows, 60)
    it.write_ohlc_batch(table, arrow, TICKER, 60, START_US, END_US, summary)
    back = sorted_rows(table.scan().to_arrow(), "open_time")
    columns = ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume")
    assert [[r[c] for c in columns] for r in back] == [[Decimal(v)] * len(columns) for v in extremes]


def test_overwrite_of_the_same_range_twice_leaves_identical_rows(catalog: SqlCatalog, data_dir: Path) -> None:
    candles = candles_from_trades(trades_in(data_dir, START_US, END_US))
    table = it.ohlc_table(catalog)
    arrow, summary = as_arrow(candles, 60)
    first = it.write_ohlc_batch(table, arrow, TICKER, 60, START_US, END_US, summary)
    rows_after_first = sorted_rows(table.scan().to_arrow(), "open_time")
    second = it.write_ohlc_batch(table, arrow, TICKER, 60, START_US, END_US, summary)
    rows_after_second = sorted_rows(table.scan().to_arrow(), "open_time")
    assert first.row_count == second.row_count == len(candles) == 5
    assert rows_after_second == rows_after_first
    assert len({r["open_time"] for r in rows_after_second}) == len(rows_after_second) == 5
    assert second.snapshot_id == table.current_snapshot().snapshot_id != first.snapshot_id


def test_overwrite_replaces_only_its_own_ticker_period_and_range(catalog: SqlCatalog, data_dir: Path) -> None:
    candles = candles_from_trades(trades_in(data_dir, START_US, END_US))
    table = it.ohlc_table(catalog)
    arrow, summary = as_arrow(candles, 60)
    it.write_ohlc_batch(table, arrow, TICKER, 60, START_US, END_US, summary)
    # A later batch for the last two minutes only, with different closes: the first three stay.
    changed = [replace(c, close=c.low) for c in candles[3:]]
    arrow2, summary2 = as_arrow(changed, 60, first_offset=200, start_us=START_US + 3 * MINUTE_US)
    it.write_ohlc_batch(table, arrow2, TICKER, 60, START_US + 3 * MINUTE_US, END_US, summary2)
    back = sorted_rows(table.scan().to_arrow(), "open_time")
    assert [r["close"] for r in back] == [Decimal(c.close) for c in candles[:3]] + [Decimal(c.low) for c in candles[3:]]
    assert [r["kafka_offset"] for r in back][:3] == [101, 101, 101] and back[3]["kafka_offset"] == 201


def test_snapshot_summary_records_the_kafka_offsets_of_each_write(catalog: SqlCatalog, data_dir: Path) -> None:
    candles = candles_from_trades(trades_in(data_dir, START_US, END_US))
    table = it.ohlc_table(catalog)
    arrow, summary = as_arrow(candles, 60, first_offset=40, batch_id="batch-a", request_id="req-a")
    written = it.write_ohlc_batch(table, arrow, TICKER, 60, START_US, END_US, summary)
    again = it.write_ohlc_batch(table, arrow, TICKER, 60, START_US, END_US, summary)
    coverage = it.kafka_coverage(table)
    assert [(c.topic, c.partition, c.start_offset, c.end_offset, c.batch_id, c.request_id) for c in coverage] == [
        (TOPIC, 3, 40, 42, "batch-a", "req-a")] * 2  # fmt: skip
    assert [c.snapshot_id for c in coverage] == [written.snapshot_id, again.snapshot_id]
    props = table.snapshot_by_id(written.snapshot_id).summary.additional_properties
    assert props["marketlake.kafka.start_offset"] == "40" and props["marketlake.kafka.end_offset"] == "42"


def test_trades_keep_exchange_ids_nanosecond_times_and_decimals(catalog: SqlCatalog, data_dir: Path) -> None:
    ticks = trades_in(data_dir, START_US, END_US)
    table = it.trades_table(catalog)
    arrow, summary = as_arrow(ticks, 0, per_record=500)
    it.write_trades_batch(table, arrow, TICKER, START_US, END_US, summary)
    it.write_trades_batch(table, arrow, TICKER, START_US, END_US, summary)
    back = sorted_rows(table.scan().to_arrow(), "exchange_time_ns")
    assert len(back) == len(ticks) > 1000
    by_id = {r["trade_id"]: r for r in back}
    assert len(by_id) == len(ticks)
    for t in ticks:
        row = by_id[t.trade_id]
        assert (row["price"], row["size"], row["exchange_time_ns"], row["buyer_is_maker"]) == (
            Decimal(t.price), Decimal(t.size), t.exchange_time_ns, t.buyer_is_maker)  # fmt: skip
        assert int(row["receive_time"].timestamp() * 1_000_000) == t.receive_time_ns // 1000


def test_empty_batch_still_commits_its_kafka_range(catalog: SqlCatalog) -> None:
    table = it.ohlc_table(catalog)
    arrow, summary = as_arrow([], 60, first_offset=7)
    written = it.write_ohlc_batch(table, arrow, TICKER, 60, START_US, END_US, summary)
    assert written.row_count == 0 and table.scan().to_arrow().num_rows == 0
    assert [(c.start_offset, c.end_offset, c.snapshot_id) for c in it.kafka_coverage(table)] == [
        (7, 8, written.snapshot_id)]  # fmt: skip
