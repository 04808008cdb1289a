"""The live process's health report and metrics over HTTP: GET /health (JSON) and GET /metrics (Prometheus).

The report is built on request by a callable the live process provides, so it is
always current and costs nothing between requests. `marketlake sidecar` polls
/health for its periodic status lines; /metrics is for Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

__all__ = ["HealthServer"]


class HealthServer:
    """aiohttp app on 127.0.0.1:port inside the running event loop; `await start()`, `await stop()`."""

    def __init__(self, port: int, report: Callable[[], dict[str, Any]], registry: CollectorRegistry | None = None,
                 host: str = "127.0.0.1") -> None:  # fmt: skip
        self.port, self.host = port, host
        self.report = report
        self.registry = registry
        self._runner: web.AppRunner | None = None

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response(self.report())

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.registry) if self.registry is not None else b""
        return web.Response(body=body, content_type="text/plain")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
