"""The live stream's rows in Iceberg: trades, tick-built candles, book snapshots and heatmaps.

Live records come from Kafka at least once (a run retried after a crash reads
its offsets again; a record produced again after a delivery timeout may be in
the topic twice), so every write here is an insert of the rows whose key is not
in the table yet, in ONE append per table:

  market.trades          (ticker, trade_id)                      source "websocket"
  market.ohlc            (ticker, period_seconds, open_time)     source "websocket"
  market.book_snapshots  (ticker, snapshot_time, side, level)    new here
  market.heatmap         (ticker, snapshot_time, price)          new here

The key lookup reads only the ticker's rows in the batch's time range (files are
pruned by partition and column bounds). A row already present wins: a REST row
of the same trade or candle is kept, and a later REST batch overwrites its range
as it always does.

REST history is authoritative where it has been written. Keys alone cannot say
so for trades: Binance's REST history is aggTrades (ids of aggregated trades)
while its websocket sends raw trades (other ids, other granularity), so the same
market activity would be stored twice. The rule, for tables with a `source`
column: a live row is dropped when its time lies within the span [first, last]
of the REST rows (any source but "websocket") the table holds for that ticker in
the batch's time range. A REST batch writes every trade of its range, so a live
trade inside that span is one REST already has; after the span, live rows fill
in until the next REST batch overwrites them.

The Kafka offsets each append covers go into its snapshot summary
(`marketlake.live.offsets`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThanOrEqual, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import DoubleType, IntegerType, LongType, NestedField, StringType, TimestamptzType

from marketlake.storage.iceberg_tables import NAMESPACE, PRICE, _ensure_table, _kafka_fields

BOOK_SNAPSHOTS_TABLE = f"{NAMESPACE}.book_snapshots"
HEATMAP_TABLE = f"{NAMESPACE}.heatmap"
SUMMARY_LIVE_OFFSETS = "marketlake.live.offsets"
LIVE_SOURCE = "websocket"  # the source of every live row (marketlake/storage/live_rows.py)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TRADES_KEY = ("ticker", "trade_id")
OHLC_KEY = ("ticker", "period_seconds", "open_time")
BOOK_SNAPSHOTS_KEY = ("ticker", "snapshot_time", "side", "level")
HEATMAP_KEY = ("ticker", "snapshot_time", "price")

BOOK_SNAPSHOTS_SCHEMA = Schema(
    NestedField(1, "ticker", StringType(), required=True),
    NestedField(2, "exchange", StringType(), required=True),
    NestedField(3, "snapshot_time", TimestamptzType(), required=True),  # the sampling grid time
    NestedField(4, "side", StringType(), required=True),  # "bid" | "ask"
    NestedField(5, "level", IntegerType(), required=True),  # 0 = best
    NestedField(6, "price", PRICE, required=True),
    NestedField(7, "size", PRICE, required=True),
    NestedField(8, "update_id", LongType(), required=False),  # the exchange sequence the book reflected
    NestedField(9, "receive_time", TimestamptzType(), required=False),  # when the update that made it due arrived
    *_kafka_fields(10),
)
HEATMAP_SCHEMA = Schema(
    NestedField(1, "ticker", StringType(), required=True),
    NestedField(2, "exchange", StringType(), required=True),
    NestedField(3, "snapshot_time", TimestamptzType(), required=True),
    NestedField(4, "bucket_size", PRICE, required=True),
    NestedField(5, "price", PRICE, required=True),  # the bucket's lower bound
    NestedField(6, "bid_size", PRICE, required=True),
    NestedField(7, "ask_size", PRICE, required=True),
    NestedField(8, "intensity", DoubleType(), required=True),  # bucket volume / the frame's largest, 0-1
    *_kafka_fields(9),
)


def _by_day_and_ticker(time_field_id: int, name: str) -> PartitionSpec:
    return PartitionSpec(
        PartitionField(source_id=time_field_id, field_id=1000, transform=DayTransform(), name=name),
        PartitionField(source_id=1, field_id=1001, transform=IdentityTransform(), name="ticker"),
    )


def book_snapshots_table(catalog: SqlCatalog) -> Table:
    """`market.book_snapshots`, created if missing (partitioned by day(snapshot_time), ticker)."""
    return _ensure_table(catalog, BOOK_SNAPSHOTS_TABLE, BOOK_SNAPSHOTS_SCHEMA, _by_day_and_ticker(3, "snapshot_day"))


def heatmap_table(catalog: SqlCatalog) -> Table:
    """`market.heatmap`, created if missing (partitioned by day(snapshot_time), ticker)."""
    return _ensure_table(catalog, HEATMAP_TABLE, HEATMAP_SCHEMA, _by_day_and_ticker(3, "snapshot_day"))


def _keys(rows: pa.Table, key: Sequence[str]) -> list[tuple[object, ...]]:
    return list(zip(*(rows.column(k).to_pylist() for k in key), strict=True))


def new_rows(table: Table, rows: pa.Table, key: Sequence[str], time_column: str) -> pa.Table:
    """`rows` (in `table`'s schema) without duplicates among themselves, without keys already in `table`, and
    (tables with a `source` column) without rows inside the time span of the REST rows stored for their ticker."""
    if rows.num_rows == 0:
        return rows
    has_source = "source" in table.schema().column_names
    columns = tuple(dict.fromkeys([*key, time_column, *(["source"] if has_source else [])]))
    existing: set[tuple[object, ...]] = set()
    rest_span: dict[str, tuple[int, int]] = {}
    for ticker in pc.unique(rows.column("ticker")).to_pylist():
        times = rows.filter(pc.equal(rows.column("ticker"), ticker)).column(time_column)
        low, high = pc.min(times).value, pc.max(times).value
        where = And(EqualTo(term=Reference("ticker"), value=literal(ticker)),
                    And(GreaterThanOrEqual(term=Reference(time_column), value=literal(_micros(low))),
                        LessThanOrEqual(term=Reference(time_column), value=literal(_micros(high)))))  # fmt: skip
        stored = table.scan(row_filter=where, selected_fields=columns).to_arrow()
        existing.update(_keys(stored, key))
        if has_source:
            rest_times = stored.filter(pc.not_equal(stored.column("source"), LIVE_SOURCE)).column(time_column)
            if len(rest_times):
                rest_span[ticker] = (_micros(pc.min(rest_times).as_py()), _micros(pc.max(rest_times).as_py()))
    keep: list[bool] = []
    row_times = [_micros(t) for t in rows.column(time_column).to_pylist()]
    for k, ticker, at in zip(_keys(rows, key), rows.column("ticker").to_pylist(), row_times, strict=True):
        span = rest_span.get(ticker)
        keep.append(k not in existing and not (span is not None and span[0] <= at <= span[1]))
        existing.add(k)  # a second copy of a key in the same batch is dropped too
    return rows.filter(pa.array(keep, type=pa.bool_()))


def _micros(value: object) -> int:
    """A timestamp scalar's value in µs since the epoch (Arrow gives aware datetime objects)."""
    if isinstance(value, datetime):
        delta = value - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return int(value)  # type: ignore[call-overload]


def append_new(table: Table, rows: pa.Table, key: Sequence[str], time_column: str, offsets: dict[str, dict[str, int]]) -> int:
    """Append the rows whose key `table` does not hold yet, in one commit; returns how many were new.

    `offsets` ({topic: {partition: next offset}}) is recorded in the snapshot summary of the append.
    """
    fresh = new_rows(table, rows.cast(table.schema().as_arrow()), key, time_column)
    if fresh.num_rows:
        table.append(fresh, snapshot_properties={SUMMARY_LIVE_OFFSETS: json.dumps(offsets, sort_keys=True)})
    return fresh.num_rows
