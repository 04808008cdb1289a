"""Tickers and topic names (seed 000).

Tickers are `EXCHANGE:BASE/QUOTE`. Market-data topics are `{ticker}|{data_type}`;
notification topics are `RESPONSE:{client_id}` and `HISTORY_READY:{request_id}`.
ZeroMQ matches subscriptions by prefix, so receivers compare the exact topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from live_relay.messages import NotifyPattern

KNOWN_EXCHANGES: frozenset[str] = frozenset(
    {"BINANCE", "COINBASE", "KRAKEN", "BYBIT", "OKX", "HUOBI", "KUCOIN", "GATEIO", "BITFINEX", "MEXC"}
)

_TICKER_RE = re.compile(r"^([A-Z0-9]+):([A-Z0-9]+)/([A-Z0-9]+)$")
_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


class TickerError(ValueError):
    """A ticker that is not EXCHANGE:BASE/QUOTE or names an unknown exchange."""


@dataclass(frozen=True, slots=True)
class Ticker:
    exchange: str
    base: str
    quote: str

    def __str__(self) -> str:
        return f"{self.exchange}:{self.base}/{self.quote}"


def parse_ticker(text: str) -> Ticker:
    match = _TICKER_RE.match(text)
    if not match:
        raise TickerError(f"malformed ticker {text!r}: expected EXCHANGE:BASE/QUOTE, e.g. BINANCE:BTC/USDT")
    exchange, base, quote = match.groups()
    if exchange not in KNOWN_EXCHANGES:
        raise TickerError(f"unknown exchange {exchange!r} in {text!r}; known: {', '.join(sorted(KNOWN_EXCHANGES))}")
    return Ticker(exchange, base, quote)


def valid_id(value: str) -> bool:
    """request_id / client_id: safe in topics and Kafka keys (no '|' or ':')."""
    return bool(_ID_RE.match(value))


def notification_topic(pattern: NotifyPattern, client_id: str, request_id: str) -> str:
    if pattern == NotifyPattern.PER_REQUEST:
        return f"HISTORY_READY:{request_id}"
    return f"RESPONSE:{client_id}"


def market_topic(ticker: str, data_type: str) -> str:
    return f"{ticker}|{data_type}"


def work_queue_topic(exchange: str) -> str:
    """Work queue topics end with ':' so BINANCE does not match BINANCEUS."""
    return f"{exchange}:"


ALL_EXCHANGES_CONTROL_TOPIC = "ALL:"


def control_topic(exchange: str) -> str:
    """Control channel topic: "EXCHANGE:" for one exchange's ingestors, "ALL:" for every ingestor."""
    return work_queue_topic(exchange) if exchange else ALL_EXCHANGES_CONTROL_TOPIC
