"""Serving an aiohttp replay app from a background thread: how tests and benchmarks run a replay server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

__all__ = ["serve_in_thread"]


@contextmanager
def serve_in_thread(app: web.Application, name: str, port: int = 0, timeout: float = 30.0) -> Iterator[str]:
    """Serve `app` on 127.0.0.1:port (0: a free port); yields "http://127.0.0.1:<port>" once it accepts."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    ready, box = threading.Event(), {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
            box["port"] = runner.addresses[0][1]
        except Exception as exc:  # reported to the caller below
            box["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    if not ready.wait(timeout) or "error" in box:
        raise RuntimeError(f"{name} server did not start on 127.0.0.1:{port}: {box.get('error', 'timeout')}")
    try:
        yield f"http://127.0.0.1:{box['port']}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
