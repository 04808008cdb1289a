"""Bybit v5 venue facts as data: endpoints per category, orderbook depths, instrument names.

Sources: Bybit v5 docs (https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook,
.../public/ticker, .../market/instrument). Orderbook: a snapshot after subscribing, then
deltas; a new snapshot replaces the book; "u" is the update id, consecutive in normal
operation; "u" = 1 arrives as a snapshot after a service restart and overwrites the book;
"seq" is the cross sequence, comparable with the tickers stream's "cs". Depth 1 pushes only
snapshots (re-sent with the same u when nothing changed for 3 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EXCHANGE = "BYBIT"
REST_BASE_URL = "https://api.bybit.com"
WS_PUBLIC_URL = "wss://stream.bybit.com/v5/public/{category}"
CATEGORIES = ("spot", "linear", "inverse", "option")

# Subscribable orderbook depths per category and their push interval in ms.
BOOK_DEPTHS: dict[str, dict[int, int]] = {
    "spot": {1: 10, 50: 20, 200: 200, 1000: 200},
    "linear": {1: 10, 50: 20, 200: 100, 1000: 200},
    "inverse": {1: 10, 50: 20, 200: 100, 1000: 200},
    "option": {25: 20, 100: 100},
}
SNAPSHOT_ONLY_DEPTH = 1  # orderbook.1 pushes every message as a snapshot
RESTART_UPDATE_ID = 1  # "u" after a service restart
TICKER_BBO_FIELDS = ("bid1Price", "bid1Size", "ask1Price", "ask1Size")  # linear/inverse/option tickers; spot has none

# Quote coins tried, longest first, when a symbol is not in the instruments list.
KNOWN_QUOTES = ("USDT", "USDC", "USDE", "FDUSD", "USD", "EUR", "BTC", "ETH")
PERPETUAL_QUOTE_SUFFIX = "PERP"  # BYBIT:BTC/USDTPERP: the contract type goes into the quote (EXCHANGE:BASE/QUOTE)


class BybitSymbolError(ValueError):
    """A Bybit symbol, category or topic that does not have the documented shape."""


def category_for_url(url: str) -> str:
    """wss://stream.bybit.com/v5/public/linear -> "linear"."""
    category = url.rstrip("/").rsplit("/", 1)[-1]
    if category not in CATEGORIES:
        raise BybitSymbolError(f"not a Bybit v5 public websocket URL (…/v5/public/<{'|'.join(CATEGORIES)}>): {url!r}")
    return category


def book_depth(category: str, topic: str) -> tuple[int, str]:
    """"orderbook.200.BTCUSDT" -> (200, "BTCUSDT"), refusing depths the category does not offer."""
    parts = topic.split(".")
    if len(parts) != 3 or parts[0] != "orderbook" or not parts[1].isdigit():
        raise BybitSymbolError(f"not a Bybit orderbook topic (orderbook.<depth>.<symbol>): {topic!r}")
    depth = int(parts[1])
    if depth not in BOOK_DEPTHS.get(category, {}):
        raise BybitSymbolError(f"Bybit {category} has no orderbook depth {depth}: {topic!r}; "
                               f"depths are {sorted(BOOK_DEPTHS.get(category, {}))}")
    return depth, parts[2]


def ticker_for(symbol: str, category: str = "spot", instrument: Mapping[str, Any] | None = None) -> str:
    """Symbol -> project ticker. Spot BTCUSDT -> BYBIT:BTC/USDT; a linear perpetual -> BYBIT:BTC/USDTPERP.

    `instrument` is the symbol's entry of GET /v5/market/instruments-info (baseCoin, quoteCoin,
    contractType); without it the quote is found by suffix and derivatives are taken as perpetuals.
    """
    if instrument is not None:
        base, quote = str(instrument["baseCoin"]), str(instrument["quoteCoin"])
        contract = str(instrument.get("contractType", ""))
    else:
        quote = next((q for q in KNOWN_QUOTES if symbol.endswith(q) and len(symbol) > len(q)), "")
        if not quote or not symbol.isalnum():
            raise BybitSymbolError(f"cannot split Bybit symbol {symbol!r} into base and quote")
        base, contract = symbol[: -len(quote)], "" if category == "spot" else "Perpetual"
    if category != "spot" and contract.endswith("Perpetual"):
        quote += PERPETUAL_QUOTE_SUFFIX
    elif category != "spot" and symbol != base + quote:  # dated futures, e.g. BTC-26DEC25 or BTCUSDT-26DEC25
        quote += symbol.rsplit("-", 1)[-1]
    return f"{EXCHANGE}:{base}/{quote}"


def instruments(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """GET /v5/market/instruments-info answer -> {symbol: instrument}."""
    try:
        return {str(i["symbol"]): i for i in body["result"]["list"]}
    except (KeyError, TypeError) as exc:
        raise BybitSymbolError(f"not a Bybit instruments-info answer (missing {exc}): {str(body)[:200]!r}") from None
