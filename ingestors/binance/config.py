"""Binance spot venue facts as data: endpoints, limits, request weights, intervals, symbols.

Sources: Binance spot API docs (https://developers.binance.com/docs/binance-spot-api-docs),
"General API information", "Limits", "Market data endpoints", "Error codes".
The SymbolSpec levels and activity rates drive the replay server's synthetic generator;
they are plausible for mid-2024, not real statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

EXCHANGE = "BINANCE"
REST_BASE_URL = "https://api.binance.com"
WS_BASE_URL = "wss://stream.binance.com:9443"

# REST limits (GET /api/v3/exchangeInfo rateLimits; /api/v3/klines and /aggTrades docs)
WEIGHT_LIMIT_PER_MINUTE = 6000
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
KLINES_DEFAULT_LIMIT, KLINES_MAX_LIMIT = 500, 1000
AGG_TRADES_DEFAULT_LIMIT, AGG_TRADES_MAX_LIMIT = 500, 1000
AGG_TRADES_MAX_WINDOW_MS = 3_600_000  # startTime..endTime may span at most one hour
DEPTH_DEFAULT_LIMIT, DEPTH_MAX_LIMIT = 100, 5000

# Request weight per endpoint (IP limits). Depth depends on limit, see depth_weight().
WEIGHTS: dict[str, int] = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/klines": 2,
    "/api/v3/aggTrades": 4,
    "/api/v3/ticker/bookTicker": 2,
}


def depth_weight(limit: int) -> int:
    """Weight of GET /api/v3/depth by limit (1-100: 5, 101-500: 25, 501-1000: 50, more: 250)."""
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


# Error codes and messages exactly as Binance sends them ({"code": ..., "msg": ...}).
ERR_INTERNAL = (-1001, "Internal error; unable to process your request. Please try again.")
ERR_TOO_MANY = (
    -1003,
    "Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API.",
)
ERR_BANNED = (-1003, "Way too much request weight used; IP banned until {until}. Please use WebSocket Streams "
              "for live updates to avoid bans.")
ERR_ILLEGAL_CHARS = (-1100, "Illegal characters found in parameter '{name}'; legal range is '{legal}'.")
ERR_MANDATORY = (-1102, "Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
ERR_INVALID_INTERVAL = (-1120, "Invalid interval.")
ERR_INVALID_SYMBOL = (-1121, "Invalid symbol.")
ERR_LOOKUP_TOO_BIG = (-1127, "More than 1 hours between startTime and endTime.")
ERR_BAD_PARAM = (-1130, "Invalid data sent for a parameter.")

# Kline intervals (case-sensitive Binance names) and their length in seconds.
INTERVALS: dict[str, int] = {
    "1s": 1, "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800,
    "1h": 3600, "2h": 7200, "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200, "1d": 86400,
}
INTERVAL_OF_SECONDS: dict[int, str] = {v: k for k, v in INTERVALS.items()}


class UnsupportedIntervalError(ValueError):
    """A candle period that Binance has no kline interval for (or that we do not serve)."""


def interval_name(period_seconds: int) -> str:
    """60 -> "1m". Raises UnsupportedIntervalError naming the period and the supported ones."""
    try:
        return INTERVAL_OF_SECONDS[period_seconds]
    except KeyError:
        supported = ", ".join(f"{s}s={n}" for s, n in INTERVAL_OF_SECONDS.items())
        raise UnsupportedIntervalError(
            f"Binance has no kline interval of {period_seconds} seconds; supported: {supported}"
        ) from None


def _ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One spot symbol: exchange filters (exchangeInfo) and the synthetic generator's knobs."""

    symbol: str
    base: str
    quote: str
    tick_size: str  # PRICE_FILTER tickSize
    step_size: str  # LOT_SIZE stepSize
    min_notional: str
    level: float  # typical price, synthetic prices wander around it
    listed_ms: int  # first trade; nothing exists before it
    aggs_per_minute: int  # mean aggregate trades per synthetic minute
    mean_qty: float  # mean aggregate trade size in base units
    recorded_first_agg_id: int = 0  # invented id of the first aggregate trade of the recording, if any


SYMBOLS: tuple[SymbolSpec, ...] = (
    SymbolSpec("BTCUSDT", "BTC", "USDT", "0.01", "0.00001", "5", 61700.0, _ms("2017-08-17T04:00"), 30, 0.01,
               recorded_first_agg_id=1_100_000_000),
    SymbolSpec("ETHUSDT", "ETH", "USDT", "0.01", "0.0001", "5", 2680.0, _ms("2017-08-17T04:00"), 24, 0.3,
               recorded_first_agg_id=700_000_000),
    SymbolSpec("BNBUSDT", "BNB", "USDT", "0.1", "0.001", "5", 520.0, _ms("2017-11-06T03:30"), 15, 1.0),
    SymbolSpec("SOLUSDT", "SOL", "USDT", "0.01", "0.001", "5", 150.0, _ms("2020-08-11T06:00"), 20, 5.0),
    SymbolSpec("XRPUSDT", "XRP", "USDT", "0.0001", "1", "5", 0.55, _ms("2018-05-04T08:00"), 15, 800.0),
    SymbolSpec("DOGEUSDT", "DOGE", "USDT", "0.00001", "1", "1", 0.10, _ms("2019-07-05T12:00"), 12, 3000.0),
)
SYMBOL_SPECS: dict[str, SymbolSpec] = {s.symbol: s for s in SYMBOLS}

# Quote assets, longest first, to split an exchange symbol we have no spec for (BTCFDUSD -> BTC/FDUSD).
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "EUR", "TRY", "BTC", "ETH", "BNB")


class SymbolError(ValueError):
    """A symbol that is neither BASE/QUOTE, EXCHANGE:BASE/QUOTE nor a Binance symbol like BTCUSDT."""


def exchange_symbol(symbol: str) -> str:
    """"BINANCE:BTC/USDT", "BTC/USDT" or "BTCUSDT" -> "BTCUSDT"."""
    text = symbol.split(":", 1)[1] if ":" in symbol else symbol
    if "/" in text:
        base, _, quote = text.partition("/")
        text = base + quote
    if not text.isalnum():
        raise SymbolError(f"not a Binance symbol: {symbol!r}; expected e.g. BTCUSDT or BINANCE:BTC/USDT")
    return text.upper()


def base_quote(symbol: str) -> tuple[str, str]:
    """"BTCUSDT" -> ("BTC", "USDT"), from the spec table or the known quote assets."""
    spec = SYMBOL_SPECS.get(symbol)
    if spec:
        return spec.base, spec.quote
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise SymbolError(f"cannot split Binance symbol {symbol!r} into base and quote")


def ticker_for(symbol: str) -> str:
    """"BTCUSDT" -> "BINANCE:BTC/USDT" (the project's ticker form)."""
    base, quote = base_quote(symbol)
    return f"{EXCHANGE}:{base}/{quote}"
