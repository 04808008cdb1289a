"""MEXC spot venue facts as data: endpoints, channels, documented limits (with their doc pages), symbols.

Sources: MEXC spot v3 API docs, https://www.mexc.com/api-docs/spot-v3/introduction:
"General Info" / "Limits", "Market Data Endpoints" (exchangeInfo, depth, klines, aggTrades),
"Websocket Market Streams" (aggre.deals, aggre.depth, aggre.bookTicker in protobuf, the
subscription / PING rules) and "How to properly maintain a local copy of the order book".
The push schema is github.com/mexcdevelop/websocket-proto (see proto/mexc_push.proto).
"""

from __future__ import annotations

from dataclasses import dataclass

from live_relay.topics import parse_ticker

EXCHANGE = "MEXC"
REST_BASE_URL = "https://api.mexc.com"
WS_URL = "wss://wbs-api.mexc.com/ws"

DOCS = "https://www.mexc.com/api-docs/spot-v3"
DOC_WS = f"{DOCS}/websocket-market-streams"
DOC_MARKET = f"{DOCS}/market-data-endpoints"

# Websocket channels (protobuf bodies). {interval} is 100ms or 10ms; MEXC symbols are upper case.
DEALS_CHANNEL = "spot@public.aggre.deals.v3.api.pb@{interval}@{symbol}"
DEPTH_CHANNEL = "spot@public.aggre.depth.v3.api.pb@{interval}@{symbol}"
BOOK_TICKER_CHANNEL = "spot@public.aggre.bookTicker.v3.api.pb@{interval}@{symbol}"
CHANNEL_TEMPLATES = (DEALS_CHANNEL, DEPTH_CHANNEL, BOOK_TICKER_CHANNEL)
PUSH_INTERVALS = ("100ms", "10ms")
DEFAULT_INTERVAL = "100ms"
DEALS_KIND, DEPTH_KIND, BOOK_TICKER_KIND = "public.aggre.deals.v3.api.pb", "public.aggre.depth.v3.api.pb", \
    "public.aggre.bookTicker.v3.api.pb"


def channel(template: str, symbol: str, interval: str = DEFAULT_INTERVAL) -> str:
    return template.format(interval=interval, symbol=symbol)


def channel_parts(name: str) -> tuple[str, str, str]:
    """"spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT" -> ("public.aggre.deals.v3.api.pb", "100ms", "BTCUSDT")."""
    parts = name.split("@")
    if len(parts) != 4 or parts[0] != "spot":
        raise ValueError(f"not a MEXC spot channel: {name!r}")
    return parts[1], parts[2], parts[3]


@dataclass(frozen=True, slots=True)
class Limit:
    """One documented limit, with the page that documents it."""

    value: int | float
    what: str
    doc: str


# Websocket rules (DOC_WS, "Websocket Market Streams" introduction).
WS_MAX_SUBSCRIPTIONS = Limit(30, "subscriptions per websocket connection", DOC_WS)
WS_MAX_LIFETIME_S = Limit(24 * 3600, "a connection is valid for at most 24 hours", DOC_WS)
WS_IDLE_CLOSE_S = Limit(60, "a connection without a valid subscription is closed after 30 s, without data after 60 s",
                        DOC_WS)
PING = '{"method":"PING"}'  # answered {"id":0,"code":0,"msg":"PONG"}
PONG_MSG = "PONG"
SUBSCRIBE_METHOD, UNSUBSCRIBE_METHOD = "SUBSCRIPTION", "UNSUBSCRIPTION"

# REST limits (DOC_MARKET; "Limits": 500 weight per 10 s per IP for /api/v3 market endpoints).
WEIGHT_LIMIT = Limit(500, "request weight per 10 seconds per IP (spot v3)", f"{DOCS}/general-info")
WEIGHT_WINDOW_S = 10
DEPTH_DEFAULT_LIMIT = Limit(100, "GET /api/v3/depth default limit", f"{DOC_MARKET}/order-book")
DEPTH_MAX_LIMIT = Limit(5000, "GET /api/v3/depth max limit", f"{DOC_MARKET}/order-book")
KLINES_DEFAULT_LIMIT = Limit(500, "GET /api/v3/klines default limit", f"{DOC_MARKET}/klinecandlestick-data")
KLINES_MAX_LIMIT = Limit(1000, "GET /api/v3/klines max limit", f"{DOC_MARKET}/klinecandlestick-data")
AGG_TRADES_DEFAULT_LIMIT = Limit(500, "GET /api/v3/aggTrades default limit", f"{DOC_MARKET}/compressedaggregate-trades-list")
AGG_TRADES_MAX_LIMIT = Limit(1000, "GET /api/v3/aggTrades max limit", f"{DOC_MARKET}/compressedaggregate-trades-list")
AGG_TRADES_MAX_WINDOW_MS = Limit(3_600_000, "aggTrades startTime..endTime span (Binance's rule; MEXC's page does not say)",
                                 f"{DOC_MARKET}/compressedaggregate-trades-list")
WEIGHTS: dict[str, int] = {"/api/v3/ping": 1, "/api/v3/time": 1, "/api/v3/exchangeInfo": 10, "/api/v3/depth": 1,
                           "/api/v3/klines": 1, "/api/v3/aggTrades": 1}

# Kline intervals: MEXC's names (note "60m", not "1h", and "1W"/"1M") and their length in seconds (1M: none).
INTERVALS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "60m": 3600, "4h": 14400, "1d": 86400,
                             "1W": 604800}
MONTH_INTERVAL = "1M"  # calendar month: not a fixed number of seconds, not served by our history
INTERVAL_OF_SECONDS: dict[int, str] = {v: k for k, v in INTERVALS.items()}

# Error bodies {"code": ..., "msg": ...} (Binance-shaped).
ERR_INVALID_SYMBOL = (-1121, "Invalid symbol.")
ERR_INVALID_INTERVAL = (-1120, "Invalid interval.")
ERR_MANDATORY = (-1102, "Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
ERR_BAD_PARAM = (-1130, "Invalid data sent for a parameter.")
ERR_TOO_MANY = (429, "Too many requests")  # MEXC answers HTTP 429; the body code is not documented
ERR_INTERNAL = (-1001, "Internal error; unable to process your request. Please try again.")

QUOTE_ASSETS = ("USDT", "USDC", "USDE", "USD1", "BTC", "ETH", "EUR")


class MexcSymbolError(ValueError):
    """Neither a MEXC symbol (BTCUSDT) nor a MEXC ticker (MEXC:BTC/USDT)."""


def ticker_for(symbol: str) -> str:
    """"BTCUSDT" -> "MEXC:BTC/USDT"."""
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote) and symbol.isalnum():
            return f"{EXCHANGE}:{symbol[: -len(quote)]}/{quote}"
    raise MexcSymbolError(f"cannot split MEXC symbol {symbol!r} into base and quote (known quotes {QUOTE_ASSETS})")


def exchange_symbol(ticker: str) -> str:
    """"MEXC:BTC/USDT" (or "BTC/USDT", "BTCUSDT") -> "BTCUSDT"."""
    if ":" in ticker:
        t = parse_ticker(ticker)
        if t.exchange != EXCHANGE:
            raise MexcSymbolError(f"not a {EXCHANGE} ticker: {ticker!r}")
        return f"{t.base}{t.quote}".upper()
    text = ticker.replace("/", "")
    if not text.isalnum():
        raise MexcSymbolError(f"not a MEXC symbol: {ticker!r}; expected e.g. BTCUSDT or MEXC:BTC/USDT")
    return text.upper()
