"""Notifications from short-lived processes are not lost to ZeroMQ's slow joiner."""

from __future__ import annotations

import multiprocessing

from live_relay.messages import HistoryReadyNotification, Status
from live_relay.notifier import notify
from live_relay.relay import Relay
from marketlake.client import MarketlakeClient
from marketlake.settings import Settings

N = 1000


def _send_one(settings: Settings, i: int) -> None:
    """The whole life of a short-lived publisher: connect, publish one notification, exit."""
    note = HistoryReadyNotification(request_id=f"n{i}", client_id="bulk", status=Status.OK, row_count=i)
    notify(settings, "RESPONSE:bulk", note)


def test_1000_notifications_from_short_lived_processes_all_arrive(settings: Settings, relay: Relay) -> None:
    ctx = multiprocessing.get_context("fork")
    with MarketlakeClient(settings, client_id="bulk") as client:
        client.subscribe("RESPONSE:bulk")
        running: list[multiprocessing.process.BaseProcess] = []
        for i in range(N):
            proc = ctx.Process(target=_send_one, args=(settings, i))
            proc.start()
            running.append(proc)
            if len(running) >= 16:
                running.pop(0).join(30)
        for proc in running:
            proc.join(30)
        received = {client.wait(f"n{i}", timeout=30).row_count for i in range(N)}
    assert received == set(range(N))
