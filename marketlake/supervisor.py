"""Runs the platform's processes on one machine: starts them in order, restarts crashes, stops all on Ctrl-C.

Each service is a `marketlake ...` (or `dagster dev`) child process with its
own log file under MARKETLAKE_HOME/logs, and a readiness check. `make run`
and `marketlake demo` both use it; the demo starts only what is not running.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from marketlake.kafka_broker import port_open
from marketlake.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A service did not become ready, or kept crashing."""


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = dict(os.environ)
    for name in type(settings).model_fields:
        env[f"MARKETLAKE_{name.upper()}"] = str(getattr(settings, name))
    env["DAGSTER_HOME"] = str(settings.dagster_home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Service:
    name: str
    argv: list[str]
    ready: Callable[[], bool]
    ready_timeout: float = 90.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    restarts: int = field(default=0, init=False)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def marketlake_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "marketlake.cli", *args]


def platform_services(settings: Settings) -> list[Service]:
    """Kafka, replay server, relay, Binance ingestor, Dagster (webserver + daemon), in start order."""
    from marketlake.kafka_topics import history_topic

    def kafka_ready() -> bool:
        if not _kafka_port_open(settings):
            return False
        try:
            md = _admin(settings.kafka_bootstrap).list_topics(timeout=5)
        except Exception:  # still starting
            return False
        return history_topic(settings) in md.topics

    dagster_argv = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(REPO_ROOT / "workspace.yaml"),
                    "-h", "127.0.0.1", "-p", str(settings.dagster_port)]
    return [
        Service("kafka", marketlake_argv("kafka"), kafka_ready, ready_timeout=120),
        Service("exchange-sim", marketlake_argv("exchange-sim", "--exchange", "BINANCE"),
                lambda: port_open(settings.sim_host, settings.sim_port)),
        Service("relay", marketlake_argv("relay"), lambda: port_open(settings.relay_host, settings.client_port)),
        Service("ingestor-binance", marketlake_argv("ingestor", "--exchange", "BINANCE"),
                lambda: ingestor_group_members(settings, "BINANCE") > 0),
        Service("dagster", dagster_argv, lambda: port_open("127.0.0.1", settings.dagster_port), ready_timeout=180),
    ]


@lru_cache(maxsize=8)
def _admin(bootstrap: str) -> Any:
    """One AdminClient per broker for the life of the process: librdkafka aborts (an assertion in
    rd_kafka_enq_once) when an AdminClient is destroyed while a timed-out request is still pending."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def _kafka_port_open(settings: Settings) -> bool:
    host, port = settings.kafka_bootstrap.rsplit(":", 1)
    return port_open(host, int(port))


def ingestor_group_members(settings: Settings, exchange: str) -> int:
    """How many ingestors of `exchange` are in its Kafka consumer group right now."""
    from marketlake.kafka_topics import ingestor_group

    if not _kafka_port_open(settings):
        return 0
    group = ingestor_group(settings, exchange)
    try:
        admin = _admin(settings.kafka_bootstrap)
        future = admin.describe_consumer_groups([group], request_timeout=10)[group]
        return len(future.result(timeout=15).members)
    except Exception:  # broker down or group unknown: nobody is serving
        return 0


def dagster_daemon_ready(settings: Settings) -> bool:
    """The daemon is up when its sensor loop has written a heartbeat to the instance."""
    from dagster import DagsterInstance

    try:
        with DagsterInstance.from_config(str(settings.dagster_home)) as instance:
            return "SENSOR" in instance.get_daemon_heartbeats()
    except Exception:  # storage not created yet
        return False


def dagster_daemon_service(settings: Settings) -> Service:
    """Sensors, run queue and run launching without the webserver (tests, headless hosts)."""
    argv = [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(REPO_ROOT / "workspace.yaml")]
    return Service("dagster-daemon", argv, lambda: dagster_daemon_ready(settings), ready_timeout=180)


class Supervisor:
    def __init__(self, settings: Settings, services: list[Service]) -> None:
        self.settings = settings
        self.services = services
        self.log_dir = settings.home / "logs"
        self.stopping = threading.Event()

    def start(self, service: Service) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = (self.log_dir / f"{service.name}.log").open("ab")
        service.process = subprocess.Popen(
            service.argv, stdout=log_file, stderr=subprocess.STDOUT, env=settings_env(self.settings),
            cwd=REPO_ROOT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + service.ready_timeout
        while not service.ready():
            if service.process.poll() is not None:
                raise ServiceError(f"{service.name} exited with {service.process.returncode}; "
                                   f"see {self.log_dir / (service.name + '.log')}")
            if time.monotonic() > deadline:
                raise ServiceError(f"{service.name} not ready after {service.ready_timeout}s; "
                                   f"see {self.log_dir / (service.name + '.log')}")
            time.sleep(0.25)  # polling a child process's readiness
        log.info("%s ready (pid %d)", service.name, service.process.pid)

    def start_all(self) -> None:
        for service in self.services:
            self.start(service)

    def watch(self, max_restarts: int = 5, on_tick: Callable[[], None] | None = None) -> None:
        """Restart crashed services (with backoff) until stop() is called; `on_tick` runs every second."""
        while not self.stopping.wait(1.0):
            if on_tick is not None:
                on_tick()
            for service in self.services:
                if service.process is not None and not service.running() and not self.stopping.is_set():
                    if service.restarts >= max_restarts:
                        raise ServiceError(f"{service.name} crashed {service.restarts} times; giving up")
                    service.restarts += 1
                    log.warning("%s exited with %s; restart %d", service.name, service.process.returncode,
                                service.restarts)
                    time.sleep(min(2**service.restarts, 30))  # restart backoff
                    self.start(service)

    def stop_service(self, service: Service, timeout: float = 30.0) -> None:
        """SIGINT (Dagster wants it on its own pid), then SIGTERM, then SIGKILL."""
        proc = service.process
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        log.info("%s stopped", service.name)

    def stop_all(self, timeout: float = 30.0) -> None:
        """Stop every service in reverse start order."""
        self.stopping.set()
        for service in reversed(self.services):
            self.stop_service(service, timeout)


TRY_THIS = """
marketlake is running. Logs: {logs}
  Dagster UI:      http://127.0.0.1:{dagster_port}
  Ask for history: .venv/bin/marketlake history BINANCE:BTC/USDT --period 60 --start 2024-08-08 --end 2024-08-09
  Query it:        .venv/bin/marketlake sql "SELECT ticker, count(*) FROM market.ohlc GROUP BY ticker"
  Watch topics:    .venv/bin/marketlake subscribe RESPONSE:
  Live market:     .venv/bin/marketlake subscribe "BINANCE:BTC/USDT|tick" "BINANCE:BTC/USDT|ohlc:60" "BTC/USDT|bbo"
  Live health:     curl http://127.0.0.1:{live_health_port}/health
  Whole tour:      .venv/bin/marketlake demo
Ctrl-C stops everything.
"""


def run_platform(settings: Settings) -> int:
    from orchestration.instance import write_instance_yaml

    if "MARKETLAKE_SCHEDULES_ENABLED" not in os.environ:
        settings.schedules_enabled = True  # keep the universe current under `make run`; tests keep them off
    if "MARKETLAKE_LIVE_SENSORS_ENABLED" not in os.environ:
        settings.live_sensors_enabled = True  # live Kafka topics -> Iceberg under `make run`; tests keep them off
    from live_relay.sidecar import platform_with_sidecar

    write_instance_yaml(settings)
    sup = Supervisor(settings, platform_with_sidecar(settings))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sup.stopping.set())
    try:
        sup.start_all()
        print(TRY_THIS.format(logs=sup.log_dir, dagster_port=settings.dagster_port,
                              live_health_port=settings.live_health_port), flush=True)  # fmt: skip
        sup.watch()
    except ServiceError as exc:
        log.error("%s", exc)
        return 1
    finally:
        sup.stop_all()
    return 0
