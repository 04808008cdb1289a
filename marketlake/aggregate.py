"""`marketlake aggregate`: the live candle builder run over recorded trades; closed candles as JSON lines.

The recorded session is read with marketlake.recordings (hftbacktest or
cryptofeed files, several files as one session in receive order), each
exchange's trade frames are parsed with that exchange's own parser, and the
trades go through live_relay.candles.CandleBuilder exactly as live trades do.
At the end of the input every open candle is closed, so the first and last
candles cover only the recorded part of their period. Anyone can compare the
output with the exchange's own candles (Binance: /api/v3/klines).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ingestors.binance.config import SymbolError, ticker_for
from ingestors.binance.parse import BinanceParseError, parse_agg_trade, parse_combined_frame, parse_trade_event
from live_relay.candles import NS_PER_S, CandleBuilder, CandleError
from live_relay.messages import OHLC, Tick
from marketlake.recordings import Record, RecordFormat, RecordKind, Session, SessionError, read_session

__all__ = ["AggregateReport", "TRADE_PARSERS", "aggregate_session", "candle_json", "run_aggregate", "session_trades"]


class NoTradesError(ValueError):
    """The session holds no trade this command can parse."""


def binance_trades(record: Record) -> list[Tick]:
    """<symbol>@trade and <symbol>@aggTrade combined-stream frames; [] for any other stream."""
    stream, data = parse_combined_frame(record.data)
    kind = stream.rpartition("@")[2]
    if kind == "trade":
        return [parse_trade_event(data, ticker_for(data["s"]), record.recv_ns)]
    if kind == "aggTrade":
        return [parse_agg_trade(data, ticker_for(data["s"]), record.recv_ns)]
    return []


# Trade parsers by exchange: add an exchange here when its parser exists.
TRADE_PARSERS: dict[str, Callable[[Record], list[Tick]]] = {"BINANCE": binance_trades}
MALFORMED = (BinanceParseError, SymbolError, KeyError, TypeError, ValueError)


@dataclass
class AggregateReport:
    files: list[str]
    period_seconds: int
    trades: int = 0
    candles: int = 0
    late_corrected: int = 0
    late_dropped: int = 0
    malformed_frames: int = 0
    unsupported: Counter[str] = field(default_factory=Counter)  # frames of exchanges without a trade parser


def record_exchange(session: Session, record: Record) -> str:
    """hftbacktest recordings are Binance's; cryptofeed connections are named "<EXCHANGE>.ws.<n>"."""
    if session.format is RecordFormat.HFTBACKTEST:
        return "BINANCE"
    return record.conn.partition(".")[0].upper()


def session_trades(session: Session, report: AggregateReport) -> Iterator[Tick]:
    """Every parsable trade of the session, in receive order; malformed and unsupported frames counted."""
    for record in session.records:
        if record.kind is not RecordKind.WS:
            continue
        exchange = record_exchange(session, record)
        parser = TRADE_PARSERS.get(exchange)
        if parser is None:
            report.unsupported[exchange] += 1
            continue
        try:
            ticks = parser(record)
        except MALFORMED:
            report.malformed_frames += 1
            continue
        report.trades += len(ticks)
        yield from ticks


def aggregate_session(session: Session, period_seconds: int, allowed_lateness_ns: int = 0) -> tuple[list[OHLC], AggregateReport]:
    """The final candles of the session (a late correction replaces the earlier final), by open time then ticker."""
    report = AggregateReport([str(p) for p in session.paths], period_seconds)
    builder = CandleBuilder([period_seconds], allowed_lateness_ns=allowed_lateness_ns, emit_updates=False)
    finals: dict[tuple[str, int], OHLC] = {}
    for tick in session_trades(session, report):
        for candle in builder.on_trade(tick):
            finals[(candle.ticker, candle.open_time)] = candle
    for candle in builder.flush():
        finals[(candle.ticker, candle.open_time)] = candle
    if not report.trades:
        where = f"; no trade parser for {', '.join(sorted(report.unsupported))} yet" if report.unsupported else ""
        raise NoTradesError(f"no trades found in {', '.join(report.files)}{where} (parsers: {', '.join(TRADE_PARSERS)})")
    report.candles = len(finals)
    report.late_corrected, report.late_dropped = builder.stats.late_corrected, builder.stats.dropped
    return sorted(finals.values(), key=lambda c: (c.open_time, c.ticker)), report


def candle_json(c: OHLC) -> dict[str, Any]:
    """One output line: the fields of the issue first, then the rest of the candle."""
    return {"ticker": c.ticker, "open_time": c.open_time, "open": c.open, "high": c.high, "low": c.low,
            "close": c.close, "volume": c.volume, "trade_count": c.trade_count, "period_seconds": c.period_seconds,
            "quote_volume": c.quote_volume, "taker_buy_volume": c.taker_buy_volume,
            "taker_buy_quote_volume": c.taker_buy_quote_volume}


def run_aggregate(period_seconds: int, files: Sequence[str], fmt: str | None = None,
                  allowed_lateness_seconds: float = 0.0) -> int:
    """The CLI: candles on stdout, a one-line summary on stderr; 0 on success, 2 when the input is unusable."""
    try:
        session_format = RecordFormat(fmt.lower()) if fmt else None
    except ValueError:
        print(f"error: unknown --format {fmt!r}; use {' or '.join(f.value for f in RecordFormat)}", file=sys.stderr)
        return 2
    if period_seconds <= 0 or allowed_lateness_seconds < 0:
        print(f"error: --period must be positive and --allowed-lateness not negative, got {period_seconds} and "
              f"{allowed_lateness_seconds}", file=sys.stderr)
        return 2
    try:
        session = read_session([Path(f) for f in files], session_format)
        candles, report = aggregate_session(session, period_seconds, round(allowed_lateness_seconds * NS_PER_S))
    except (SessionError, NoTradesError, CandleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    for candle in candles:
        out.write(orjson.dumps(candle_json(candle)).decode() + "\n")
    out.flush()
    skipped = ", ".join(f"{n} {x} frames" for x, n in sorted(report.unsupported.items())) or "none"
    print(f"aggregate: {report.trades} trades -> {report.candles} candles of {period_seconds} s; late trades corrected "
          f"{report.late_corrected}, dropped {report.late_dropped}; malformed frames {report.malformed_frames}; "
          f"skipped (no trade parser): {skipped}", file=sys.stderr)
    return 0
