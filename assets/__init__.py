"""Dagster asset definitions. Only definitions: the logic lives in marketlake.storage and resources."""
