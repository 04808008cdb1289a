"""DAGSTER_HOME/dagster.yaml, written from the one Settings object.

Embedded by default (SQLite run, event-log and schedule storage under
DAGSTER_HOME); Postgres through dagster-postgres when `postgres_url` is set.
Runs go through the queued run coordinator with at most 4 at once, and the
sensor daemon evaluates sensors on threads so the Kafka history sensor and the
HistoryReady run-status sensors do not wait for each other.

The storage is created here, once, before any Dagster process starts: when the
daemon, its code server and a readiness probe create a fresh SQLite storage at
the same moment, alembic can stamp two heads and every later start fails
("Version table 'alembic_version' has more than one head present",
dagster-io/dagster#27390).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; only safe_dump is used
from dagster import DagsterInstance

from marketlake.settings import Settings

MAX_CONCURRENT_RUNS = 4
POSTGRES_URL_ENV = "MARKETLAKE_POSTGRES_URL"


def _storage(settings: Settings) -> dict[str, Any]:
    if not settings.postgres_url:
        return {"sqlite": {"base_dir": str(settings.dagster_home / "storage")}}
    if not settings.postgres_url.startswith("postgresql+psycopg2://"):
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3, which is not installed (STACK-NOTES).
        raise ValueError(f"postgres_url must use postgresql+psycopg2://, got {settings.postgres_url.split('@')[-1]!r}")
    # Keep the password out of the file when it came from the environment.
    if os.environ.get(POSTGRES_URL_ENV) == settings.postgres_url:
        return {"postgres": {"postgres_url": {"env": POSTGRES_URL_ENV}}}
    return {"postgres": {"postgres_url": settings.postgres_url}}


def instance_config(settings: Settings) -> dict[str, Any]:
    """The dagster.yaml content for `settings`."""
    return {
        "storage": _storage(settings),
        # Dequeue every second (default 5 s): a client is waiting for each history run.
        "run_queue": {"max_concurrent_runs": MAX_CONCURRENT_RUNS, "dequeue_interval_seconds": 1,
                      "dequeue_use_threads": True, "dequeue_num_workers": MAX_CONCURRENT_RUNS},
        "run_monitoring": {"enabled": True, "start_timeout_seconds": 180, "poll_interval_seconds": 30},
        "sensors": {"use_threads": True, "num_workers": 4},
        "schedules": {"use_threads": True, "num_workers": 2},
        "local_artifact_storage": {
            "module": "dagster.core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": str(settings.dagster_home)},
        },
        "telemetry": {"enabled": False},  # no internet here, and no reason to phone home
    }


def initialize_storage(dagster_home: Path) -> None:
    """Create (or migrate-check) the run, event-log and schedule storage of the instance, in this process."""
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.get_runs(limit=1)
        instance.get_daemon_heartbeats()
        instance.all_instigator_state()


def write_instance_yaml(settings: Settings, initialize: bool = True) -> Path:
    """Write DAGSTER_HOME/dagster.yaml (creating DAGSTER_HOME), create its storage, and return its path."""
    home = Path(settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    text = "# Written by orchestration/instance.py from marketlake settings; edits are overwritten.\n"
    path.write_text(text + yaml.safe_dump(instance_config(settings), sort_keys=False))
    if initialize:
        initialize_storage(home)
    return path
