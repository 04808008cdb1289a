"""`marketlake sidecar`: the always-on half of the platform as supervised processes.

  kafka               the durable log (started only when not already reachable)
  exchange-sim-<X>    a replay server per streamed exchange (MARKETLAKE_SIDECAR_REPLAY, the offline default)
  relay               the stateless ZeroMQ bind point (live_relay/relay.py)
  live                every exchange's websocket feed, the stream processor and the Kafka writer in one
                      asyncio process (live_relay/live.py); GET /health on MARKETLAKE_LIVE_HEALTH_PORT

Each process has its own log under MARKETLAKE_HOME/logs; a crashed one is
restarted with backoff. Every `health_every` seconds the sidecar logs one line per
exchange from the live process's /health; Ctrl-C (or SIGTERM) stops all in
reverse order. `make run` starts the same services beside Dagster.
"""

from __future__ import annotations

import functools
import logging
import signal
from typing import Any
from urllib.parse import urlsplit

import httpx

from live_relay.sidecar_config import SidecarConfig, load_sidecar_config
from marketlake.kafka_broker import port_open
from marketlake.settings import Settings
from marketlake.supervisor import Service, ServiceError, Supervisor, marketlake_argv, platform_services

log = logging.getLogger(__name__)

__all__ = ["fetch_health", "format_health", "run_sidecar", "sidecar_services"]


def fetch_health(settings: Settings, timeout: float = 5.0) -> dict[str, Any] | None:
    """The live process's health report, or None when it does not answer."""
    try:
        r = httpx.get(f"http://127.0.0.1:{settings.live_health_port}/health", timeout=timeout)
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body
    except (httpx.HTTPError, ValueError):
        return None


def format_health(report: dict[str, Any]) -> list[str]:
    """One line per exchange: connection state, frames, events, reconnects, gaps, malformed frames."""
    lines = []
    for name, ex in sorted(report.get("exchanges", {}).items()):
        counts = " ".join(f"{k}={ex.get(k, 0)}" for k in ("frames", "events", "reconnects", "gaps", "malformed"))
        lines.append(f"{name}: {ex.get('state', '?')} {counts}")
    kafka = report.get("kafka", {})
    if kafka:
        lines.append(f"kafka: written={kafka.get('written', 0)} acked={kafka.get('acked', 0)} failed={kafka.get('failed', 0)}")
    for name, sub in sorted(report.get("bus", {}).items()):
        lines.append(f"bus/{name}: delivered={sub.get('delivered', 0)} dropped={sub.get('dropped', 0)}")
    return lines


def _local_port(url: str) -> int | None:
    parts = urlsplit(url)
    return parts.port if parts.hostname in ("127.0.0.1", "localhost") else None


def replay_services(settings: Settings, config: SidecarConfig, *, paced: bool = True) -> list[Service]:
    """A replay server per streamed exchange whose URLs point at this machine."""
    from live_relay.live import ADAPTERS

    services = []
    for exchange, ex in config.exchanges.items():
        port = _local_port(ex.rest_url)
        if port is None or exchange not in ADAPTERS:
            continue  # a real exchange (or a remote endpoint), or one not streamed yet: nothing to start
        mode = ["--paced", "--speed", str(settings.replay_speed)] if paced else ["--deterministic"]
        argv = marketlake_argv("exchange-sim", "--exchange", exchange, "--port", str(port), *mode)
        services.append(Service(f"exchange-sim-{exchange.lower()}", argv, functools.partial(port_open, "127.0.0.1", port)))
    return services


def live_service(settings: Settings, extra: list[str] | None = None) -> Service:
    return Service("live", marketlake_argv("live", *(extra or [])), lambda: fetch_health(settings, 2.0) is not None,
                   ready_timeout=120)  # fmt: skip


def sidecar_services(settings: Settings, config: SidecarConfig, live_args: list[str] | None = None,
                     *, paced: bool = True) -> list[Service]:  # fmt: skip
    """Kafka (when not reachable), replay servers, relay, live, in start order."""
    by_name = {s.name: s for s in platform_services(settings)}
    host, port = settings.kafka_bootstrap.rsplit(":", 1)
    services = [] if port_open(host, int(port)) else [by_name["kafka"]]
    if settings.sidecar_replay:
        services += replay_services(settings, config, paced=paced)
    return [*services, by_name["relay"], live_service(settings, live_args)]


def platform_with_sidecar(settings: Settings) -> list[Service]:
    """`make run`: the platform's services, its Binance replay server paced like a live market, plus the sidecar's
    other replay servers and the live process (the relay and Kafka are shared)."""
    config = load_sidecar_config(settings)
    services = platform_services(settings)
    for service in services:
        if service.name == "exchange-sim":
            service.argv += ["--paced", "--speed", str(settings.replay_speed)]
    taken = {settings.sim_port}
    extra = [r for r in replay_services(settings, config) if _service_port(r) not in taken] if settings.sidecar_replay else []
    dagster = services.pop()  # Dagster last: the feeds are up before the UI is
    return [*services, *extra, live_service(settings), dagster]


def _service_port(service: Service) -> int:
    return int(service.argv[service.argv.index("--port") + 1])


def run_sidecar(settings: Settings, live_args: list[str] | None = None, health_every: float = 30.0,
                *, paced: bool = True) -> int:  # fmt: skip
    config = load_sidecar_config(settings)
    sup = Supervisor(settings, sidecar_services(settings, config, live_args, paced=paced))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sup.stopping.set())
    try:
        sup.start_all()
        print(f"marketlake sidecar: streaming {', '.join(config.tickers)}; relay XPUB tcp://{settings.relay_host}:"
              f"{settings.xpub_port}; health http://127.0.0.1:{settings.live_health_port}/health; "
              f"logs {sup.log_dir}. Ctrl-C stops everything.", flush=True)  # fmt: skip
        sup.watch(on_tick=_health_logger(settings, health_every))
    except ServiceError as exc:
        log.error("%s", exc)
        return 1
    finally:
        sup.stop_all()
    return 0


def _health_logger(settings: Settings, every: float) -> Any:
    state = {"ticks": 0}

    def tick() -> None:
        state["ticks"] += 1
        if state["ticks"] % max(1, int(every)) == 0:
            report = fetch_health(settings)
            for line in format_health(report) if report else ["live: no health report"]:
                log.info("%s", line)

    return tick
