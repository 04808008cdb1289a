"""Shared fixtures: one real Kafka broker per test session, isolated settings per test.

Every test gets its own MARKETLAKE_HOME, its own relay ports and its own
Kafka topic prefix, so tests share the broker without seeing each other's data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketlake.kafka_broker import KafkaBroker, ensure_topics, free_port
from marketlake.kafka_topics import all_topics
from marketlake.settings import REPO_ROOT, Settings

from .factories import DATA_DIR, make_settings

pytest_plugins = ["tests.relay_fixtures", "tests.platform_fixtures", "tests.pg_fixtures"]



@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    home = Path(os.environ.get("MARKETLAKE_HOME", REPO_ROOT / ".marketlake"))
    broker = KafkaBroker(home=home, data_dir=tmp_path_factory.mktemp("kafka"), port=free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def settings(tmp_path: Path, kafka_broker: KafkaBroker) -> Settings:
    """Isolated settings with the session's Kafka and its topics created."""
    s = make_settings(tmp_path / "home", kafka_broker.bootstrap)
    ensure_topics(s.kafka_bootstrap, all_topics(s))
    return s


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "binance").is_dir():
        pytest.fail(f"recorded exchange data not found at {DATA_DIR}; set MARKETLAKE_DATA_DIR")
    return DATA_DIR
