"""Iceberg table maintenance: compact small files and expire old snapshots, never losing a row.

pyiceberg 0.12 has no rewrite-data-files action, so a partition is compacted by overwriting it with
its own rows (one atomic commit; pyiceberg's serializable validation fails the commit instead of
dropping a row if a writer lands in that partition meanwhile). Each compacted partition's rows are
fingerprinted (count + order-independent hash sum) before the rewrite and again from the snapshot the
rewrite made; a difference raises `RowsChangedError`. `expire_snapshots` in 0.12 deletes no files,
so the files only the expired snapshots referenced are deleted here (what Iceberg's Java expiry does).
"""

from __future__ import annotations

import uuid
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce

import duckdb
import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, GreaterThanOrEqual, IsNull, LessThan
from pyiceberg.expressions.literals import literal
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.transforms import DayTransform, HourTransform, IdentityTransform, MonthTransform, YearTransform
from pyiceberg.typedef import Record
from pyiceberg.types import TimestampType, TimestamptzType

MAINTENANCE_KEY = "marketlake.maintenance"  # snapshot summary: which maintenance made this snapshot
MAINTENANCE_ID = "marketlake.maintenance.id"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MaintenanceError(RuntimeError):
    """Maintenance stopped: the message names the table, partition and what was wrong."""


class PartitionChangedError(MaintenanceError):
    """A writer committed to the partition between listing its files and rewriting it: skipped this run."""


class RowsChangedError(MaintenanceError):
    """A rewrite did not give back exactly the rows it read (never expected: the data is left as committed)."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """Row count and an order-independent checksum (sum of row hashes) of a set of rows."""

    rows: int
    checksum: int


@dataclass(frozen=True, slots=True)
class TableState:
    """Counts of the current snapshot, from its summary totals, plus the table's snapshot count."""

    data_files: int
    rows: int
    bytes: int
    snapshots: int
    snapshot_id: int | None


@dataclass(frozen=True, slots=True)
class PartitionCompaction:
    partition: str
    files_before: int
    files_after: int
    rows: int
    snapshot_id: int


@dataclass
class CompactionResult:
    compacted: list[PartitionCompaction] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # partition -> why (a concurrent write)


@dataclass(frozen=True, slots=True)
class ExpiryResult:
    expired_snapshots: int
    deleted_files: int


def fingerprint(rows: pa.Table) -> Fingerprint:
    """Count and checksum of `rows`: equal for the same multiset of rows in any order or file layout."""
    con = duckdb.connect()
    try:
        con.register("fingerprint_rows", rows)
        columns = ", ".join('"' + name.replace('"', '""') + '"' for name in rows.column_names)
        result = con.sql(f"SELECT count(*), coalesce(sum(hash({columns})::HUGEINT), 0) FROM fingerprint_rows").fetchone()
    finally:
        con.close()
    assert result is not None  # an aggregate always returns one row
    return Fingerprint(rows=int(result[0]), checksum=int(result[1]))


def table_state(table: Table) -> TableState:
    snapshot = table.current_snapshot()
    totals = snapshot.summary.additional_properties if snapshot is not None and snapshot.summary else {}
    return TableState(
        data_files=int(totals.get("total-data-files", 0)),
        rows=int(totals.get("total-records", 0)),
        bytes=int(totals.get("total-files-size", 0)),
        snapshots=len(table.metadata.snapshots),
        snapshot_id=snapshot.snapshot_id if snapshot is not None else None,
    )


def _time_bounds(transform: object, value: int) -> tuple[datetime, datetime]:
    """[start, end) of one year / month / day / hour partition value (units since 1970)."""
    if isinstance(transform, YearTransform):
        return datetime(1970 + value, 1, 1, tzinfo=UTC), datetime(1971 + value, 1, 1, tzinfo=UTC)
    if isinstance(transform, MonthTransform):
        (year, month), (next_year, next_month) = divmod(value, 12), divmod(value + 1, 12)
        return datetime(1970 + year, month + 1, 1, tzinfo=UTC), datetime(1970 + next_year, next_month + 1, 1, tzinfo=UTC)
    if isinstance(transform, DayTransform):
        return EPOCH + timedelta(days=value), EPOCH + timedelta(days=value + 1)
    return EPOCH + timedelta(hours=value), EPOCH + timedelta(hours=value + 1)


def partition_filter(table: Table, spec_id: int, partition: Record) -> BooleanExpression:
    """A row filter selecting exactly the rows of one partition (identity and time transforms)."""
    spec, schema = table.specs()[spec_id], table.schema()
    terms: list[BooleanExpression] = []
    for position, part in enumerate(spec.fields):
        source = schema.find_field(part.source_id)
        value = partition[position]
        if value is None:
            terms.append(IsNull(term=source.name))
        elif isinstance(part.transform, IdentityTransform):
            terms.append(EqualTo(term=source.name, value=literal(value)))
        elif isinstance(part.transform, (YearTransform, MonthTransform, DayTransform, HourTransform)) and isinstance(
            source.field_type, (TimestampType, TimestamptzType)
        ):
            start, end = _time_bounds(part.transform, value)
            start_us, end_us = ((t - EPOCH) // timedelta(microseconds=1) for t in (start, end))
            terms.append(GreaterThanOrEqual(term=source.name, value=literal(start_us)))
            terms.append(LessThan(term=source.name, value=literal(end_us)))
        else:
            raise MaintenanceError(f"{table.name()}: cannot compact partition field {part.name} ({part.transform})")
    everything: BooleanExpression = AlwaysTrue()
    return reduce(lambda a, b: And(a, b), terms, everything)


def _snapshot_with(table: Table, key: str, value: str) -> Snapshot:
    for snapshot in reversed(table.metadata.snapshots):
        if snapshot.summary is not None and snapshot.summary.additional_properties.get(key) == value:
            return snapshot
    raise MaintenanceError(f"{table.name()}: no snapshot with {key}={value} after a successful commit")


def _compact_partition(table: Table, spec_id: int, partition: Record, files: list[DataFile]) -> PartitionCompaction:
    spec = table.specs()[spec_id]
    label = spec.partition_to_path(partition, table.schema())
    where = partition_filter(table, spec_id, partition)
    start = table.current_snapshot()
    assert start is not None  # the files came from it
    scan = table.scan(row_filter=where, snapshot_id=start.snapshot_id)
    planned = {task.file.file_path for task in scan.plan_files()}
    if planned != {f.file_path for f in files}:  # a writer changed it since compact_table listed the files
        raise PartitionChangedError(f"{label}: {len(files)} files when listed, {len(planned)} now")
    sort_keys = [(table.schema().find_field(p.source_id).name, "ascending") for p in reversed(spec.fields)]
    rows = scan.to_arrow().cast(table.schema().as_arrow()).sort_by(sort_keys)  # sorted: tight min/max per file
    before = fingerprint(rows)
    operation_id = uuid.uuid4().hex
    with warnings.catch_warnings():  # a partition whose rows are all gone has nothing to delete: fine
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        table.overwrite(rows, overwrite_filter=where,
                        snapshot_properties={MAINTENANCE_KEY: "compaction", MAINTENANCE_ID: operation_id})  # fmt: skip
    made = _snapshot_with(table, MAINTENANCE_ID, operation_id)
    after_scan = table.scan(row_filter=where, snapshot_id=made.snapshot_id)
    after = fingerprint(after_scan.to_arrow().cast(table.schema().as_arrow()))
    if after != before:  # never expected; undo it while nothing has been committed on top
        undone = table.current_snapshot() is not None and table.current_snapshot().snapshot_id == made.snapshot_id  # type: ignore[union-attr]
        if undone:
            table.manage_snapshots().rollback_to_snapshot(start.snapshot_id).commit()
        raise RowsChangedError(f"{table.name()} {label}: compaction read {before}, snapshot {made.snapshot_id} holds "
                               f"{after}; {'rolled back to ' + str(start.snapshot_id) if undone else 'NOT rolled back'}")
    files_after = sum(1 for _ in after_scan.plan_files())
    return PartitionCompaction(label, len(files), files_after, before.rows, made.snapshot_id)


def compact_table(table: Table, min_files: int = 5, small_file_bytes: int = 32 << 20) -> CompactionResult:
    """Rewrite every partition holding at least `min_files` files smaller than `small_file_bytes`."""
    result = CompactionResult()
    if table.current_snapshot() is None:
        return result
    by_partition: dict[tuple[int, Record], list[DataFile]] = defaultdict(list)
    for task in table.scan().plan_files():
        by_partition[(task.file.spec_id, task.file.partition)].append(task.file)
    for (spec_id, partition), files in by_partition.items():
        if sum(1 for f in files if f.file_size_in_bytes < small_file_bytes) < min_files:
            continue
        try:
            result.compacted.append(_compact_partition(table, spec_id, partition, files))
        except (CommitFailedException, ValidationException, PartitionChangedError) as exc:  # a writer got there first
            result.skipped[table.specs()[spec_id].partition_to_path(partition, table.schema())] = str(exc)
            table.refresh()
    return result


def _reachable_files(table: Table, snapshots: list[Snapshot], manifest_cache: dict[str, list[str]]) -> set[str]:
    """Manifest lists, manifests and live data/delete files that `snapshots` reference."""
    reachable: set[str] = set()
    for snapshot in snapshots:
        reachable.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            if manifest.manifest_path not in manifest_cache:
                entries = manifest.fetch_manifest_entry(table.io, discard_deleted=True)
                manifest_cache[manifest.manifest_path] = [e.data_file.file_path for e in entries]
            reachable.add(manifest.manifest_path)
            reachable.update(manifest_cache[manifest.manifest_path])
    return reachable


def expire_snapshots(table: Table, older_than: datetime, retain_last: int = 1, delete_files: bool = True) -> ExpiryResult:
    """Expire snapshots older than `older_than` (keeping the newest `retain_last` and every branch/tag head).

    With delete_files, the files that only expired snapshots referenced are deleted, under the table location only.
    """
    by_age = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
    keep = {s.snapshot_id for s in by_age[len(by_age) - retain_last :]} if retain_last > 0 else set()
    keep |= {ref.snapshot_id for ref in table.metadata.refs.values()}
    cutoff_ms = int(older_than.timestamp() * 1000)
    expired = [s for s in by_age if s.timestamp_ms < cutoff_ms and s.snapshot_id not in keep]
    if not expired:
        return ExpiryResult(0, 0)
    table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in expired]).commit()
    if not delete_files:
        return ExpiryResult(len(expired), 0)
    cache: dict[str, list[str]] = {}
    retained = _reachable_files(table, list(table.metadata.snapshots), cache)
    location = table.metadata.location.rstrip("/") + "/"
    orphans = sorted(p for p in _reachable_files(table, expired, cache) - retained if p.startswith(location))
    for path in orphans:
        table.io.delete(path)
    return ExpiryResult(len(expired), len(orphans))


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    table: str
    before: TableState
    after: TableState
    compaction: CompactionResult
    expiry: ExpiryResult


def _only_ours_since(table: Table, snapshot_id: int | None) -> bool:
    """True when every snapshot after `snapshot_id` on the current branch was made by maintenance."""
    snapshot = table.current_snapshot()
    while snapshot is not None and snapshot.snapshot_id != snapshot_id:
        if snapshot.summary is None or MAINTENANCE_KEY not in snapshot.summary.additional_properties:
            return False
        snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id else None
    return snapshot is not None or snapshot_id is None


def maintain_table(
    table: Table, now: datetime, retention: timedelta, min_files: int = 5, retain_last: int = 1, delete_files: bool = True
) -> MaintenanceReport:
    """Compact, then expire snapshots older than now - retention; the table's row count must not move.

    Each compacted partition is verified by fingerprint as it is rewritten; the table total is checked
    too unless another writer committed meanwhile (then its rows legitimately change the total).
    """
    before = table_state(table)
    compaction = compact_table(table, min_files=min_files)
    compacted = table_state(table)
    if compacted.rows != before.rows and _only_ours_since(table, before.snapshot_id):
        raise RowsChangedError(f"{table.name()}: {before.rows} rows before compaction, {compacted.rows} after")
    expiry = expire_snapshots(table, now - retention, retain_last=retain_last, delete_files=delete_files)
    after = table_state(table)
    if (after.snapshot_id, after.rows) != (compacted.snapshot_id, compacted.rows):
        raise MaintenanceError(f"{table.name()}: snapshot expiry moved the current snapshot "
                               f"{compacted.snapshot_id} ({compacted.rows} rows) to {after.snapshot_id} ({after.rows})")
    return MaintenanceReport(".".join(table.name()), before, after, compaction, expiry)
