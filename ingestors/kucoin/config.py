"""KuCoin venue facts as data: endpoints, websocket topics, level2 sync rules, symbol names.

Sources: KuCoin spot docs (https://www.kucoin.com/docs/websocket/spot-trading/public-channels/level2-market-data,
.../rest/spot-trading/market-data/get-part-order-book-aggregated-, .../get-full-order-book-aggregated-):
"/market/level2:{symbol}" pushes trade.l2update {sequenceStart, sequenceEnd, changes {asks, bids:
[[price, size, sequence]]}}; the book starts from a REST snapshot with its "sequence" (level2_20 and
level2_100 are public, the full book is /api/v3/market/orderbook/level2 and needs a key); changes at or
below the snapshot's sequence are dropped; price "0" only advances the sequence, size "0" removes the
price; "if the sequence is not continuous, the order book needs to be rebuilt".
"""

from __future__ import annotations

EXCHANGE = "KUCOIN"
REST_BASE_URL = "https://api.kucoin.com"

SNAPSHOT_PATHS = ("/api/v1/market/orderbook/level2_20", "/api/v1/market/orderbook/level2_100",
                  "/api/v3/market/orderbook/level2")
SNAPSHOT_PATH_MARK = "/market/orderbook/level2"  # in every snapshot URL

LEVEL2_TOPIC, TICKER_TOPIC, MATCH_TOPIC = "/market/level2", "/market/ticker", "/market/match"
L2_SUBJECT, TICKER_SUBJECT, MATCH_SUBJECT = "trade.l2update", "trade.ticker", "trade.l3match"

NO_PRICE = "0"  # a change at price "0" carries no level: it only moves the sequence on
MAX_BUFFERED = 10_000  # l2updates kept per symbol while its snapshot is awaited
OK_CODE = "200000"


class KucoinSymbolError(ValueError):
    """A KuCoin symbol that is not BASE-QUOTE."""


def ticker_for(symbol: str) -> str:
    """KuCoin symbol -> project ticker: BTC-USDT -> KUCOIN:BTC/USDT, BCHSV-USDT -> KUCOIN:BCHSV/USDT."""
    parts = symbol.split("-")
    if len(parts) != 2 or not all(p.isalnum() and p.upper() == p for p in parts):
        raise KucoinSymbolError(f"not a KuCoin symbol (BASE-QUOTE): {symbol!r}")
    return f"{EXCHANGE}:{parts[0]}/{parts[1]}"
