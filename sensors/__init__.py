"""Dagster sensors: the Kafka history-batch sensor and the HistoryReady run-status sensors."""
