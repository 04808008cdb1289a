"""A cryptofeed recording loaded for replay: per websocket path, the tagged recorded frames in order.

The recording holds several connections (Kraken used one per channel, Bybit one per
category); all connections that opened the same URL path are served at that path,
their frames merged by receive time (each connection keeps its own file order).
Frames stay the exact recorded text.
"""

from __future__ import annotations

import base64
import heapq
import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson
import zstandard

from ingestors.replay.spec import ExchangeReplay, FrameTag, Key, Kind, Trade

log = logging.getLogger(__name__)


class RecordingError(ValueError):
    """A missing or malformed cryptofeed recording."""


@dataclass(frozen=True)
class Frame:
    recv_ns: int
    text: str  # exactly as recorded (a binary frame: its decoded text, for classifying)
    conn: str  # the recorded connection it arrived on
    tag: FrameTag
    data: bytes | None = None  # a binary frame (Huobi's gzip): the recorded bytes, sent as they are


@dataclass
class RecordedConn:
    name: str
    path: str
    sends: list[str] = field(default_factory=list)
    recvs: list[tuple[int, str]] = field(default_factory=list)  # (recv ns, text) in file order
    binary: dict[int, bytes] = field(default_factory=dict)  # index in recvs -> bytes of a binary frame


@dataclass
class HttpAnswer:
    path: str
    params: dict[str, str]
    body: str
    recv_ns: int


@dataclass
class PathStream:
    """Everything served on one websocket path."""

    path: str
    frames: list[Frame]
    greeting: list[Frame]  # sent on connect (the first recorded connection's greeting frames)
    conn_keys: dict[str, frozenset[Key]]  # recorded connection -> every key its sends subscribed
    key_conn: dict[Key, str]  # which recorded connection carried a key
    trades: list[Trade]  # every recorded trade of the path's frames (for the derived REST history)


@dataclass
class ReplaySession:
    exchange: str
    streams: dict[str, PathStream]
    http: list[HttpAnswer]
    conns: dict[str, RecordedConn]
    t0_ns: int
    t_end_ns: int


def _path(url: str) -> str:
    return urlsplit(url).path or "/"


def read_records(path: Path) -> list[dict[str, object]]:
    """All records of a cryptofeed .jsonl.zst file, in file order."""
    try:
        with path.open("rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as reader:
            raw = reader.read()
    except (OSError, zstandard.ZstdError) as exc:
        raise RecordingError(f"cannot read cryptofeed recording {path}: {exc}") from exc
    out = []
    for n, line in enumerate(raw.splitlines(), 1):
        if line.strip():
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise RecordingError(f"{path}:{n}: not JSON ({exc})") from None
    return out


def _text(value: object) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def load_session(path: Path, spec: ExchangeReplay) -> ReplaySession:
    """Read the recording and tag every received frame with the exchange's classify()."""
    conns: dict[str, RecordedConn] = {}
    http: list[HttpAnswer] = []
    for rec in read_records(path):
        kind, name = rec.get("t"), str(rec.get("conn", ""))
        ts_ns = round(float(rec.get("ts", 0) or 0) * 1e9)  # type: ignore[arg-type]
        if kind == "connect":
            conns[name] = RecordedConn(name, _path(str(rec.get("addr", ""))))
        elif kind == "send" and name in conns:
            conns[name].sends.append(_text(rec.get("data")))
        elif kind == "recv" and name in conns and "data" in rec:
            conns[name].recvs.append((ts_ns, _text(rec["data"])))
        elif kind == "recv" and name in conns and "b64" in rec:  # a binary frame: keep its bytes, classify its text
            raw = base64.b64decode(str(rec["b64"]))
            conns[name].binary[len(conns[name].recvs)] = raw
            conns[name].recvs.append((ts_ns, spec.decode_binary(raw)))
        elif kind == "http":
            url = urlsplit(str(rec.get("url", "")))
            params = {k: v for k, v in parse_qsl(url.query) if v != ""}
            http.append(HttpAnswer(url.path, params, _text(rec.get("data")), ts_ns))
    if not conns:
        raise RecordingError(f"{path}: no websocket connection recorded")
    streams: dict[str, PathStream] = {}
    for p in dict.fromkeys(c.path for c in conns.values()):
        on_path = [c for c in conns.values() if c.path == p]
        streams[p] = _stream(p, on_path, spec)
    # the replay clock starts at the first websocket frame (REST calls recorded minutes before it would only delay)
    times = [t for c in conns.values() for t, _ in c.recvs] or [h.recv_ns for h in http] or [0]
    return ReplaySession(spec.exchange, streams, http, conns, min(times), max(times))


def _stream(path: str, conns: list[RecordedConn], spec: ExchangeReplay) -> PathStream:
    per_conn: list[list[Frame]] = []
    conn_keys: dict[str, frozenset[Key]] = {}
    key_conn: dict[Key, str] = {}
    greeting: list[Frame] = []
    trades: list[Trade] = []
    for conn in conns:
        classify = spec.classify
        if spec.new_classifier:  # stateful (Bitfinex chanIds): learn from the whole connection first, as frames
            classify = spec.new_classifier()  # of a channel can come before the answer naming it
            for _, text in conn.recvs:
                classify(text)
        send_keys = [spec.client_frame(s).subscribe for s in conn.sends]
        send_keys = [k for k in send_keys if k]
        conn_keys[conn.name] = frozenset(k for ks in send_keys for k in ks)
        for k in conn_keys[conn.name]:
            key_conn.setdefault(k, conn.name)
        frames, acks = [], 0
        for i, (ts, text) in enumerate(conn.recvs):
            tag = classify(text)
            if tag.kind is Kind.DATA:
                try:
                    trades.extend(spec.trades(conn.path, text, tag.keys))
                except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
                    log.warning("%s %s: a recorded frame's trades are unreadable (%r); left out of the REST history",
                                spec.exchange, conn.name, exc)
            if tag.kind is Kind.GREETING:
                if conn is conns[0]:
                    greeting.append(Frame(ts, text, conn.name, tag, conn.binary.get(i)))
                continue
            if tag.kind is Kind.ACK and not tag.keys:  # Bybit/Coinbase acks name nothing: the n-th answers the n-th send
                tag = FrameTag(Kind.ACK, frozenset(send_keys[acks]) if acks < len(send_keys) else frozenset())
                acks += 1
            if tag.kind is not Kind.SKIP:
                frames.append(Frame(ts, text, conn.name, tag, conn.binary.get(i)))
        per_conn.append(frames)
    merged = list(heapq.merge(*per_conn, key=lambda f: f.recv_ns))
    return PathStream(path, merged, greeting, conn_keys, key_conn, trades)
