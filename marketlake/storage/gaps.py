"""`market.gaps`: every gap found in the data, how it was found, and when and how it was repaired.

A row says where (ticker, data type, period, [gap_start, gap_end)), when and how
it was found (`detected_by`: "completeness_check" from the asset checks; the live
ingestors' sequence gaps use their own name), and its repair (`status`, when,
by which Dagster run, how). The gap repair sensor reads the open rows; a repair
run marks its row repaired. A range found missing again after a repair is not
reopened: it is recorded as "unresolved" (the exchange cannot supply it), so
repair never loops.

The table is small and written rarely (one commit per check that finds gaps,
one per repair), so it is unpartitioned.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import EqualTo, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import IntegerType, LongType, NestedField, StringType, TimestamptzType

from marketlake.storage.iceberg_tables import NAMESPACE, _ensure_table

GAPS_TABLE = f"{NAMESPACE}.gaps"

OPEN, REPAIRED, UNRESOLVED = "open", "repaired", "unresolved"
COMPLETENESS_CHECK = "completeness_check"

GAPS_SCHEMA = Schema(
    NestedField(1, "gap_id", StringType(), required=True),
    NestedField(2, "ticker", StringType(), required=True),
    NestedField(3, "exchange", StringType(), required=True),
    NestedField(4, "data_type", StringType(), required=True),  # "ohlc" | "trades"
    NestedField(5, "period_seconds", IntegerType(), required=True),  # 0 for trades
    NestedField(6, "gap_start", TimestamptzType(), required=True),
    NestedField(7, "gap_end", TimestamptzType(), required=True),  # exclusive
    NestedField(8, "missing_count", LongType(), required=False),  # rows missing, when knowable
    NestedField(9, "detected_at", TimestamptzType(), required=True),
    NestedField(10, "detected_by", StringType(), required=True),
    NestedField(11, "detection_run_id", StringType(), required=False),
    NestedField(12, "status", StringType(), required=True),  # open | repaired | unresolved
    NestedField(13, "repaired_at", TimestamptzType(), required=False),
    NestedField(14, "repaired_by", StringType(), required=False),  # the repair run's id
    NestedField(15, "repair_method", StringType(), required=False),  # "rest"
    NestedField(16, "detail", StringType(), required=False),
)


class GapNotFoundError(LookupError):
    """No row of market.gaps has this gap id."""


@dataclass(frozen=True, slots=True)
class Gap:
    """One row of market.gaps; times are µs since the epoch, UTC."""

    gap_id: str
    ticker: str
    exchange: str
    data_type: str
    period_seconds: int
    gap_start: int
    gap_end: int
    detected_at: int
    detected_by: str
    status: str = OPEN
    missing_count: int | None = None
    detection_run_id: str | None = None
    repaired_at: int | None = None
    repaired_by: str | None = None
    repair_method: str | None = None
    detail: str | None = None

    def same_place(self, other: Gap) -> bool:
        return (self.ticker, self.data_type, self.period_seconds, self.gap_start, self.gap_end) == (
            other.ticker, other.data_type, other.period_seconds, other.gap_start, other.gap_end)  # fmt: skip


def new_gap_id() -> str:
    return f"gap-{uuid.uuid4().hex[:16]}"


def gaps_table(catalog: SqlCatalog) -> Table:
    """`market.gaps`, created if missing."""
    return _ensure_table(catalog, GAPS_TABLE, GAPS_SCHEMA, PartitionSpec())


def _us(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1_000_000)


def read_gaps(catalog: SqlCatalog) -> list[Gap]:
    """Every gap, oldest detection first (empty when the table does not exist yet)."""
    try:
        table = catalog.load_table(GAPS_TABLE)
    except NoSuchTableError:
        return []
    rows = table.scan().to_arrow().to_pylist()
    for row in rows:
        for name in ("gap_start", "gap_end", "detected_at", "repaired_at"):
            row[name] = _us(row[name])
    return sorted((Gap(**row) for row in rows), key=lambda g: (g.detected_at, g.gap_id))


def open_gaps(catalog: SqlCatalog) -> list[Gap]:
    return [g for g in read_gaps(catalog) if g.status == OPEN]


def _arrow(gaps: Sequence[Gap]) -> pa.Table:
    return pa.Table.from_pylist([asdict(g) for g in gaps], schema=GAPS_SCHEMA.as_arrow())


def record_gaps(catalog: SqlCatalog, found: Sequence[Gap]) -> list[Gap]:
    """Add the gaps not already known, in one commit; returns the row that stands for each one found.

    A gap already open at the same place is that row. One already repaired there is found again
    after its repair, so it is recorded as UNRESOLVED (the sensor repairs only OPEN rows).
    """
    if not found:
        return []
    known = read_gaps(catalog)
    result: list[Gap] = []
    new: list[Gap] = []
    for gap in found:
        same = [k for k in (*known, *new) if k.same_place(gap)]
        if any(k.status in (OPEN, UNRESOLVED) for k in same):
            result.append(next(k for k in same if k.status in (OPEN, UNRESOLVED)))
            continue
        if same:  # repaired before and missing again
            gap = replace(gap, status=UNRESOLVED, detail=f"missing again after repair {same[-1].gap_id}")
        new.append(gap)
        result.append(gap)
    if new:
        gaps_table(catalog).append(_arrow(new))
    return result


def record_once(catalog: SqlCatalog, found: Sequence[Gap]) -> list[Gap]:
    """Append the gaps whose gap_id is not in the table yet (ids derived from their source make this idempotent)."""
    known = {g.gap_id for g in read_gaps(catalog)}
    new = [g for g in found if g.gap_id not in known]
    if new:
        gaps_table(catalog).append(_arrow(new))
    return new


def mark_repaired(catalog: SqlCatalog, gap_id: str, run_id: str, method: str, at_us: int) -> Gap:
    """Set the gap's status to repaired, with when, by which run and how (one atomic overwrite of its row)."""
    table = gaps_table(catalog)
    where = EqualTo(term=Reference("gap_id"), value=literal(gap_id))
    rows = [g for g in read_gaps(catalog) if g.gap_id == gap_id]
    if not rows:
        raise GapNotFoundError(f"no gap {gap_id!r} in {GAPS_TABLE}")
    repaired = replace(rows[0], status=REPAIRED, repaired_at=at_us, repaired_by=run_id, repair_method=method)
    with warnings.catch_warnings():  # pyiceberg warns when a delete rewrites nothing; here it always matches
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        table.overwrite(_arrow([repaired]), overwrite_filter=where)
    return repaired
