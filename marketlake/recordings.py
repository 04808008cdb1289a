"""Readers of the two recorded-session formats in ../shared/data, as one stream of records.

- hftbacktest (data/binance/*.gz): "<local ns> <json>" lines of Binance combined-stream
  frames plus one REST depth snapshot line; read with ingestors.binance.recording,
  which also rebuilds the exchange's book at any point (what a REST refetch returns).
- cryptofeed (data/cryptofeed/*.jsonl.zst): header, http, connect, send and recv
  records of several connections, grouped by connection in the file.

Several files are one session: all records are replayed in local receive-time
order (a stable sort, so files that follow each other are simply concatenated
in the order given, and parallel captures interleave as they arrived).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

import orjson
import zstandard

from ingestors.binance.recording import Recording, RecordingError, load_recording

__all__ = ["Record", "RecordFormat", "RecordKind", "Session", "SessionError", "detect_format", "read_session"]


class SessionError(ValueError):
    """A recording file that is missing, of an unknown format, or malformed."""


class RecordFormat(StrEnum):
    HFTBACKTEST = "hftbacktest"
    CRYPTOFEED = "cryptofeed"


class RecordKind(StrEnum):
    WS = "ws"  # a websocket text frame received
    WS_BINARY = "ws_binary"  # a websocket binary frame; data is its base64 text
    HTTP = "http"  # a REST answer (url + body)


class Record(NamedTuple):
    """One received thing, text exactly as recorded."""

    recv_ns: int
    kind: RecordKind
    data: str  # frame text or HTTP body
    url: str = ""  # HTTP only
    conn: str = ""  # connection name (cryptofeed) or file name (hftbacktest)
    source: int = 0  # index of the file in the session
    position: int = 0  # hftbacktest: frames of that file's Recording received up to and including this one


@dataclass(frozen=True)
class Session:
    """The records of one or more files in receive order; hftbacktest files also keep their Recording."""

    format: RecordFormat
    paths: tuple[Path, ...]
    records: list[Record]
    recordings: dict[int, Recording] = field(default_factory=dict)  # by source index
    endpoints: dict[str, str] = field(default_factory=dict)  # cryptofeed: connection name -> websocket URL it opened


def detect_format(path: Path) -> RecordFormat:
    """*.jsonl.zst is cryptofeed, *.gz is hftbacktest."""
    name = path.name
    if name.endswith(".jsonl.zst"):
        return RecordFormat.CRYPTOFEED
    if name.endswith(".gz"):
        return RecordFormat.HFTBACKTEST
    raise SessionError(f"cannot tell the recording format of {path}: expected *.gz (hftbacktest) or *.jsonl.zst "
                       "(cryptofeed); pass --format")


def _read_hftbacktest(path: Path, source: int) -> tuple[list[Record], Recording]:
    try:
        rec = load_recording(path)
    except (OSError, RecordingError) as exc:
        raise SessionError(f"cannot read hftbacktest recording {path}: {exc}") from exc
    snapshot_url = f"/api/v3/depth?symbol={rec.symbol}"
    snapshot_text = orjson.dumps(rec.snapshot).decode()
    out: list[Record] = []
    for i, frame in enumerate(rec.frames):
        if i == rec.snapshot_position:  # the snapshot line came after i frames: give it the previous frame's time
            out.append(Record(rec.frames[i - 1].recv_ns if i else frame.recv_ns, RecordKind.HTTP, snapshot_text,
                              snapshot_url, path.name, source, i))
        if frame.stream.endswith("@aggTrade"):  # derived by load_recording from the trades, never received
            continue
        out.append(Record(frame.recv_ns, RecordKind.WS, frame.text, "", path.name, source, i + 1))
    return out, rec


def _read_cryptofeed(path: Path, source: int, endpoints: dict[str, str]) -> list[Record]:
    try:
        with path.open("rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as reader:
            raw = reader.read()
    except (OSError, zstandard.ZstdError) as exc:
        raise SessionError(f"cannot read cryptofeed recording {path}: {exc}") from exc
    out: list[Record] = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
            kind = rec["t"]
            if kind == "connect":  # which venue endpoint (e.g. Bybit's category) a connection's frames came from
                endpoints[str(rec.get("conn", ""))] = str(rec.get("addr", ""))
            if kind not in ("recv", "http"):
                continue
            binary = "data" not in rec
            data = rec["b64"] if binary else rec["data"]
            recv_ns = round(float(rec["ts"]) * 1e9)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SessionError(f"{path}:{n}: not a cryptofeed record ({exc}): {line[:200]!r}") from None
        if not isinstance(data, str):
            data = orjson.dumps(data).decode()
        record_kind = RecordKind.HTTP if kind == "http" else RecordKind.WS_BINARY if binary else RecordKind.WS
        out.append(Record(recv_ns, record_kind, data, rec.get("url", ""), rec.get("conn", ""), source))
    return out


def read_session(paths: Sequence[Path], fmt: RecordFormat | None = None) -> Session:
    """Read the files (one session, in the order given) into receive-ordered records."""
    if not paths:
        raise SessionError("no recording files given")
    formats = {fmt or detect_format(p) for p in paths}
    if len(formats) != 1:
        raise SessionError(f"files of different formats in one session: {sorted(formats)}")
    session_format = formats.pop()
    records: list[Record] = []
    recordings: dict[int, Recording] = {}
    endpoints: dict[str, str] = {}
    for source, path in enumerate(paths):
        if not path.is_file():
            raise SessionError(f"recording file not found: {path}")
        if session_format is RecordFormat.HFTBACKTEST:
            part, recordings[source] = _read_hftbacktest(path, source)
        else:
            part = _read_cryptofeed(path, source, endpoints)
        records.extend(part)
    records.sort(key=lambda r: r.recv_ns)  # stable: ties keep file order
    return Session(session_format, tuple(paths), records, recordings, endpoints)
