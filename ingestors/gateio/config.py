"""Gate.io spot v4 venue facts as data: endpoints, book channels, sync rules, pair names.

Sources: Gate.io API v4 docs, spot websocket (https://www.gate.io/docs/developers/apiv4/ws/en/):
"Changed order book levels" (spot.order_book_update: result {t, e, E, s, U, u, b, a}, U/u the
first/last order book update id of the push, size "0" deletes) with its "How to maintain local
order book": cache the updates, GET /api/v4/spot/order_book?currency_pair=..&with_id=true (its
"id" is baseId), drop cached updates with u < baseId + 1, the first applied one must have
U <= baseId + 1 <= u, then each U must be the previous u + 1, otherwise start over with a new
snapshot. "Limited-Level Full Order Book Snapshot" (spot.order_book: whole books with
lastUpdateId), "Best bid or ask price" (spot.book_ticker: its u is the book's update id),
"Tickers" (spot.tickers: highest_bid / lowest_ask, no id) and "Public trades" (spot.trades).
Prices and sizes are decimal strings.
"""

from __future__ import annotations

from urllib.parse import urlencode

EXCHANGE = "GATEIO"
REST_BASE_URL = "https://api.gateio.ws"
WS_PUBLIC_URL = "wss://api.gateio.ws/ws/v4/"

ORDER_BOOK_PATH = "/api/v4/spot/order_book"
SNAPSHOT_LIMIT = 100  # levels a side asked of the REST snapshot
BOOK_UPDATE_CHANNEL = "spot.order_book_update"
BOOK_UPDATE_INTERVALS = ("20ms", "100ms", "1000ms")  # the payload's second element
BOOK_CHANNEL = "spot.order_book"  # payload [pair, levels, interval]
BOOK_LEVELS = (5, 10, 20, 50, 100)
BOOK_TICKER_CHANNEL = "spot.book_ticker"
TICKERS_CHANNEL = "spot.tickers"
TRADES_CHANNEL = "spot.trades"


class GateioSymbolError(ValueError):
    """A Gate.io currency pair that is not BASE_QUOTE."""


def ticker_for(pair: str) -> str:
    """Currency pair -> project ticker: BTC_USDT -> GATEIO:BTC/USDT, QTUM3S_USDT -> GATEIO:QTUM3S/USDT."""
    parts = pair.split("_")
    if len(parts) != 2 or not all(p.isalnum() and p.upper() == p for p in parts):
        raise GateioSymbolError(f"not a Gate.io currency pair (BASE_QUOTE): {pair!r}")
    return f"{EXCHANGE}:{parts[0]}/{parts[1]}"


def snapshot_url(pair: str, limit: int = SNAPSHOT_LIMIT) -> str:
    """The REST snapshot a book syncs from: GET /api/v4/spot/order_book?currency_pair=..&limit=..&with_id=true."""
    return f"{REST_BASE_URL}{ORDER_BOOK_PATH}?{urlencode({'currency_pair': pair, 'limit': limit, 'with_id': 'true'})}"
