"""Pure parsers: Binance wire JSON -> the project's messages (live_relay.messages).

Prices and sizes are kept as the exact decimal strings Binance sent; times become
microseconds (candles) or nanoseconds (trades) since the epoch, UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import msgspec
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


class AggTradeEvent(msgspec.Struct, gc=False):
    """A /api/v3/aggTrades element or an <symbol>@aggTrade event (other fields ignored)."""

    a: int  # aggregate trade id
    p: str
    q: str
    f: int  # first and last trade id
    l: int  # noqa: E741 (Binance's name)
    T: int  # trade time, ms
    m: bool  # buyer is the maker


class TradeEvent(msgspec.Struct, gc=False):
    """A <symbol>@trade event."""

    e: str
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool


class BookTickerEvent(msgspec.Struct, gc=False):
    """A <symbol>@bookTicker event."""

    u: int
    s: str
    b: str
    B: str
    a: str
    A: str


class CombinedFrame(msgspec.Struct, gc=False):
    """A /stream?streams=... frame; the event stays undecoded until its stream name says what it is."""

    stream: str
    data: msgspec.Raw


_FRAME = msgspec.json.Decoder(CombinedFrame)
AGG_TRADE = msgspec.json.Decoder(AggTradeEvent)
TRADE = msgspec.json.Decoder(TradeEvent)
BOOK_TICKER = msgspec.json.Decoder(BookTickerEvent)
_E = TypeVar("_E")


def decode_frame(text: str | bytes) -> CombinedFrame:
    """Websocket frame -> CombinedFrame, decoded and type-checked in one pass (msgspec): the hot path of the feed."""
    try:
        return _FRAME.decode(text)
    except msgspec.DecodeError as exc:
        raise BinanceParseError(f"not a combined-stream frame ({exc}): {text[:200]!r}") from None


def decode_event(decoder: msgspec.json.Decoder[_E], frame: CombinedFrame) -> _E:
    """The frame's event as the decoder's type; BinanceParseError says which field is missing or mistyped."""
    try:
        return decoder.decode(frame.data)
    except msgspec.DecodeError as exc:
        raise BinanceParseError(f"{frame.stream}: {exc}: {bytes(frame.data)[:200]!r}") from None


def _convert(d: Mapping[str, Any], kind: type[_E], what: str, ticker: str) -> _E:
    try:
        return msgspec.convert(d, kind)
    except msgspec.ValidationError as exc:
        raise BinanceParseError(f"{what} for {ticker}: {exc}: {d!r:.200}") from None


def agg_trade_tick(e: AggTradeEvent, ticker: str, receive_time_ns: int = 0) -> Tick:
    return Tick(ticker=ticker, trade_id=str(e.a), price=e.p, size=e.q, buyer_is_maker=e.m,
                exchange_time_ns=e.T * 1_000_000, receive_time_ns=receive_time_ns, first_trade_id=str(e.f),
                last_trade_id=str(e.l))


def trade_tick(e: TradeEvent, ticker: str, receive_time_ns: int = 0) -> Tick:
    if e.e != "trade":
        raise BinanceParseError(f"not a trade event for {ticker}: {e!r}")
    return Tick(ticker=ticker, trade_id=str(e.t), price=e.p, size=e.q, buyer_is_maker=e.m,
                exchange_time_ns=e.T * 1_000_000, receive_time_ns=receive_time_ns)


def parse_agg_trade(d: Mapping[str, Any], ticker: str, receive_time_ns: int = 0) -> Tick:
    """A /api/v3/aggTrades element or an <symbol>@aggTrade event: {a, p, q, f, l, T, m, ...}."""
    return agg_trade_tick(_convert(d, AggTradeEvent, "aggregate trade", ticker), ticker, receive_time_ns)


def parse_trade_event(d: Mapping[str, Any], ticker: str, receive_time_ns: int = 0) -> Tick:
    """A <symbol>@trade event: {"e": "trade", "E", "s", "t", "p", "q", "T", "m", "M"}."""
    if d.get("e") != "trade":
        raise BinanceParseError(f"not a trade event for {ticker}: {d!r}")
    return trade_tick(_convert(d, TradeEvent, "trade event", ticker), ticker, receive_time_ns)


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
