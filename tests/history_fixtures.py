"""Test helpers for the history path: real Binance trades, candles built from them, batches in Kafka.

The trades are the recorded Binance BTCUSDT websocket frames (data/binance); a
1-minute candle is derived from the trades of its minute, field for field
(open = first price, volume = sum of sizes, quote volume = sum of price * size).
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path

from confluent_kafka import Producer

from live_relay import codec
from live_relay.messages import OHLC, BatchKind, OHLCBatch, Status, Tick
from marketlake.kafka_topics import history_topic, producer_config
from marketlake.settings import Settings

TICKER = "BINANCE:BTC/USDT"
MINUTE_US = 60_000_000
# 2024-08-08 23:55:00 UTC: the recording covers 23:54:13 to 24:00:00.
START_US = 1_723_161_300_000_000
END_US = START_US + 5 * MINUTE_US


@cache
def binance_trades(data_dir: Path) -> tuple[Tick, ...]:
    """Every BTCUSDT trade of the recording, as Ticks (exchange time ms -> ns, local receive time ns)."""
    ticks = []
    with gzip.open(data_dir / "binance" / "spot_btcusdt_20240808.gz", "rt") as lines:
        for line in lines:
            local_ns, payload = line.split(" ", 1)
            if '"btcusdt@trade"' not in payload:
                continue
            d = json.loads(payload)["data"]
            ticks.append(Tick(
                ticker=TICKER, trade_id=str(d["t"]), price=d["p"], size=d["q"], buyer_is_maker=d["m"],
                exchange_time_ns=d["T"] * 1_000_000, receive_time_ns=int(local_ns),
            ))  # fmt: skip
    return tuple(ticks)


def trades_in(data_dir: Path, start_us: int, end_us: int) -> list[Tick]:
    return [t for t in binance_trades(data_dir) if start_us <= t.exchange_time_ns // 1000 < end_us]


def candles_from_trades(ticks: Sequence[Tick], period_seconds: int = 60) -> list[OHLC]:
    """Candles of `period_seconds` built from trades, prices kept as the exchange's strings."""
    step = period_seconds * 1_000_000
    buckets: dict[int, list[Tick]] = {}
    for t in ticks:
        buckets.setdefault(t.exchange_time_ns // 1000 // step * step, []).append(t)
    candles = []
    for open_time, group in sorted(buckets.items()):
        prices = [Decimal(t.price) for t in group]
        candles.append(OHLC(
            ticker=TICKER, period_seconds=period_seconds, open_time=open_time,
            open=group[0].price, high=group[prices.index(max(prices))].price,
            low=group[prices.index(min(prices))].price, close=group[-1].price,
            volume=str(sum(Decimal(t.size) for t in group)),
            quote_volume=str(sum(Decimal(t.price) * Decimal(t.size) for t in group)),
            trade_count=len(group),
            taker_buy_volume=str(sum((Decimal(t.size) for t in group if not t.buyer_is_maker), Decimal(0))),
            closed=True,
        ))  # fmt: skip
    return candles


def batch_records(
    rows: Sequence[OHLC | Tick],
    *,
    period_seconds: int,
    start_us: int = START_US,
    end_us: int = END_US,
    batch_id: str | None = None,
    request_id: str | None = None,
    client_id: str = "client-1",
    per_record: int = 100,
    status: Status = Status.OK,
    error_message: str = "",
) -> list[OHLCBatch]:
    """METADATA, ROWS (per_record rows each), END: one batch as the ingestors write it."""
    batch_id = batch_id or f"b-{uuid.uuid4().hex[:12]}"
    request_id = request_id or f"r-{uuid.uuid4().hex[:12]}"
    common = dict(batch_id=batch_id, request_id=request_id, client_id=client_id, ticker=TICKER,
                  period_seconds=period_seconds, start_time=start_us, end_time=end_us)  # fmt: skip
    records = [OHLCBatch(kind=BatchKind.METADATA, sequence=0, notification_topic=f"RESPONSE:{client_id}",
                         source="replay", ingestor_id="test-ingestor", **common)]  # fmt: skip
    for i in range(0, len(rows), per_record):
        chunk = rows[i : i + per_record]
        payload = {"ticks": tuple(chunk)} if period_seconds == 0 else {"rows": tuple(chunk)}
        records.append(OHLCBatch(kind=BatchKind.ROWS, sequence=len(records), fetched_at=start_us + 1, **common,
                                 **payload))  # type: ignore[arg-type]  # fmt: skip
    records.append(OHLCBatch(kind=BatchKind.END, sequence=len(records), status=status, error_message=error_message,
                             row_count=len(rows), **common))  # fmt: skip
    return records


def produce(
    settings: Settings, records: Sequence[OHLCBatch], partition: int = 0, timestamp_ms: int | None = None
) -> list[int]:
    """Write records to the history topic (key = batch_id) and return their offsets, in order."""
    producer = Producer(producer_config(settings))
    offsets: dict[int, int] = {}
    errors: list[str] = []

    def delivered(i: int):  # noqa: ANN202 - a delivery callback factory
        def callback(err: object, msg: object) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                offsets[i] = msg.offset()  # type: ignore[attr-defined]
        return callback

    for i, record in enumerate(records):
        extra = {"timestamp": timestamp_ms} if timestamp_ms is not None else {}
        producer.produce(history_topic(settings), key=record.batch_id.encode(), value=codec.encode_record(record),
                         partition=partition, on_delivery=delivered(i), **extra)  # fmt: skip
    remaining = producer.flush(30)
    assert remaining == 0 and not errors, f"Kafka delivery failed: {remaining} undelivered, errors {errors}"
    return [offsets[i] for i in range(len(records))]
