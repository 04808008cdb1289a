"""Kraken venue facts as data: endpoints, book depths, asset names.

Sources: Kraken websocket API v1 docs (https://docs.kraken.com/api/docs/websocket-v1/book)
and the guide "Spot WebSockets book checksum (v1)".
"""

from __future__ import annotations

from functools import lru_cache

EXCHANGE = "KRAKEN"
REST_BASE_URL = "https://api.kraken.com"
WS_BASE_URL = "wss://ws.kraken.com"

BOOK_DEPTHS = (10, 25, 100, 500, 1000)  # subscription depths the book channel accepts
DEFAULT_BOOK_DEPTH = 10
CHECKSUM_LEVELS = 10  # the checksum covers the top 10 asks, then the top 10 bids

# Kraken's own asset codes that differ from everyone else's.
ASSET_ALIASES: dict[str, str] = {"XBT": "BTC", "XDG": "DOGE"}


class KrakenSymbolError(ValueError):
    """A Kraken websocket pair name that is not BASE/QUOTE."""


@lru_cache(maxsize=4096)  # every trade and book message maps its symbol: once per symbol is enough
def ticker_for(pair: str) -> str:
    """Websocket pair name -> project ticker: "XBT/CHF" -> "KRAKEN:BTC/CHF"."""
    base, sep, quote = pair.partition("/")
    if not sep or not base or not quote:
        raise KrakenSymbolError(f"not a Kraken websocket pair (BASE/QUOTE): {pair!r}")
    return f"{EXCHANGE}:{ASSET_ALIASES.get(base, base)}/{ASSET_ALIASES.get(quote, quote)}"


def book_depth(channel_name: str) -> int:
    """Subscribed depth from a book channel name: "book-1000" -> 1000 ("book" alone: the default 10)."""
    _, sep, depth = channel_name.partition("-")
    if not sep:
        return DEFAULT_BOOK_DEPTH
    if not depth.isdigit() or int(depth) not in BOOK_DEPTHS:
        raise KrakenSymbolError(f"unknown Kraken book channel {channel_name!r}; depths are {BOOK_DEPTHS}")
    return int(depth)
