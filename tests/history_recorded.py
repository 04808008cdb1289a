"""The recorded trades of each exchange's cryptofeed recording, parsed here from the raw frames.

Independent of the replay servers' own parsing (ingestors/replay/, ingestors/<x>/replay.py):
the history-fetcher tests compare what our REST clients fetch through a replay server with
what these functions read straight from the recording, and candles with candles_of().
Numbers sent as JSON numbers (Bitfinex, HTX, Kraken times) are read as their text.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ingestors.coinbase.config import time_ns as coinbase_time_ns
from ingestors.replay.session import read_records


@dataclass(frozen=True)
class RecTrade:
    trade_id: str
    ts_ns: int
    price: str
    size: str
    buyer_is_maker: bool


@dataclass(frozen=True)
class RecCandle:
    open_time_us: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    count: int


def _frames(data_dir: Path, exchange: str) -> list[tuple[str, str, Any]]:
    """(connection, its URL path, decoded frame) of every received websocket frame, in file order."""
    paths: dict[str, str] = {}
    out = []
    for r in read_records(data_dir / "cryptofeed" / f"{exchange}.jsonl.zst"):
        conn = str(r.get("conn"))
        if r["t"] == "connect":
            paths[conn] = urlsplit(str(r["addr"])).path
        elif r["t"] == "recv":
            text = gzip.decompress(base64.b64decode(str(r["b64"]))).decode() if "b64" in r else r["data"]
            if not isinstance(text, str):
                text = json.dumps(text)
            try:
                out.append((conn, paths.get(conn, ""), json.loads(text, parse_float=str)))
            except json.JSONDecodeError:
                continue
    return out


def _coinbase(frames: list[tuple[str, str, Any]], symbol: str) -> list[RecTrade]:
    return [RecTrade(t["trade_id"], coinbase_time_ns(t["time"]), t["price"], t["size"], t["side"] == "SELL")
            for _, _, m in frames if isinstance(m, dict) and m.get("channel") == "market_trades"
            for e in m.get("events", []) for t in e.get("trades", []) if t["product_id"] == symbol]


def _kraken(frames: list[tuple[str, str, Any]], symbol: str) -> list[RecTrade]:
    rows = [(int(Decimal(r[2]) * 10**9), r) for _, _, m in frames
            if isinstance(m, list) and len(m) >= 4 and m[-2] == "trade" and m[-1] == symbol for r in m[1]]
    rows.sort(key=lambda x: x[0] // 1_000_000)  # v1 trades carry no id: the replay numbers them 1.. in time order
    return [RecTrade(str(n), ns, r[0], r[1], r[3] == "s") for n, (ns, r) in enumerate(rows, 1)]


def _okx(frames: list[tuple[str, str, Any]], symbol: str) -> list[RecTrade]:
    return [RecTrade(d["tradeId"], int(d["ts"]) * 10**6, d["px"], d["sz"], d["side"] == "sell") for _, _, m in frames
            if isinstance(m, dict) and (m.get("arg") or {}).get("channel") == "trades" and "data" in m
            for d in m["data"] if d["instId"] == symbol]


def _bybit(frames: list[tuple[str, str, Any]], symbol: str) -> list[RecTrade]:
    category, _, sym = symbol.partition(":")
    return [RecTrade(d["i"], int(d["T"]) * 10**6, d["p"], d["v"], d["S"] == "Sell") for _, path, m in frames
            if path.endswith("/" + category) and isinstance(m, dict) and m.get("topic") == f"publicTrade.{sym}"
            for d in m["data"]]


def _gateio(frames: list[tuple[str, str, Any]], symbol: str) -> list[RecTrade]:
    return [RecTrade(str(r["id"]), int(Decimal(r["create_time_ms"]) * 10**6), r["price"], r["amount"], r["side"] == "sell")
            for _, _, m in frames if isinstance(m, dict) and m.get("channel") == "spot.trades" and m.get("event") == "update"
            for r in [m["result"]] if r["currency_pair"] == symbol]


def _kucoin(frames: list[tuple[str, str, Any]], symbol: str) -> list[RecTrade]:
    return [RecTrade(d["sequence"], int(d["time"]), d["price"], d["size"], d["side"] == "sell") for _, _, m in frames
            if isinstance(m, dict) and m.get("subject") == "trade.l3match" for d in [m["data"]] if d["symbol"] == symbol]


def _bitfinex(frames: list[tuple[str, str, Any]], symbol: str) -> list[RecTrade]:
    channels: set[tuple[str, int]] = set()  # (connection, chanId) of the symbol's trades channel
    rows: list[list[Any]] = []
    for conn, _, m in frames:
        if isinstance(m, dict) and m.get("event") == "subscribed" and m.get("channel") == "trades" and m.get("symbol") == symbol:
            channels.add((conn, int(m["chanId"])))
        elif isinstance(m, list) and len(m) > 1 and (conn, m[0]) in channels:
            if m[1] == "te":
                rows.append(m[2])
            elif isinstance(m[1], list) and m[1] and isinstance(m[1][0], list):
                rows.extend(m[1])
    return [RecTrade(str(r[0]), int(r[1]) * 10**6, str(r[3]), str(r[2]).lstrip("-"), str(r[2]).startswith("-")) for r in rows]


def _huobi(frames: list[tuple[str, str, Any]], symbol: str) -> list[RecTrade]:
    return [RecTrade(str(d["tradeId"]), int(d["ts"]) * 10**6, d["price"], d["amount"], d["direction"] == "sell")
            for _, _, m in frames if isinstance(m, dict) and m.get("ch") == f"market.{symbol}.trade.detail"
            for d in m["tick"]["data"]]


PARSERS = {"COINBASE": _coinbase, "KRAKEN": _kraken, "OKX": _okx, "BYBIT": _bybit, "GATEIO": _gateio, "KUCOIN": _kucoin,
           "BITFINEX": _bitfinex, "HUOBI": _huobi}


def recorded_trades(data_dir: Path, exchange: str, symbol: str) -> list[RecTrade]:
    """The symbol's recorded trades, each once, oldest first (same-time trades by numeric id)."""
    seen: set[str] = set()
    out = []
    for t in PARSERS[exchange](_frames(data_dir, exchange), symbol):
        if t.trade_id not in seen:
            seen.add(t.trade_id)
            out.append(t)
    return sorted(out, key=lambda t: (t.ts_ns // 1_000_000, int(t.trade_id) if t.trade_id.isdigit() else 0))


def candles_of(trades: list[RecTrade], period_seconds: int) -> list[RecCandle]:
    """Candles from trades: one per period that has trades (the replay serves no empty ones)."""
    buckets: dict[int, list[RecTrade]] = {}
    step = period_seconds * 10**9
    for t in trades:
        buckets.setdefault(t.ts_ns // 1_000_000 * 1_000_000 // step * step, []).append(t)
    out = []
    for start, rows in sorted(buckets.items()):
        prices = [Decimal(t.price) for t in rows]
        out.append(RecCandle(start // 1000, prices[0], max(prices), min(prices), prices[-1],
                             sum((Decimal(t.size) for t in rows), Decimal(0)), len(rows)))
    return out
