"""Test helpers for the analytics tests: a lake in a tmp dir, filled through the real write path.

Candles are the Binance replay server's deterministic synthetic klines (its `SymbolHistory`, parsed
by the ingestor's `parse_kline`); trades are the recorded Binance websocket trades. Rows go in as
history batches do: OHLCBatch records -> `assemble_batch` + the batch checks -> `ohlc_arrow_table` /
`trades_arrow_table` -> `IcebergResource.write_batch` (one atomic overwrite each). Only the Kafka
read is skipped: the records get made-up offsets.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path

from msgspec.structs import replace

from ingestors.binance.config import SYMBOL_SPECS
from ingestors.binance.history import SymbolHistory
from ingestors.binance.parse import parse_kline
from live_relay.messages import OHLC, BatchKind, OHLCBatch, Status, Tick
from marketlake.settings import Settings
from marketlake.storage import batches
from marketlake.storage.batches import BatchRange, BatchRecord, HistoryBatch
from resources.iceberg import BatchWrite, IcebergResource

MINUTE_US = 60_000_000
DAY_US = 1440 * MINUTE_US
AUG_7_US = 1_722_988_800_000_000  # 2024-08-07 00:00 UTC
_offsets = itertools.count(1000)


def lake_settings(home: Path) -> Settings:
    """Settings whose catalog and warehouse are under `home` (no Kafka needed: nothing is read from it)."""
    return Settings(home=home, catalog_name="marketlake", catalog_uri=f"sqlite:///{home / 'iceberg' / 'catalog.db'}",
                    warehouse=f"file://{home / 'iceberg' / 'warehouse'}")  # fmt: skip


@cache
def _history(symbol: str) -> SymbolHistory:
    return SymbolHistory(SYMBOL_SPECS[symbol], None)


def synthetic_candles(symbol: str, ticker: str, period: int, start_us: int, end_us: int) -> list[OHLC]:
    """The replay server's klines of `symbol` over [start, end), as the ingestor parses them."""
    step_ms, end_ms = period * 1000, end_us // 1000
    rows: list[list[object]] = []
    cursor = start_us // 1000
    while cursor < end_ms:
        page = _history(symbol).klines(period, cursor, end_ms - 1, 1000, now_ms=end_ms + step_ms)
        rows += page
        cursor = int(page[-1][0]) + step_ms  # type: ignore[call-overload]
    return [parse_kline(row, ticker, period) for row in rows]


def shifted(candles: Sequence[OHLC], ticker: str, offsets: Sequence[Decimal]) -> list[OHLC]:
    """The same candles on another exchange, every price moved by offsets[i % len] (stays valid; quote volumes follow)."""
    out = []
    for i, c in enumerate(candles):
        d = offsets[i % len(offsets)]
        out.append(replace(
            c, ticker=ticker, open=str(Decimal(c.open) + d), high=str(Decimal(c.high) + d), low=str(Decimal(c.low) + d),
            close=str(Decimal(c.close) + d), quote_volume=str(Decimal(c.quote_volume) + d * Decimal(c.volume)),
            taker_buy_quote_volume=str(Decimal(c.taker_buy_quote_volume) + d * Decimal(c.taker_buy_volume)),
        ))  # fmt: skip
    return out


def history_batch(rows: Sequence[OHLC] | Sequence[Tick], ticker: str, period: int, start_us: int, end_us: int) -> HistoryBatch:
    """One checked batch as the history asset gets it from Kafka: METADATA, ROWS of 500, END."""
    common = dict(batch_id=f"b-{uuid.uuid4().hex[:12]}", request_id=f"r-{uuid.uuid4().hex[:12]}", client_id="c",
                  ticker=ticker, period_seconds=period, start_time=start_us, end_time=end_us)  # fmt: skip
    records = [OHLCBatch(kind=BatchKind.METADATA, sequence=0, source="replay", **common)]  # type: ignore[arg-type]
    for i in range(0, len(rows), 500):
        chunk = tuple(rows[i : i + 500])
        payload = {"ticks": chunk} if period == 0 else {"rows": chunk}
        records.append(OHLCBatch(kind=BatchKind.ROWS, sequence=len(records), fetched_at=end_us, **common, **payload))  # type: ignore[arg-type]
    records.append(OHLCBatch(kind=BatchKind.END, sequence=len(records), status=Status.OK, row_count=len(rows), **common))  # type: ignore[arg-type]
    first = next(_offsets)
    for _ in records[1:]:
        next(_offsets)
    location = BatchRange("t.history", 0, first, first + len(records) - 1, str(common["batch_id"]))
    batch = batches.assemble_batch(location, [BatchRecord(first + i, r) for i, r in enumerate(records)])
    batches.check_metadata(batch.metadata)
    if period == 0:
        batches.check_ticks(batch.metadata, [t for r in batch.rows for t in r.message.ticks])
    else:
        batches.check_candles(batch.metadata, [c for r in batch.rows for c in r.message.rows])
    return batch


def write(settings: Settings, rows: Sequence[OHLC] | Sequence[Tick], ticker: str, period: int,
          start_us: int, end_us: int) -> BatchWrite:  # fmt: skip
    """Write one batch of candles (period > 0) or trades (period 0) exactly as a history run does."""
    return IcebergResource.from_settings(settings).write_batch(history_batch(rows, ticker, period, start_us, end_us))
