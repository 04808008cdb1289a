"""IcebergResource: the project's SQL catalog and the idempotent write of one history batch.

Our own small resource rather than dagster-iceberg, which pins pyiceberg < 0.12
and fails on timestamptz partition columns (STACK-NOTES).
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import ConfigurableResource
from pydantic import Field
from pyiceberg.catalog.sql import SqlCatalog

from marketlake.settings import Settings
from marketlake.storage import batches, iceberg_tables
from marketlake.storage.batches import HistoryBatch


@dataclass(frozen=True, slots=True)
class BatchWrite:
    """What one batch's commit did: which table, which snapshot, how many rows."""

    table: str
    snapshot_id: int
    row_count: int


class IcebergResource(ConfigurableResource):
    """The Iceberg SQL catalog (SQLite by default, Postgres when configured) and its warehouse."""

    catalog_name: str = Field(description="Catalog name; every process must use the same one.")
    catalog_uri: str = Field(description="SQLAlchemy URI of the SQL catalog (sqlite:/// or postgresql+psycopg2://).")
    warehouse: str = Field(description="Warehouse location (file:// or an object store URI).")

    @classmethod
    def from_settings(cls, settings: Settings) -> IcebergResource:
        return cls(catalog_name=settings.catalog_name, catalog_uri=settings.catalog_uri, warehouse=settings.warehouse)

    def catalog(self) -> SqlCatalog:
        return iceberg_tables.open_catalog(self.catalog_name, self.catalog_uri, self.warehouse)

    def write_batch(self, batch: HistoryBatch) -> BatchWrite:
        """One atomic overwrite of the batch's key range, recording its Kafka range in the snapshot."""
        meta, loc = batch.metadata, batch.location
        summary = iceberg_tables.kafka_snapshot_summary(
            loc.topic, loc.partition, loc.start_offset, loc.end_offset, meta.batch_id, meta.request_id
        )
        catalog = self.catalog()
        if batch.is_trades:
            table = iceberg_tables.trades_table(catalog)
            result = iceberg_tables.write_trades_batch(
                table, batches.trades_arrow_table(batch), meta.ticker, meta.start_time, meta.end_time, summary
            )
            return BatchWrite(iceberg_tables.TRADES_TABLE, result.snapshot_id, result.row_count)
        table = iceberg_tables.ohlc_table(catalog)
        result = iceberg_tables.write_ohlc_batch(
            table, batches.ohlc_arrow_table(batch), meta.ticker, meta.period_seconds,
            meta.start_time, meta.end_time, summary,
        )  # fmt: skip
        return BatchWrite(iceberg_tables.OHLC_TABLE, result.snapshot_id, result.row_count)
