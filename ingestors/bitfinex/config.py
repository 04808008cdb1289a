"""Bitfinex venue facts as data: endpoints, channels, conf flags, checksum rule, symbol names.

Sources: Bitfinex API v2 docs (https://docs.bitfinex.com/docs/ws-general), "Books"
(https://docs.bitfinex.com/reference/ws-public-books: P0 levels [PRICE, COUNT, AMOUNT],
COUNT 0 deletes, AMOUNT > 0 a bid and < 0 an ask; deletes carry AMOUNT 1 or -1 for the
side), "Configuration" flags (TIMESTAMP 32768, SEQ_ALL 65536, OB_CHECKSUM 131072), and
"WebSocket Checksum" (https://docs.bitfinex.com/docs/ws-websocket-checksum): a signed
CRC32 of the top 25 bids and asks interleaved "bidPrice:bidAmount:askPrice:askAmount:..."
(ask amounts negative, as sent), in a [chanId, "cs", checksum] frame.
"""

from __future__ import annotations

EXCHANGE = "BITFINEX"
WS_PUBLIC_URL = "wss://api-pub.bitfinex.com/ws/2"

BOOK_CHANNEL, TICKER_CHANNEL, TRADES_CHANNEL = "book", "ticker", "trades"
HEARTBEAT, CHECKSUM, TRADE_EXECUTED, TRADE_UPDATED = "hb", "cs", "te", "tu"

# "conf" flags (sent as {"event": "conf", "flags": sum}; the answer repeats the flags in force)
FLAG_TIMESTAMP = 32768  # a millisecond timestamp after each channel frame's payload
FLAG_SEQ_ALL = 65536  # a sequence number, over the whole connection, ends every channel frame
FLAG_OB_CHECKSUM = 131072  # [chanId, "cs", checksum] after book changes
LIVE_FLAGS = FLAG_SEQ_ALL | FLAG_OB_CHECKSUM

CHECKSUM_LEVELS = 25
DEFAULT_BOOK_LEN = 25  # the book channel's "len" when a subscription names none

ALIASES = {"UST": "USDT"}  # Bitfinex's own currency codes -> the project's


class BitfinexSymbolError(ValueError):
    """A Bitfinex symbol that is not a trading pair tBASEQUOTE or tBASE:QUOTE."""


def ticker_for(symbol: str) -> str:
    """Trading symbol -> project ticker: tBTCUSD -> BITFINEX:BTC/USD, tTESTBTC:TESTUSD -> BITFINEX:TESTBTC/TESTUSD,
    tBTCUST -> BITFINEX:BTC/USDT (pairs of two 3-letter codes have no separator)."""
    if not symbol.startswith("t") or not symbol[1:].replace(":", "").isalnum():
        raise BitfinexSymbolError(f"not a Bitfinex trading symbol (tBASEQUOTE or tBASE:QUOTE): {symbol!r}")
    pair = symbol[1:]
    if ":" in pair:
        base, _, quote = pair.partition(":")
    elif len(pair) == 6:
        base, quote = pair[:3], pair[3:]
    else:
        raise BitfinexSymbolError(f"not a Bitfinex trading symbol (tBASEQUOTE or tBASE:QUOTE): {symbol!r}")
    if not base or not quote or base.upper() != base or quote.upper() != quote:
        raise BitfinexSymbolError(f"not a Bitfinex trading symbol (tBASEQUOTE or tBASE:QUOTE): {symbol!r}")
    return f"{EXCHANGE}:{ALIASES.get(base, base)}/{ALIASES.get(quote, quote)}"
