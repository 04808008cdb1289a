"""Settings for tests: an isolated home, free ports and a unique Kafka topic prefix."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from marketlake.kafka_broker import free_port
from marketlake.settings import REPO_ROOT, Settings

DATA_DIR = Path(os.environ.get("MARKETLAKE_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def make_settings(home: Path, bootstrap: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": home,
        "data_dir": DATA_DIR,
        "kafka_bootstrap": bootstrap,
        "kafka_topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
        "client_port": free_port(),
        "work_port": free_port(),
        "control_port": free_port(),
        "xsub_port": free_port(),
        "xpub_port": free_port(),
        "sim_port": free_port(),
        "notify_subscriber_wait_seconds": 2.0,
        "relay_metrics_port": 0,
    }
    values.update(overrides)
    settings = Settings(**values)  # type: ignore[arg-type]
    settings.binance_rest_url = f"http://127.0.0.1:{settings.sim_port}"
    settings.binance_ws_url = f"ws://127.0.0.1:{settings.sim_port}/ws"
    return settings
