"""`marketlake demo` from nothing: it starts every service itself, runs the tour, and stops them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from marketlake.kafka_broker import free_port, jar_dir, port_open
from marketlake.settings import REPO_ROOT

from .factories import DATA_DIR


def test_demo_from_nothing_gets_1440_rows_and_stops_what_it_started(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "kafka").mkdir(parents=True)
    (home / "kafka" / "libs").symlink_to(jar_dir(REPO_ROOT / ".marketlake"))  # jars fetched by `make setup`
    ports = {name: free_port() for name in ("CLIENT", "WORK", "CONTROL", "XSUB", "XPUB", "SIM", "DAGSTER",
                                             "RELAY_METRICS")}
    kafka_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETLAKE_", "DAGSTER_"))}
    env.update({f"MARKETLAKE_{name}_PORT": str(port) for name, port in ports.items()})
    env.update(MARKETLAKE_HOME=str(home), MARKETLAKE_DATA_DIR=str(DATA_DIR),
               MARKETLAKE_KAFKA_BOOTSTRAP=f"127.0.0.1:{kafka_port}",
               MARKETLAKE_BINANCE_REST_URL=f"http://127.0.0.1:{ports['SIM']}")
    proc = subprocess.run([sys.executable, "-m", "marketlake.cli", "demo"], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"demo printed nothing; stderr:\n{proc.stderr[-3000:]}"
    result = json.loads(lines[-1])
    assert proc.returncode == 0, f"{result}\n{proc.stderr[-3000:]}"
    assert result["status"] == "OK"
    assert result["rows"] == 1440
    assert result["seconds"] > 0
    assert set(result["stages"]) >= {"relay_ack", "fetch", "sensor_pickup", "run", "notify", "total"}
    for port in (kafka_port, ports["CLIENT"], ports["SIM"], ports["DAGSTER"]):
        assert not port_open("127.0.0.1", port), f"port {port} still open after the demo"
