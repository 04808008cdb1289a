"""One history batch: read its Kafka offset range, check it, and turn it into an Arrow table.

A batch is METADATA (sequence 0), ROWS records, then END, all keyed by batch_id,
possibly interleaved with other writers' batches in the same partition. The
reader consumes exactly [start_offset, end_offset] with `assign` (no consumer
group, no commits), keeps this batch's records and checks them; everything
after the read is pure and tested without Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
from confluent_kafka import Consumer, KafkaException, TopicPartition

from live_relay import codec
from live_relay.messages import OHLC, BatchKind, OHLCBatch, Status, Tick
from live_relay.topics import parse_ticker
from marketlake.storage.iceberg_tables import OHLC_SCHEMA, TRADES_SCHEMA

SOURCES = frozenset({"rest", "websocket", "repair", "replay"})
_MAX_INT_DIGITS = 20  # decimal(38, 18)
_MAX_FRACTION_DIGITS = 18


class BatchError(ValueError):
    """A batch that cannot be written; `reason` is what the client is told."""

    def __init__(self, batch_id: str, reason: str) -> None:
        super().__init__(f"batch {batch_id}: {reason}")
        self.batch_id = batch_id
        self.reason = reason


class InvalidBatchError(BatchError):
    """The records or rows of a batch break the batch format or a row rule."""


class BatchFailedError(BatchError):
    """The ingestor ended the batch with status ERROR; `reason` is the exchange's reason."""


class BatchReadError(BatchError):
    """The offset range could not be read from Kafka in time."""


@dataclass(frozen=True, slots=True)
class BatchRange:
    """Where a batch lives in Kafka: its METADATA offset to its END offset, inclusive."""

    topic: str
    partition: int
    start_offset: int
    end_offset: int
    batch_id: str

    @property
    def run_key(self) -> str:
        return f"{self.topic}:{self.partition}:{self.start_offset}-{self.end_offset}"


@dataclass(frozen=True, slots=True)
class BatchRecord:
    offset: int
    message: OHLCBatch


@dataclass(frozen=True, slots=True)
class HistoryBatch:
    """A complete, checked batch: METADATA, the ROWS records in order, and END."""

    location: BatchRange
    metadata: OHLCBatch
    rows: tuple[BatchRecord, ...]
    end: OHLCBatch

    @property
    def is_trades(self) -> bool:
        return self.metadata.period_seconds == 0

    @property
    def row_count(self) -> int:
        return sum(len(r.message.ticks if self.is_trades else r.message.rows) for r in self.rows)


def read_offset_range(
    consumer_config: dict[str, Any], location: BatchRange, timeout_seconds: float = 30.0
) -> list[BatchRecord]:
    """Consume offsets [start, end] of one partition and return this batch's records, decoded."""
    consumer = Consumer({**consumer_config, "enable.auto.commit": False})
    key = location.batch_id.encode()
    found: list[BatchRecord] = []
    next_offset = location.start_offset
    deadline = time.monotonic() + timeout_seconds
    try:
        consumer.assign([TopicPartition(location.topic, location.partition, location.start_offset)])
        while next_offset <= location.end_offset:
            if time.monotonic() > deadline:
                raise BatchReadError(
                    location.batch_id,
                    f"read of {location.run_key} stopped at offset {next_offset} after {timeout_seconds}s",
                )
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                if msg.error():
                    raise KafkaException(msg.error())
                offset = msg.offset() or 0  # never None for a fetched record
                if offset > location.end_offset:
                    break
                next_offset = offset + 1
                if msg.key() == key:
                    found.append(BatchRecord(offset, _decode(location.batch_id, offset, msg.value())))
    finally:
        consumer.close()
    return found


def _decode(batch_id: str, offset: int, value: bytes | None) -> OHLCBatch:
    try:
        message = codec.decode_record(value)
    except codec.FrameError as exc:
        raise InvalidBatchError(batch_id, f"record at offset {offset} does not decode: {exc}") from exc
    if not isinstance(message, OHLCBatch):
        raise InvalidBatchError(batch_id, f"record at offset {offset} is {type(message).__name__}, not OHLCBatch")
    return message


def assemble_batch(location: BatchRange, records: Sequence[BatchRecord]) -> HistoryBatch:
    """Check the END status and the record structure (METADATA..END, contiguous sequences)."""
    bid = location.batch_id
    mine = sorted((r for r in records if r.message.batch_id == bid), key=lambda r: r.offset)
    if not mine or mine[0].offset != location.start_offset or mine[0].message.kind != BatchKind.METADATA:
        raise InvalidBatchError(bid, f"no METADATA record at offset {location.start_offset}")
    if mine[-1].offset != location.end_offset or mine[-1].message.kind != BatchKind.END:
        raise InvalidBatchError(bid, f"no END record at offset {location.end_offset}")
    end = mine[-1].message
    if end.status == Status.ERROR:  # the exchange's reason first: a failed batch may also be partial
        raise BatchFailedError(bid, end.error_message or "the ingestor reported an error without a reason")
    for expected, record in enumerate(mine):
        if record.message.sequence != expected:
            raise InvalidBatchError(
                bid, f"sequence {record.message.sequence} at offset {record.offset}, expected {expected}"
            )
    middle = mine[1:-1]
    stray = [r.offset for r in middle if r.message.kind != BatchKind.ROWS]
    if stray:
        raise InvalidBatchError(bid, f"records between METADATA and END that are not ROWS at offsets {stray}")
    batch = HistoryBatch(location, mine[0].message, tuple(middle), end)
    if batch.end.status != Status.OK:
        raise InvalidBatchError(bid, f"END status {batch.end.status.name}, expected OK or ERROR")
    if batch.end.row_count != batch.row_count:
        raise InvalidBatchError(bid, f"END says {batch.end.row_count} rows, the batch holds {batch.row_count}")
    return batch


def parse_decimal(batch_id: str, name: str, text: str) -> Decimal:
    """An exchange decimal string as an exact Decimal that fits decimal(38, 18)."""
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidBatchError(batch_id, f"{name}={text!r} is not a decimal number") from exc
    if not value.is_finite():
        raise InvalidBatchError(batch_id, f"{name}={text!r} is not finite")
    fraction_digits = -int(value.normalize().as_tuple().exponent)  # an int for every finite value
    if fraction_digits > _MAX_FRACTION_DIGITS or value.adjusted() >= _MAX_INT_DIGITS:
        raise InvalidBatchError(batch_id, f"{name}={text!r} does not fit decimal(38,18)")
    return value


def _alignment_origin_and_step(period_seconds: int) -> tuple[int, int]:
    """Candle grids: intraday periods align to the epoch, weeks start on Monday, others on a UTC day."""
    second = 1_000_000
    if 86_400 % period_seconds == 0:
        return 0, period_seconds * second
    if period_seconds == 604_800:
        return 4 * 86_400 * second, period_seconds * second  # 1970-01-05 was the first Monday
    return 0, 86_400 * second


def check_metadata(metadata: OHLCBatch) -> None:
    """The METADATA record names a valid ticker, range and source."""
    bid = metadata.batch_id
    try:
        parse_ticker(metadata.ticker)
    except ValueError as exc:
        raise InvalidBatchError(bid, str(exc)) from exc
    if metadata.start_time >= metadata.end_time:
        raise InvalidBatchError(bid, f"empty range [{metadata.start_time}, {metadata.end_time})")
    if metadata.source not in SOURCES:
        raise InvalidBatchError(bid, f"source {metadata.source!r} is not one of {sorted(SOURCES)}")


def check_candles(metadata: OHLCBatch, candles: Sequence[OHLC]) -> None:
    """Every candle is this batch's ticker and period, in range, on the grid, unique, and consistent."""
    bid, start, end = metadata.batch_id, metadata.start_time, metadata.end_time
    origin, step = _alignment_origin_and_step(metadata.period_seconds)
    seen: set[int] = set()
    for c in candles:
        where = f"candle {c.open_time}"
        if c.ticker != metadata.ticker or c.period_seconds != metadata.period_seconds:
            raise InvalidBatchError(bid, f"{where} is {c.ticker} {c.period_seconds}s, batch is "
                                         f"{metadata.ticker} {metadata.period_seconds}s")
        if not start <= c.open_time < end:
            raise InvalidBatchError(bid, f"{where} outside [{start}, {end})")
        if (c.open_time - origin) % step:
            raise InvalidBatchError(bid, f"{where} not aligned to the {metadata.period_seconds}s grid")
        if c.open_time in seen:
            raise InvalidBatchError(bid, f"{where} appears twice")
        seen.add(c.open_time)
        o, h, lo, cl, v = (parse_decimal(bid, f"{where} {n}", getattr(c, n))
                           for n in ("open", "high", "low", "close", "volume"))
        for name in ("quote_volume", "taker_buy_volume", "taker_buy_quote_volume"):  # '': not sent
            if getattr(c, name):
                parse_decimal(bid, f"{where} {name}", getattr(c, name))
        if h < max(o, cl) or lo > min(o, cl):
            raise InvalidBatchError(bid, f"{where} has high {h} / low {lo} outside open {o} / close {cl}")
        if v < 0:
            raise InvalidBatchError(bid, f"{where} has negative volume {v}")


def check_ticks(metadata: OHLCBatch, ticks: Sequence[Tick]) -> None:
    """Every trade is this batch's ticker, in range, with a unique id, a positive price, a size >= 0."""
    bid, start, end = metadata.batch_id, metadata.start_time, metadata.end_time
    seen: set[str] = set()
    for t in ticks:
        where = f"trade {t.trade_id!r}"
        if t.ticker != metadata.ticker:
            raise InvalidBatchError(bid, f"{where} is {t.ticker}, batch is {metadata.ticker}")
        if not t.trade_id or t.trade_id in seen:
            raise InvalidBatchError(bid, f"{where} is empty or appears twice")
        seen.add(t.trade_id)
        if not start <= t.exchange_time_ns // 1000 < end:
            raise InvalidBatchError(bid, f"{where} at {t.exchange_time_ns} ns outside [{start}, {end}) us")
        price, size = parse_decimal(bid, f"{where} price", t.price), parse_decimal(bid, f"{where} size", t.size)
        if price <= 0 or size < 0:
            raise InvalidBatchError(bid, f"{where} has price {price} size {size}")


def load_batch(consumer_config: dict[str, Any], location: BatchRange, timeout_seconds: float = 30.0) -> HistoryBatch:
    """Read, assemble and check one batch; raises a BatchError subclass with the reason."""
    batch = assemble_batch(location, read_offset_range(consumer_config, location, timeout_seconds))
    check_metadata(batch.metadata)
    if batch.is_trades:
        check_ticks(batch.metadata, [t for r in batch.rows for t in r.message.ticks])
    else:
        check_candles(batch.metadata, [c for r in batch.rows for c in r.message.rows])
    return batch


def _ts(us: int) -> int | None:
    return us if us > 0 else None  # 0 means "not known" in the protobuf


def _dec(text: str) -> Decimal | None:
    return Decimal(text) if text else None  # '' means "the exchange does not send it"


def ohlc_arrow_table(batch: HistoryBatch) -> pa.Table:
    """The batch's candles in the exact Arrow schema of `market.ohlc` (one row per candle)."""
    meta, loc = batch.metadata, batch.location
    exchange = parse_ticker(meta.ticker).exchange
    rows = [
        {
            "ticker": c.ticker, "exchange": exchange, "period_seconds": c.period_seconds, "open_time": c.open_time,
            "open": Decimal(c.open), "high": Decimal(c.high), "low": Decimal(c.low), "close": Decimal(c.close),
            "volume": Decimal(c.volume), "quote_volume": _dec(c.quote_volume),
            "taker_buy_volume": _dec(c.taker_buy_volume), "taker_buy_quote_volume": _dec(c.taker_buy_quote_volume),
            "trade_count": c.trade_count, "source": meta.source, "request_id": meta.request_id,
            "batch_id": meta.batch_id, "ingested_at": _ts(r.message.fetched_at),
            "kafka_topic": loc.topic, "kafka_partition": loc.partition, "kafka_offset": r.offset,
        }
        for r in batch.rows
        for c in r.message.rows
    ]
    return pa.Table.from_pylist(rows, schema=OHLC_SCHEMA.as_arrow())


def trades_arrow_table(batch: HistoryBatch) -> pa.Table:
    """The batch's trades in the exact Arrow schema of `market.trades` (one row per trade)."""
    meta, loc = batch.metadata, batch.location
    exchange = parse_ticker(meta.ticker).exchange
    rows = [
        {
            "ticker": t.ticker, "exchange": exchange, "trade_id": t.trade_id,
            "first_trade_id": t.first_trade_id or None, "last_trade_id": t.last_trade_id or None,
            "price": Decimal(t.price), "size": Decimal(t.size), "buyer_is_maker": t.buyer_is_maker,
            "exchange_time_ns": t.exchange_time_ns, "trade_time": t.exchange_time_ns // 1000,
            "receive_time": _ts(t.receive_time_ns // 1000) or _ts(r.message.fetched_at),
            "source": meta.source, "request_id": meta.request_id, "batch_id": meta.batch_id,
            "kafka_topic": loc.topic, "kafka_partition": loc.partition, "kafka_offset": r.offset,
        }
        for r in batch.rows
        for t in r.message.ticks
    ]
    return pa.Table.from_pylist(rows, schema=TRADES_SCHEMA.as_arrow())
