"""Real Binance spot recordings (data/binance/spot_<symbol>_<date>.gz) as the replay server uses them.

Each line is "<receive time ns> <payload>": combined-stream frames (trade,
depth@100ms, bookTicker) exactly as Binance sent them, and one REST depth
snapshot. Aggregate trades are derived from the trades with Binance's rule
(consecutive trade ids of one taker: same price, same side, same millisecond);
their ids are invented (config.SymbolSpec.recorded_first_agg_id) because the
recording holds raw trades only. A derived <symbol>@aggTrade frame follows the
last trade of each aggregate, so that stream can be replayed too.
"""

from __future__ import annotations

import bisect
import gzip
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from ingestors.binance.config import SYMBOL_SPECS
from ingestors.binance.parse import parse_recorded_line
from ingestors.binance.schemas import AggTrade, agg_trade_wire, to_e8

log = logging.getLogger(__name__)


class RecordingError(ValueError):
    """A recording file that cannot be served (missing, malformed, unknown symbol)."""


class Frame(NamedTuple):
    """One recorded combined-stream frame; text is the frame JSON byte for byte."""

    recv_ns: int
    stream: str
    text: str

    def data_text(self) -> str:
        """The "data" member exactly as recorded: the raw-stream (/ws/<stream>) payload."""
        return self.text[len('{"stream":"') + len(self.stream) + len('","data":') : -1]


@dataclass(frozen=True, eq=False)
class Recording:
    symbol: str
    path: Path
    frames: tuple[Frame, ...]
    snapshot: dict[str, Any]  # the REST /api/v3/depth answer recorded after the websocket opened
    snapshot_position: int  # number of frames received before the snapshot
    trades: tuple[dict[str, Any], ...]  # <symbol>@trade events in order
    aggs: tuple[AggTrade, ...]
    aggs_by_minute: dict[int, tuple[AggTrade, ...]] = field(repr=False)
    recv_times: tuple[int, ...] = field(repr=False, default=())

    @property
    def first_minute(self) -> int:
        return self.aggs[0].time_ms // 60_000

    @property
    def last_minute(self) -> int:
        return self.aggs[-1].time_ms // 60_000

    def minute_of_agg_id(self, agg_id: int) -> int:
        return self.aggs[agg_id - self.aggs[0].agg_id].time_ms // 60_000

    def position_at(self, recv_ns: int) -> int:
        """How many frames were received at or before recv_ns."""
        return bisect.bisect_right(self.recv_times, recv_ns)

    def depth_at(self, position: int | None, limit: int) -> dict[str, Any]:
        """Depth snapshot after the first `position` frames (None: the recorded snapshot), top `limit` levels."""
        fresh = position is None or position <= self.snapshot_position
        book = self.snapshot if fresh else _book_after(self, position)  # type: ignore[arg-type]
        return {"lastUpdateId": book["lastUpdateId"], "bids": book["bids"][:limit], "asks": book["asks"][:limit]}


def _book_after(rec: Recording, position: int) -> dict[str, Any]:
    """Recorded snapshot plus the depth diffs among the first `position` frames (Binance's U/u rules)."""
    bids = {p: q for p, q in rec.snapshot["bids"]}
    asks = {p: q for p, q in rec.snapshot["asks"]}
    last = rec.snapshot["lastUpdateId"]
    for f in rec.frames[:position]:
        if not f.stream.endswith("@depth@100ms"):
            continue
        d = orjson.loads(f.data_text())
        if d["u"] <= last:
            continue
        if d["U"] > last + 1:
            raise RecordingError(f"{rec.path}: depth diff gap after update id {last}: next starts at {d['U']}")
        for side, levels in ((bids, d["b"]), (asks, d["a"])):
            for price, qty in levels:
                if to_e8(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        last = d["u"]
    return {
        "lastUpdateId": last,
        "bids": [[p, bids[p]] for p in sorted(bids, key=to_e8, reverse=True)],
        "asks": [[p, asks[p]] for p in sorted(asks, key=to_e8)],
    }


def aggregate_trades(trades: Iterable[dict[str, Any]], first_agg_id: int) -> list[AggTrade]:
    """Aggregate consecutive trades with the same price, side and millisecond into AggTrades."""
    out: list[AggTrade] = []
    for t in trades:
        price, qty, tid, ms, maker = to_e8(t["p"]), to_e8(t["q"]), t["t"], t["T"], t["m"]
        prev = out[-1] if out else None
        if prev and prev.last_id + 1 == tid and (prev.price_e8, prev.time_ms, prev.buyer_maker) == (price, ms, maker):
            out[-1] = prev._replace(qty_e8=prev.qty_e8 + qty, last_id=tid)
        else:
            out.append(AggTrade(first_agg_id + len(out), price, qty, tid, tid, ms, maker))
    return out


def _agg_frame(stream: str, a: AggTrade, event_ms: int, symbol: str) -> str:
    event = {"e": "aggTrade", "E": event_ms, "s": symbol, **agg_trade_wire(a)}
    return f'{{"stream":"{stream}","data":{orjson.dumps(event).decode()}}}'


def load_recording(path: Path) -> Recording:
    """Read one spot_<symbol>_<date>.gz file."""
    frames: list[Frame] = []
    trades: list[dict[str, Any]] = []
    trade_frame_index: list[int] = []
    snapshot: dict[str, Any] | None = None
    snapshot_position = 0
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            recv_ns, payload = parse_recorded_line(line)
            if not payload.startswith('{"stream":"'):
                snapshot, snapshot_position = orjson.loads(payload), len(frames)
                continue
            stream = payload[11 : payload.index('"', 11)]
            frames.append(Frame(recv_ns, stream, payload))
            if stream.endswith("@trade"):
                trades.append(orjson.loads(frames[-1].data_text()))
                trade_frame_index.append(len(frames) - 1)
    if not trades or snapshot is None:
        raise RecordingError(f"{path}: no trades or no depth snapshot in the recording")
    symbol = trades[0]["s"]
    spec = SYMBOL_SPECS.get(symbol)
    if spec is None or not spec.recorded_first_agg_id:
        raise RecordingError(f"{path}: symbol {symbol} has no SymbolSpec with recorded_first_agg_id in config.py")
    aggs = aggregate_trades(trades, spec.recorded_first_agg_id)
    # Insert a derived aggTrade frame right after the last trade frame of each aggregate.
    stream = f"{symbol.lower()}@aggTrade"
    after: dict[int, Frame] = {}
    k = 0
    for a in aggs:
        k += a.last_id - a.first_id + 1
        fi = trade_frame_index[k - 1]
        after[fi] = Frame(frames[fi].recv_ns, stream, _agg_frame(stream, a, trades[k - 1]["E"], symbol))
    merged: list[Frame] = []
    shifted_snapshot = snapshot_position
    for i, f in enumerate(frames):
        merged.append(f)
        if i in after:
            merged.append(after[i])
            if i < snapshot_position:
                shifted_snapshot += 1
    by_minute: dict[int, list[AggTrade]] = {}
    for a in aggs:
        by_minute.setdefault(a.time_ms // 60_000, []).append(a)
    return Recording(
        symbol=symbol, path=path, frames=tuple(merged), snapshot=snapshot, snapshot_position=shifted_snapshot,
        trades=tuple(trades), aggs=tuple(aggs), aggs_by_minute={m: tuple(v) for m, v in by_minute.items()},
        recv_times=tuple(f.recv_ns for f in merged),
    )


def binance_dir(data_dir: Path) -> Path:
    """The shared data root (holding binance/) or the binance directory itself."""
    return data_dir / "binance" if (data_dir / "binance").is_dir() else data_dir


@lru_cache(maxsize=4)
def load_recordings(data_dir: Path) -> dict[str, Recording]:
    """Every spot_*.gz recording under data_dir, by symbol (cached: servers in one process share them)."""
    directory = binance_dir(Path(data_dir))
    if not directory.is_dir():
        raise RecordingError(f"Binance recordings directory not found: {directory}")
    recs = [load_recording(p) for p in sorted(directory.glob("spot_*.gz"))]
    if not recs:
        log.warning("no Binance recordings in %s: everything will be synthetic", directory)
    return {r.symbol: r for r in recs}
