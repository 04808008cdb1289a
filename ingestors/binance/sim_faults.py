"""Fault injection and request accounting for the Binance replay server.

A FaultConfig is given at start and can be changed while the server runs
(POST /_sim/faults with a JSON object of fields to change). Counters such as
fail_429 count down as requests consume them, so a test can say "the next two
requests answer 429, then serve normally".
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from ingestors.binance.config import WEIGHT_LIMIT_PER_MINUTE


@dataclass
class FaultConfig:
    """What the replay server does wrong, on purpose. Counters are consumed by REST requests in order."""

    fail_429: int = 0  # the next N REST requests answer 429 with Retry-After
    fail_418: int = 0  # the next N REST requests answer 418 (IP ban) with Retry-After
    retry_after_seconds: int = 1  # Retry-After of the 429/418 answers above
    fail_500: int = 0  # the next N REST requests answer 500 {"code":-1001,...}
    drop_next: int = 0  # the next N requests (REST or websocket upgrade) lose their connection, no answer
    fail_always_status: int = 0  # when set, every REST request answers this status, for good
    fail_always_code: int = -1121
    fail_always_msg: str = "Invalid symbol."
    latency_ms: int = 0  # added before every REST answer
    ws_close_after_frames: int = 0  # close each websocket after N data frames (0: never)
    ws_abort: bool = False  # with ws_close_after_frames: drop the TCP connection instead of a close frame
    ws_close_once: bool = False  # with ws_close_after_frames: close one connection, then clear the fault
    drop_depth_after: int = 0  # drop the depth diffs of fault_symbol from its N-th one (1-based) on ...
    drop_depth_count: int = 0  # ... this many of them (a gap the client must detect)
    fault_symbol: str = ""  # symbol (BTCUSDT) the depth faults apply to; "" = every symbol
    malformed_frames: int = 0  # send a malformed text frame before each of the next N data frames
    weight_limit: int = WEIGHT_LIMIT_PER_MINUTE  # request weight per window before a real 429 -1003
    weight_window_seconds: int = 60  # Binance counts weight per minute; tests may shorten the window

    def updated(self, changes: dict[str, Any]) -> FaultConfig:
        """A copy with some fields changed; unknown names or wrong types raise ValueError naming them."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(f"unknown fault fields {unknown}; known: {sorted(fields)}")
        for name, value in changes.items():
            want = type(getattr(self, name))
            if type(value) is not want:
                raise ValueError(f"fault field {name!r} must be {want.__name__}, got {value!r}")
        return dataclasses.replace(self, **changes)


@dataclass
class RequestRecord:
    path: str
    status: int
    monotonic: float  # time.monotonic() when the request arrived
    wall_ms: int


@dataclass
class SimState:
    """Faults, the weight window and statistics, shared by the handlers (and by a test thread)."""

    faults: FaultConfig = field(default_factory=FaultConfig)
    now_ms: int | None = None  # the server's "now"; None: the wall clock
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    by_path: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    log: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=5000))
    ws_connections: int = 0
    ws_frames: int = 0
    ws_dropped: int = 0
    _window: int = -1
    _weight: int = 0

    def now(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def set_faults(self, **changes: Any) -> FaultConfig:
        with self.lock:
            self.faults = self.faults.updated(changes)
            return self.faults

    def take(self, name: str) -> bool:
        """Consume one unit of a countdown fault; True if it applies to this request."""
        with self.lock:
            left = getattr(self.faults, name)
            if left > 0:
                setattr(self.faults, name, left - 1)
                return True
            return False

    def add_weight(self, weight: int) -> tuple[int, float]:
        """Count a request's weight in the current window; (used weight, seconds until the window ends)."""
        window_s = max(1, self.faults.weight_window_seconds)
        wall = time.time()
        with self.lock:
            window = int(wall // window_s)
            if window != self._window:
                self._window, self._weight = window, 0
            self._weight += weight
            return self._weight, (window + 1) * window_s - wall

    def record(self, path: str, status: int, arrived: float) -> None:
        with self.lock:
            self.by_path[path] += 1
            self.by_status[status] += 1
            self.log.append(RequestRecord(path, status, arrived, int(time.time() * 1000)))

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": sum(self.by_path.values()),
                "requests": dict(self.by_path),
                "statuses": {str(k): v for k, v in self.by_status.items()},
                "ws_connections": self.ws_connections,
                "ws_frames": self.ws_frames,
                "ws_dropped": self.ws_dropped,
                "used_weight": self._weight,
                "log": [dataclasses.asdict(r) for r in self.log],
                "faults": dataclasses.asdict(self.faults),
            }

    def reset_stats(self) -> None:
        with self.lock:
            self.by_path.clear()
            self.by_status.clear()
            self.log.clear()
            self.ws_connections = self.ws_frames = 0
