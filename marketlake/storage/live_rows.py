"""Live Kafka records → Arrow rows of market.trades, market.ohlc, market.book_snapshots and market.heatmap.

Pure functions over decoded records, tested without Kafka. A record that breaks
a row rule (a price that is not a decimal fitting decimal(38,18), an empty
trade id, an open candle) is skipped and counted, never written and never
allowed to stop the stream behind it. Heatmaps are computed from the sampled
book snapshots with the stream processor's own code (live_relay/book_views.py),
so a stored heatmap is the one a subscriber saw for the same book.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

from live_relay.book_views import BookViews
from live_relay.messages import OHLC, BookUpdate, Heatmap, Tick
from live_relay.topics import parse_ticker
from marketlake.storage.batches import InvalidBatchError, parse_decimal
from marketlake.storage.iceberg_tables import OHLC_SCHEMA, TRADES_SCHEMA
from marketlake.storage.live_tables import BOOK_SNAPSHOTS_SCHEMA, HEATMAP_SCHEMA, LIVE_SOURCE

SOURCE = LIVE_SOURCE


@dataclass(frozen=True, slots=True)
class LiveRecord:
    """One decoded live record and where it is in Kafka."""

    topic: str
    partition: int
    offset: int
    message: object


@dataclass
class LiveRows:
    """Rows for each table, and the records skipped with why (first few reasons kept)."""

    trades: list[dict[str, Any]] = field(default_factory=list)
    ohlc: list[dict[str, Any]] = field(default_factory=list)
    book_snapshots: list[dict[str, Any]] = field(default_factory=list)
    heatmap: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)

    def skip(self, record: LiveRecord, why: str) -> None:
        self.skipped += 1
        if len(self.reasons) < 10:
            self.reasons.append(f"{record.topic}:{record.partition}:{record.offset}: {why}")

    def tables(self) -> dict[str, pa.Table]:
        return {
            "trades": pa.Table.from_pylist(self.trades, schema=TRADES_SCHEMA.as_arrow()),
            "ohlc": pa.Table.from_pylist(self.ohlc, schema=OHLC_SCHEMA.as_arrow()),
            "book_snapshots": pa.Table.from_pylist(self.book_snapshots, schema=BOOK_SNAPSHOTS_SCHEMA.as_arrow()),
            "heatmap": pa.Table.from_pylist(self.heatmap, schema=HEATMAP_SCHEMA.as_arrow()),
        }


def _kafka(r: LiveRecord) -> dict[str, Any]:
    return {"kafka_topic": r.topic, "kafka_partition": r.partition, "kafka_offset": r.offset}


def _dec(where: str, name: str, text: str) -> Decimal:
    return parse_decimal(where, name, text)


def _opt_dec(where: str, name: str, text: str) -> Decimal | None:
    return parse_decimal(where, name, text) if text else None  # '' means "not sent"


def trade_row(r: LiveRecord, t: Tick, batch_id: str) -> dict[str, Any]:
    where = f"trade {t.trade_id!r}"
    price, size = _dec(where, "price", t.price), _dec(where, "size", t.size)
    if not t.trade_id or price <= 0 or size < 0 or t.exchange_time_ns <= 0:
        raise InvalidBatchError(where, f"id {t.trade_id!r}, price {t.price}, size {t.size}, time {t.exchange_time_ns}")
    return {
        "ticker": t.ticker, "exchange": parse_ticker(t.ticker).exchange, "trade_id": t.trade_id,
        "first_trade_id": t.first_trade_id or None, "last_trade_id": t.last_trade_id or None,
        "price": price, "size": size, "buyer_is_maker": t.buyer_is_maker,
        "exchange_time_ns": t.exchange_time_ns, "trade_time": t.exchange_time_ns // 1000,
        "receive_time": t.receive_time_ns // 1000 or None, "source": SOURCE, "request_id": None,
        "batch_id": batch_id, **_kafka(r),
    }  # fmt: skip


def candle_row(r: LiveRecord, c: OHLC, batch_id: str, now_us: int) -> dict[str, Any]:
    where = f"candle {c.ticker} {c.period_seconds}s {c.open_time}"
    if not c.closed or c.period_seconds <= 0:
        raise InvalidBatchError(where, "not a closed candle")
    o, h, lo, cl, v = (_dec(where, n, getattr(c, n)) for n in ("open", "high", "low", "close", "volume"))
    if h < max(o, cl) or lo > min(o, cl) or v < 0:
        raise InvalidBatchError(where, f"inconsistent: open {o} high {h} low {lo} close {cl} volume {v}")
    return {
        "ticker": c.ticker, "exchange": parse_ticker(c.ticker).exchange, "period_seconds": c.period_seconds,
        "open_time": c.open_time, "open": o, "high": h, "low": lo, "close": cl, "volume": v,
        "quote_volume": _opt_dec(where, "quote_volume", c.quote_volume),
        "taker_buy_volume": _opt_dec(where, "taker_buy_volume", c.taker_buy_volume),
        "taker_buy_quote_volume": _opt_dec(where, "taker_buy_quote_volume", c.taker_buy_quote_volume),
        "trade_count": c.trade_count, "source": SOURCE, "request_id": None, "batch_id": batch_id,
        "ingested_at": now_us, **_kafka(r),
    }  # fmt: skip


def snapshot_rows(r: LiveRecord, u: BookUpdate) -> list[dict[str, Any]]:
    where = f"book {u.ticker} at {u.exchange_time_ns}"
    if not u.snapshot or u.exchange_time_ns <= 0:
        raise InvalidBatchError(where, "not a sampled book snapshot")
    common = {"ticker": u.ticker, "exchange": parse_ticker(u.ticker).exchange, "snapshot_time": u.exchange_time_ns // 1000,
              "update_id": u.update_id or None, "receive_time": u.receive_time_ns // 1000 or None, **_kafka(r)}  # fmt: skip
    return [{**common, "side": side, "level": i, "price": _dec(where, "price", lv.price), "size": _dec(where, "size", lv.size)}
            for side, levels in (("bid", u.bids), ("ask", u.asks)) for i, lv in enumerate(levels)]  # fmt: skip


def heatmap_rows(r: LiveRecord, u: BookUpdate, bucket_sizes: dict[str, str]) -> list[dict[str, Any]]:
    """The heatmap of one sampled book, as the stream processor computes it (top 50 levels a side in buckets)."""
    heat = next((m for _topic, m in BookViews(bucket_sizes).on_update(u) if isinstance(m, Heatmap)), None)
    if heat is None:  # an empty side: no mid price, no buckets (as live)
        return []
    common = {"ticker": u.ticker, "exchange": parse_ticker(u.ticker).exchange, "snapshot_time": u.exchange_time_ns // 1000,
              "bucket_size": Decimal(heat.bucket_size), **_kafka(r)}  # fmt: skip
    return [{**common, "price": Decimal(b.price), "bid_size": Decimal(b.bid_size), "ask_size": Decimal(b.ask_size),
             "intensity": b.intensity} for b in heat.buckets]  # fmt: skip


def live_rows(records: Iterable[LiveRecord], batch_id: str, bucket_sizes: dict[str, str] | None = None) -> LiveRows:
    """Every table's rows from a run's records (trades from live.trades, closed candles from live.ohlc,
    books and heatmaps from live.book_snapshots); other record types are skipped and counted."""
    out = LiveRows()
    now_us = time.time_ns() // 1000
    for r in records:
        m = r.message
        try:
            if isinstance(m, Tick):
                out.trades.append(trade_row(r, m, batch_id))
            elif isinstance(m, OHLC):
                out.ohlc.append(candle_row(r, m, batch_id, now_us))
            elif isinstance(m, BookUpdate):
                rows = snapshot_rows(r, m)
                out.book_snapshots.extend(rows)
                out.heatmap.extend(heatmap_rows(r, m, bucket_sizes or {}))
            else:
                out.skip(r, f"{type(m).__name__} is not stored from this topic")
        except (InvalidBatchError, ValueError) as exc:
            out.skip(r, str(exc))
    return out
