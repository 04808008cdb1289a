"""What every benchmark needs: its own Kafka broker in a temporary home, the platform's processes, and the
results file (each benchmark replaces its own `## ` section of bench/RESULTS.md)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from marketlake.kafka_broker import KafkaBroker, ensure_topics, free_port, jar_dir
from marketlake.kafka_topics import all_topics
from marketlake.settings import REPO_ROOT, Settings
from marketlake.supervisor import Service, Supervisor, dagster_daemon_service, platform_services
from orchestration.instance import write_instance_yaml

__all__ = ["bench_broker", "platform_supervisor", "write_section"]


@contextmanager
def bench_broker() -> Iterator[tuple[Path, KafkaBroker]]:
    """A temporary home with its own single-node broker (the project's jars), stopped and removed at exit."""
    with tempfile.TemporaryDirectory(prefix="marketlake-bench-") as tmp:
        home = Path(tmp)
        (home / "kafka").mkdir()
        (home / "kafka" / "libs").symlink_to(jar_dir(REPO_ROOT / ".marketlake"))
        broker = KafkaBroker(home=home, data_dir=home / "kafka-data", port=free_port()).start()
        try:
            yield home, broker
        finally:
            broker.stop()


def platform_supervisor(settings: Settings, *extra: Service) -> Supervisor:
    """Replay server, relay, Binance ingestor and Dagster daemon (plus `extra`) for `settings`, not started yet."""
    ensure_topics(settings.kafka_bootstrap, all_topics(settings))
    write_instance_yaml(settings)
    by_name = {s.name: s for s in platform_services(settings)}
    services = [by_name["exchange-sim"], by_name["relay"], by_name["ingestor-binance"], dagster_daemon_service(settings)]
    return Supervisor(settings, [*services, *extra])


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace one `## ` section of the results file where it stands (a reading of the numbers written after it
    stays after it), or append it at the end."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    parts = [p.strip("\n") for p in old.split("\n## ")]
    section = text.strip("\n").removeprefix("## ")
    at = next((i for i, p in enumerate(parts) if i and ("## " + p).startswith(heading)), None)
    if at is None:
        parts.append(section)
    else:
        parts[at] = section
    path.write_text("\n\n## ".join(parts) + "\n")
