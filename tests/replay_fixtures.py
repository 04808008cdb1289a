"""Shared pieces of the recorded-session replay server tests: the recordings as the recorder saw them
(independent of the servers' own reader), a running server per exchange, websocket helpers."""

from __future__ import annotations

import base64
import dataclasses
import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect

from ingestors.replay.exchanges import replay_for
from ingestors.replay.faults import FaultConfig
from ingestors.replay.server import ReplayServer
from ingestors.replay.session import read_records

EXCHANGES = ["COINBASE", "KRAKEN", "OKX", "BYBIT", "GATEIO", "KUCOIN", "BITFINEX", "HUOBI"]
GREETINGS = {"KRAKEN": 1, "KUCOIN": 1, "BITFINEX": 1}  # frames the exchange sends on connect, before any subscribe
Wire = str | bytes  # a text frame, or the bytes of a binary one (HTX's gzip)


def text_of(frame: Wire) -> str:
    return gzip.decompress(frame).decode() if isinstance(frame, bytes) else frame


@dataclass
class Conn:
    """One recorded websocket connection: what the recorder sent and received, in file order."""

    name: str
    path: str
    sends: list[str] = field(default_factory=list)
    recvs: list[Wire] = field(default_factory=list)


@dataclass
class Recording:
    conns: list[Conn]
    http: list[tuple[str, str]]  # (path?query, body)


def load(data_dir: Path, exchange: str) -> Recording:
    conns: dict[str, Conn] = {}
    http: list[tuple[str, str]] = []
    for r in read_records(data_dir / "cryptofeed" / f"{exchange}.jsonl.zst"):
        name = str(r.get("conn"))
        if r["t"] == "connect":
            conns[name] = Conn(name, urlsplit(str(r["addr"])).path or "/")
        elif r["t"] == "send":
            conns[name].sends.append(str(r["data"]))
        elif r["t"] == "recv":
            conns[name].recvs.append(str(r["data"]) if "data" in r else base64.b64decode(str(r["b64"])))
        elif r["t"] == "http":
            url = urlsplit(str(r["url"]))
            body = r["data"] if isinstance(r["data"], str) else orjson.dumps(r["data"]).decode()
            http.append((url.path + ("?" + url.query if url.query else ""), body))
    return Recording(list(conns.values()), http)


@pytest.fixture(scope="module", params=EXCHANGES)
def sim(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[tuple[str, ReplayServer, str, Recording]]:
    exchange = str(request.param)
    server = ReplayServer(replay_for(exchange), data_dir)
    with server.running() as base:
        yield exchange, server, base, load(data_dir, exchange)


@pytest.fixture
def replay(sim: tuple[str, ReplayServer, str, Recording]) -> Iterator[tuple[str, ReplayServer, str, Recording]]:
    """The module's server with its faults reset after each test."""
    yield sim
    sim[1].state.set_faults(**dataclasses.asdict(FaultConfig()))


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + path


def receive(ws: ClientConnection, n: int, timeout: float = 10.0) -> list[Wire]:
    """n frames, or fewer if the server closes; fails if one takes longer than the timeout."""
    out: list[Wire] = []
    try:
        while len(out) < n:
            out.append(ws.recv(timeout=timeout))
    except ConnectionClosedOK:
        pass
    return out


def replay_conn(exchange: str, base: str, conn: Conn, extra: int = 0) -> tuple[list[Wire], list[Wire]]:
    """Connect, read the greeting, send the recorded subscribes, read the recorded count (+ extra) of frames."""
    with connect(ws_url(base, conn.path), max_size=None) as ws:
        greeting = receive(ws, GREETINGS.get(exchange, 0))
        for text in conn.sends:
            ws.send(text)
        return greeting, receive(ws, len(conn.recvs) - len(greeting) + extra)


def find(rec: Recording, name: str) -> Conn:
    return next(c for c in rec.conns if c.name == name)
