"""Coinbase Advanced Trade venue facts as data: endpoints, channels, sequence and heartbeat rules, product names.

Sources: Coinbase Advanced Trade WebSocket docs (https://docs.cdp.coinbase.com/coinbase-app/
advanced-trade-apis/websocket/websocket-channels and .../websocket-overview): subscribe to
"level2", receive channel "l2_data" (a snapshot, then updates of price levels, side
"bid" | "offer", new_quantity is the level's new size, "0" removes it); every message
carries "sequence_num", one counter per connection across all channels, so a jump means a
message of that connection was lost; the "heartbeats" channel sends one message a second
(heartbeat_counter) and keeps subscriptions open (they close after 60-90 s without updates).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

EXCHANGE = "COINBASE"
REST_BASE_URL = "https://api.coinbase.com"
WS_MARKET_DATA_URL = "wss://advanced-trade-ws.coinbase.com"

L2_SUBSCRIBE_CHANNEL = "level2"  # what the client subscribes to
L2_CHANNEL = "l2_data"  # what the messages say
TICKER_CHANNEL = "ticker"
HEARTBEATS_CHANNEL = "heartbeats"
BID_SIDE, ASK_SIDE = "bid", "offer"
HEARTBEAT_INTERVAL_S = 1.0
HEARTBEAT_TIMEOUT_S = 5.0  # no heartbeat for this long: the connection is dead, reconnect
SUBSCRIPTION_IDLE_CLOSE_S = 60  # channels close after 60-90 s without updates unless heartbeats is subscribed

# sequence_num counts every message of a connection, whatever its product: a jump cannot tell whose
# message was lost, so every book on that connection resyncs. One level2 product per connection keeps
# a gap to that one product.
L2_PRODUCTS_PER_CONNECTION = 1


class CoinbaseSymbolError(ValueError):
    """A Coinbase product id that is not BASE-QUOTE, or a timestamp that is not RFC 3339."""


@lru_cache(maxsize=4096)  # every trade and book message maps its symbol: once per symbol is enough
def ticker_for(product_id: str) -> str:
    """Product id -> project ticker: "BTC-USD" -> "COINBASE:BTC/USD"."""
    base, sep, quote = product_id.partition("-")
    if not sep or not base.isalnum() or not quote.isalnum():
        raise CoinbaseSymbolError(f"not a Coinbase product id (BASE-QUOTE): {product_id!r}")
    return f"{EXCHANGE}:{base}/{quote}"


def time_ns(text: str) -> int:
    """RFC 3339 UTC time with up to nanosecond digits ("2026-08-09T21:05:48.84777437Z") -> ns since epoch."""
    head, _, frac = text.rstrip("Z").partition(".")
    try:
        seconds = _epoch_seconds(head)
    except ValueError:
        raise CoinbaseSymbolError(f"not an RFC 3339 UTC time: {text!r}") from None
    if not text.endswith("Z") or (frac and not frac.isdigit()) or len(frac) > 9:
        raise CoinbaseSymbolError(f"not an RFC 3339 UTC time with at most 9 fraction digits: {text!r}")
    return seconds * 1_000_000_000 + int(frac.ljust(9, "0") or 0)


@lru_cache(maxsize=1024)  # the trades and events of a message mostly share their second
def _epoch_seconds(head: str) -> int:
    return int(datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp())
