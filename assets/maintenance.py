"""`table_maintenance_job`: compact small files and expire old snapshots of every `market` table.

The logic is `marketlake.storage.maintenance` (verified by row fingerprints, raises when rows
would change); this op runs it per table and records the before / after data files, snapshots,
rows and bytes both as the op's output metadata and as an observation of the table's asset, so
the counts show on market/ohlc's page in the UI. An observation, not a materialization: the data
did not change, so nothing downstream (dbt) must become stale.

No `from __future__ import annotations` here: Dagster reads the config and resource annotations
of the op function at definition time.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import (
    AssetKey,
    AssetObservation,
    Config,
    Failure,
    MetadataValue,
    OpExecutionContext,
    Output,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from marketlake.storage import maintenance
from marketlake.storage.iceberg_tables import NAMESPACE
from resources.iceberg import IcebergResource

MAINTENANCE_JOB = "table_maintenance_job"


class TableMaintenanceConfig(Config):
    """What to maintain and how much history to keep."""

    tables: list[str] = Field(default_factory=list, description="Tables of namespace market (e.g. ohlc); all when empty.")
    min_small_files: int = Field(5, description="Compact a partition holding at least this many small (< 32 MiB) files.")
    snapshot_retention_hours: float = Field(
        168.0, description="Expire snapshots older than this (their Kafka-offset summaries go with them)."
    )
    retain_last_snapshots: int = Field(1, description="Never expire the newest N snapshots, whatever their age.")
    delete_expired_files: bool = Field(True, description="Delete the files only expired snapshots referenced.")


def report_metadata(report: maintenance.MaintenanceReport) -> dict[str, Any]:
    """Before / after counts of one table, for the UI."""
    before, after, compaction = report.before, report.after, report.compaction
    return {
        "table": report.table,
        "data_files_before": MetadataValue.int(before.data_files),
        "data_files_after": MetadataValue.int(after.data_files),
        "snapshots_before": MetadataValue.int(before.snapshots),
        "snapshots_after": MetadataValue.int(after.snapshots),
        "rows_before": MetadataValue.int(before.rows),
        "rows_after": MetadataValue.int(after.rows),
        "bytes_before": MetadataValue.int(before.bytes),
        "bytes_after": MetadataValue.int(after.bytes),
        "partitions_compacted": MetadataValue.int(len(compaction.compacted)),
        "partitions_skipped": MetadataValue.json(compaction.skipped),
        "snapshots_expired": MetadataValue.int(report.expiry.expired_snapshots),
        "files_deleted": MetadataValue.int(report.expiry.deleted_files),
    }


@op(description="Compact small files and expire old snapshots of the market tables, verifying every row.")
def maintain_tables(
    context: OpExecutionContext, config: TableMaintenanceConfig, iceberg: IcebergResource
) -> Iterator[AssetObservation | Output[list[str]]]:
    catalog = iceberg.catalog()
    names = config.tables or sorted(identifier[-1] for identifier in catalog.list_tables(NAMESPACE))
    now = datetime.now(UTC)
    done: list[str] = []
    for name in names:
        table = catalog.load_table(f"{NAMESPACE}.{name}")
        try:
            report = maintenance.maintain_table(
                table, now, timedelta(hours=config.snapshot_retention_hours), min_files=config.min_small_files,
                retain_last=config.retain_last_snapshots, delete_files=config.delete_expired_files,
            )  # fmt: skip
        except maintenance.MaintenanceError as exc:
            raise Failure(description=str(exc), metadata={"table": f"{NAMESPACE}.{name}"}, allow_retries=False) from exc
        for partition, reason in report.compaction.skipped.items():
            context.log.warning(f"{report.table} {partition}: not compacted, a concurrent commit won ({reason})")
        context.log.info(
            f"{report.table}: {report.before.data_files} -> {report.after.data_files} data files, "
            f"{report.before.snapshots} -> {report.after.snapshots} snapshots, {report.after.rows} rows"
        )
        yield AssetObservation(asset_key=AssetKey([NAMESPACE, name]), metadata=report_metadata(report))
        done.append(report.table)
    yield Output(done, metadata={"tables": MetadataValue.json(done)})


@job(name=MAINTENANCE_JOB, executor_def=in_process_executor,
     description="Compact small files and expire old snapshots of every market table (rows verified).")  # fmt: skip
def table_maintenance_job() -> None:
    maintain_tables()

