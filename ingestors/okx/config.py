"""OKX venue facts as data: endpoints, book channels, sequence and checksum rules, instrument names.

Sources: OKX API v5 docs (https://www.okx.com/docs-v5/en/), "Order book channel" (books,
books5, bbo-tbt, books50-l2-tbt, books-l2-tbt), its "Sequence ID" and "Checksum" notes,
and the notice "OKX Order Book Channels Checksum Field Deprecation" (21 May 2026): from
23 June 2026 the checksum field is present but always 0, and seqId/prevSeqId is the
integrity check.
"""

from __future__ import annotations

import re
from functools import lru_cache

from live_relay.topics import parse_ticker

EXCHANGE = "OKX"
REST_BASE_URL = "https://www.okx.com"
WS_PUBLIC_URL = "wss://ws.okx.com:8443/ws/v5/public"

# Book channels and the depth each keeps. Incremental channels push a snapshot, then updates
# ("action": "snapshot" | "update") chained by seqId/prevSeqId; the others push a whole
# (small) book every time and carry no action.
BOOK_DEPTHS: dict[str, int] = {"books": 400, "books-l2-tbt": 400, "books50-l2-tbt": 50, "books5": 5, "bbo-tbt": 1}
INCREMENTAL_CHANNELS = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})
TICKER_CHANNEL = "tickers"

SNAPSHOT_PREV_SEQ_ID = -1  # a snapshot's prevSeqId
CHECKSUM_LEVELS = 25  # CRC32 over the top 25 bids and asks, interleaved "bidPx:bidSz:askPx:askSz:..."
CHECKSUM_NOT_PROVIDED = 0  # OKX's checksum since 23 June 2026 (and any frame without one): nothing to check
CHECKSUM_ALWAYS_ZERO_SINCE = "2026-06-23"

# instId suffixes of derivatives -> how the project's ticker names them (EXCHANGE:BASE/QUOTE has no room
# for a contract type, so it goes into the quote: OKX:BTC/USDPERP, OKX:BTC/USD220527).
SWAP_SUFFIX = "SWAP"
PERPETUAL_QUOTE_SUFFIX = "PERP"


class OkxSymbolError(ValueError):
    """An OKX instId that is not BASE-QUOTE[-SWAP|-YYMMDD[-STRIKE-C|P]]."""


@lru_cache(maxsize=4096)  # every trade and book message maps its symbol: once per symbol is enough
def ticker_for(inst_id: str) -> str:
    """instId -> project ticker: BTC-USDT -> OKX:BTC/USDT, UNI-USD-SWAP -> OKX:UNI/USDPERP,
    BTC-USD-220527 -> OKX:BTC/USD220527, BTC-USD-220514-22000-C -> OKX:BTC/USD22051422000C."""
    parts = inst_id.split("-")
    if len(parts) < 2 or not all(p.isalnum() and p.upper() == p for p in parts):
        raise OkxSymbolError(f"not an OKX instId (BASE-QUOTE[-...]): {inst_id!r}")
    base, quote, *contract = parts
    if contract == [SWAP_SUFFIX]:
        contract = [PERPETUAL_QUOTE_SUFFIX]
    return f"{EXCHANGE}:{base}/{quote}{''.join(contract)}"


_QUOTE_RE = re.compile(rf"([A-Z0-9]+?)(?:({PERPETUAL_QUOTE_SUFFIX})|(\d{{6}})(?:(\d+)([CP]))?)?")


def inst_id(ticker: str) -> str:
    """"OKX:BTC/USDT" -> "BTC-USDT" (config.ticker_for reversed, derivatives included)."""
    t = parse_ticker(ticker)
    m = _QUOTE_RE.fullmatch(t.quote)
    if t.exchange != EXCHANGE or m is None:
        raise OkxSymbolError(f"not an {EXCHANGE} ticker: {ticker!r}")
    quote, perp, expiry, strike, kind = m.groups()
    parts = [t.base, quote, SWAP_SUFFIX if perp else expiry, strike, kind]
    inst = "-".join(p for p in parts if p)
    if ticker_for(inst) != ticker:
        raise OkxSymbolError(f"{ticker!r} has no OKX instId ({inst!r} names {ticker_for(inst)!r})")
    return inst
