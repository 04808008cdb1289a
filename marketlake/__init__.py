"""marketlake: crypto market data, durable in Kafka and Iceberg, served over ZeroMQ and DuckDB."""

__version__ = "0.1.0"
