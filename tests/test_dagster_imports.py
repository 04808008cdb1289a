"""The code location loads cleanly, without the sidecar or pyzmq, and dagster.yaml loads as an instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance

from marketlake.settings import REPO_ROOT, Settings
from orchestration.instance import MAX_CONCURRENT_RUNS, write_instance_yaml

PROBE = """
import json, sys
import orchestration.definitions as d
repo = d.defs.get_repository_def()
print(json.dumps({
    "sidecar_modules": sorted(m for m in sys.modules
                              if m == "zmq" or m.startswith("zmq.") or m in ("live_relay.notifier", "live_relay.relay")),
    "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
    "sensors": sorted(s.name for s in repo.sensor_defs),
    "assets": sorted("/".join(k.path) for k in repo.asset_graph.get_all_asset_keys()),
}))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETLAKE_", "DAGSTER_"))}
    return {**env, "MARKETLAKE_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "home" / "dagster")}


def test_loading_the_code_location_imports_neither_zmq_nor_the_sidecar(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=_env(tmp_path), capture_output=True,
                         text=True, timeout=120, check=True)  # fmt: skip
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["sidecar_modules"] == []
    assert {"history_batch_job", "table_maintenance_job"} <= set(loaded["jobs"])
    assert {"history_batches_sensor", "history_ready_on_success", "history_ready_on_failure"} <= set(loaded["sensors"])
    assert {"market/ohlc", "market/trades"} <= set(loaded["assets"])


def test_dagster_definitions_validate_accepts_the_workspace(tmp_path: Path) -> None:
    env = _env(tmp_path)
    write_instance_yaml(Settings(home=Path(env["MARKETLAKE_HOME"])))
    result = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w",
                             "workspace.yaml"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_instance_yaml_gives_sqlite_storage_and_a_run_queue_of_four(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    path = write_instance_yaml(settings)
    assert path == settings.dagster_home / "dagster.yaml"
    # Created now, before any Dagster process races to create it (dagster-io/dagster#27390).
    assert (settings.dagster_home / "storage" / "history" / "runs.db").is_file()
    instance = DagsterInstance.from_config(str(path.parent))
    try:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == MAX_CONCURRENT_RUNS
        assert instance.get_settings("sensors") == {"use_threads": True, "num_workers": 4}
    finally:
        instance.dispose()


@pytest.mark.postgres
def test_instance_yaml_uses_dagster_postgres_when_a_postgres_url_is_set(tmp_path: Path, postgres_database: str) -> None:
    settings = Settings(home=tmp_path / "home", postgres_url=postgres_database)
    instance = DagsterInstance.from_config(str(write_instance_yaml(settings).parent))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.get_runs() == []  # its tables exist and answer
    finally:
        instance.dispose()


def test_instance_yaml_refuses_a_postgres_url_without_the_psycopg2_scheme(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", postgres_url="postgresql://u:secret@db:5432/dagster")
    with pytest.raises(ValueError, match="postgresql\\+psycopg2://") as raised:
        write_instance_yaml(settings)
    assert "secret" not in str(raised.value)
