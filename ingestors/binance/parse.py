"""Pure parsers: Binance wire JSON -> the project's messages (live_relay.messages).

Prices and sizes are kept as the exact decimal strings Binance sent; times become
microseconds (candles) or nanoseconds (trades) since the epoch, UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from live_relay.messages import OHLC, Tick


class BinanceParseError(ValueError):
    """A Binance payload that does not have the documented shape."""


def parse_kline(row: Sequence[Any], ticker: str, period_seconds: int) -> OHLC:
    """A /api/v3/klines row [openTime, o, h, l, c, v, closeTime, quoteVol, n, takerBuyBase, takerBuyQuote, _]."""
    if len(row) < 11 or not isinstance(row[0], int):
        raise BinanceParseError(f"kline row for {ticker} has an unexpected shape: {row!r}")
    open_ms, close_ms = row[0], row[6]
    if close_ms != open_ms + period_seconds * 1000 - 1:
        raise BinanceParseError(
            f"kline {row!r} for {ticker} spans {close_ms - open_ms + 1} ms, not {period_seconds} s"
        )
    return OHLC(
        ticker=ticker,
        period_seconds=period_seconds,
        open_time=open_ms * 1000,
        open=row[1],
        high=row[2],
        low=row[3],
        close=row[4],
        volume=row[5],
        quote_volume=row[7],
        trade_count=int(row[8]),
        taker_buy_volume=row[9],
        taker_buy_quote_volume=row[10],
        closed=True,
    )


def parse_agg_trade(d: Mapping[str, Any], ticker: str, receive_time_ns: int = 0) -> Tick:
    """A /api/v3/aggTrades element or an <symbol>@aggTrade event: {a, p, q, f, l, T, m, ...}."""
    try:
        return Tick(
            ticker=ticker,
            trade_id=str(d["a"]),
            price=d["p"],
            size=d["q"],
            buyer_is_maker=bool(d["m"]),
            exchange_time_ns=int(d["T"]) * 1_000_000,
            receive_time_ns=receive_time_ns,
            first_trade_id=str(d["f"]),
            last_trade_id=str(d["l"]),
        )
    except (KeyError, TypeError) as exc:
        raise BinanceParseError(f"aggregate trade for {ticker} lacks {exc}: {d!r}") from None


def parse_trade_event(d: Mapping[str, Any], ticker: str, receive_time_ns: int = 0) -> Tick:
    """A <symbol>@trade event: {"e": "trade", "E", "s", "t", "p", "q", "T", "m", "M"}."""
    if d.get("e") != "trade":
        raise BinanceParseError(f"not a trade event for {ticker}: {d!r}")
    try:
        return Tick(
            ticker=ticker,
            trade_id=str(d["t"]),
            price=d["p"],
            size=d["q"],
            buyer_is_maker=bool(d["m"]),
            exchange_time_ns=int(d["T"]) * 1_000_000,
            receive_time_ns=receive_time_ns,
        )
    except (KeyError, TypeError) as exc:
        raise BinanceParseError(f"trade event for {ticker} lacks {exc}: {d!r}") from None


def parse_combined_frame(text: str | bytes) -> tuple[str, dict[str, Any]]:
    """A /stream?streams=... frame {"stream": name, "data": event} -> (name, event)."""
    try:
        frame = orjson.loads(text)
        return frame["stream"], frame["data"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise BinanceParseError(f"not a combined-stream frame ({exc}): {text[:200]!r}") from None


def parse_recorded_line(line: str) -> tuple[int, str]:
    """A recording line "<receive time ns> <payload JSON>" -> (ns, payload text exactly as recorded)."""
    stamp, sep, payload = line.rstrip("\n").partition(" ")
    if not sep or not stamp.isdigit():
        raise BinanceParseError(f"recording line is not '<ns> <json>': {line[:120]!r}")
    return int(stamp), payload
