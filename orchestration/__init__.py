"""The one Dagster code location: `orchestration.definitions` builds its only Definitions."""
