"""Fault injection and counters of a replay server (POST /_sim/faults, GET /_sim/stats).

Same shape as the Binance server's (ingestors/binance/sim_faults.py): a FaultConfig
changed at run time by a JSON object of fields; countdown fields are consumed as
frames or requests use them ("drop the next 2 book diffs of BTCUSDT").
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FaultConfig:
    """What the replay server does wrong, on purpose."""

    drop_diffs: int = 0  # drop the next N incremental book updates (of fault_symbol when set)
    reorder_diffs: int = 0  # swap the next N pairs of consecutive book updates (of fault_symbol when set)
    fault_symbol: str = ""  # the symbol, as the exchange writes it ("BTCUSDT", "XBT/CHF"), drop/reorder act on
    malformed_frames: int = 0  # send N broken frames, one before each of the next N data frames
    ws_close_after_frames: int = 0  # close each websocket after N frames sent (0: never)
    ws_abort: bool = False  # with ws_close_after_frames: drop the TCP connection instead of a close frame
    ws_close_once: bool = False  # with ws_close_after_frames: only the next connection to reach N is closed
    fail_429: int = 0  # the next N REST requests answer 429 with Retry-After
    fail_500: int = 0  # the next N REST requests answer 500
    retry_after_seconds: int = 1  # Retry-After of the 429 answers
    latency_ms: int = 0  # added before every REST answer

    def updated(self, changes: dict[str, Any]) -> FaultConfig:
        """A copy with some fields changed; unknown names or wrong types raise ValueError naming them."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise ValueError(f"unknown fault fields {unknown}; known: {sorted(fields)}")
        for name, value in changes.items():
            want = type(getattr(self, name))
            if type(value) is not want:
                raise ValueError(f"fault field {name!r} must be {want.__name__}, got {value!r}")
        return dataclasses.replace(self, **changes)


@dataclass
class SimState:
    """Faults and statistics shared by the handlers (and a test thread: every access takes the lock)."""

    faults: FaultConfig = field(default_factory=FaultConfig)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    by_path: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    ws_connections: int = 0
    ws_frames: int = 0  # recorded frames sent (acks and data; not pongs, not injected frames)
    dropped: int = 0
    reordered: int = 0
    malformed_sent: int = 0
    closed_by_fault: int = 0

    def set_faults(self, **changes: Any) -> FaultConfig:
        with self.lock:
            self.faults = self.faults.updated(changes)
            return self.faults

    def take(self, name: str, symbol: str | None = None) -> bool:
        """Consume one unit of a countdown fault; with symbol, only if fault_symbol is unset or equal."""
        with self.lock:
            if symbol is not None and self.faults.fault_symbol and self.faults.fault_symbol != symbol:
                return False
            left = getattr(self.faults, name)
            if left > 0:
                setattr(self.faults, name, left - 1)
                return True
            return False

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def record(self, path: str, status: int) -> None:
        with self.lock:
            self.by_path[path] += 1
            self.by_status[status] += 1

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": sum(self.by_path.values()),
                "requests": dict(self.by_path),
                "statuses": {str(k): v for k, v in self.by_status.items()},
                "ws_connections": self.ws_connections,
                "ws_frames": self.ws_frames,
                "dropped": self.dropped,
                "reordered": self.reordered,
                "malformed_sent": self.malformed_sent,
                "closed_by_fault": self.closed_by_fault,
                "faults": dataclasses.asdict(self.faults),
            }

    def reset_stats(self) -> None:
        with self.lock:
            self.by_path.clear()
            self.by_status.clear()
            self.ws_connections = self.ws_frames = self.dropped = self.reordered = 0
            self.malformed_sent = self.closed_by_fault = 0
