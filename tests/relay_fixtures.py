"""A real relay on loopback ports, run in a thread of the test process."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from live_relay.relay import Relay
from marketlake.settings import Settings


@pytest.fixture
def relay(settings: Settings) -> Iterator[Relay]:
    r = Relay(settings)
    thread = threading.Thread(target=r.run, name="relay", daemon=True)
    thread.start()
    assert r.ready.wait(30), "relay did not bind its sockets"
    yield r
    r.stop()
    thread.join(30)
    assert not thread.is_alive(), "relay did not stop"
