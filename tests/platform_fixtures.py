"""The whole historical loop as real processes: replay server, relay, ingestor, Dagster daemon.

Module-scoped: starting Dagster costs seconds, so the tests of one module share a platform.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from marketlake.kafka_broker import KafkaBroker, ensure_topics, free_port
from marketlake.kafka_topics import all_topics
from marketlake.settings import Settings
from marketlake.supervisor import Supervisor, dagster_daemon_service, platform_services
from orchestration.instance import write_instance_yaml

from .factories import make_settings


class Platform:
    def __init__(self, settings: Settings, supervisor: Supervisor) -> None:
        self.settings = settings
        self.supervisor = supervisor

    def service(self, name: str):  # noqa: ANN201 - test helper
        return next(s for s in self.supervisor.services if s.name == name)

    def set_faults(self, **faults: object) -> None:
        """Change the replay server's fault injection at runtime (its /_sim/faults endpoint)."""
        r = httpx.post(f"{self.settings.binance_rest_url}/_sim/faults", json=faults, timeout=10)
        r.raise_for_status()

    def log(self, name: str) -> str:
        return (self.settings.home / "logs" / f"{name}.log").read_text(errors="replace")


def start_platform(settings: Settings) -> Supervisor:
    """Replay server, relay, Binance ingestor and Dagster daemon as processes, for these settings."""
    ensure_topics(settings.kafka_bootstrap, all_topics(settings))
    write_instance_yaml(settings)
    by_name = {s.name: s for s in platform_services(settings)}
    services = [by_name["exchange-sim"], by_name["relay"], by_name["ingestor-binance"], dagster_daemon_service(settings)]
    sup = Supervisor(settings, services)
    try:
        sup.start_all()
    except BaseException:
        sup.stop_all()
        raise
    return sup


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, kafka_broker: KafkaBroker) -> Iterator[Platform]:
    home: Path = tmp_path_factory.mktemp("platform")
    settings = make_settings(home, kafka_broker.bootstrap, relay_metrics_port=free_port())
    sup = start_platform(settings)
    try:
        yield Platform(settings, sup)
    finally:
        sup.stop_all()
