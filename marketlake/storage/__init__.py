"""The Iceberg store of record and the history-batch format that feeds it.

`iceberg_tables` owns the catalog, the table definitions and the idempotent
write; `batches` reads one batch's Kafka range, checks it and builds the Arrow
table. Neither imports Dagster, so clients and tools can use them directly.
"""
