"""HTX (Huobi) spot venue facts as data: endpoints, book channels, sequence rules, symbol names.

Sources: HTX spot API docs (https://www.htx.com/en-us/opend/newApiPages/), websocket market data:
"Market Depth" (market.$symbol.depth.$type: a whole book of 150 levels a push, steps step0..step5,
tick {bids, asks, version, ts}), "Market By Price (incremental update)" (market.$symbol.mbp.$levels:
tick {seqNum, prevSeqNum, bids, asks}, size 0 deletes; the book comes from a "req" of the same topic
answered as {"rep", "data": {seqNum, bids, asks}}; each update's prevSeqNum must equal the seqNum
before it), "Market By Price (refresh update)" (market.$symbol.mbp.refresh.$levels: whole books with
seqNum), "Best Bid/Offer" (market.$symbol.bbo) and "Trade Detail" (market.$symbol.trade.detail).
Every server frame is gzip-compressed JSON; prices and sizes are JSON numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EXCHANGE = "HUOBI"
REST_BASE_URL = "https://api.huobi.pro"
WS_PUBLIC_URL = "wss://api.huobi.pro/ws"  # depth, bbo, trades; mbp channels are on wss://api.huobi.pro/feed
WS_MBP_URL = "wss://api.huobi.pro/feed"
SYMBOLS_PATH = "/v1/common/symbols"

DEPTH_LEVELS = 150  # market.$symbol.depth.step0..step5: whole books of 150 levels
DEPTH_STEPS = frozenset({f"step{n}" for n in range(6)})
MBP_LEVELS = frozenset({5, 20, 150, 400})  # market.$symbol.mbp.$levels (and mbp.refresh.5/10/20)
REFRESH_LEVELS = frozenset({5, 10, 20})

# Quote currencies tried, longest first, when a symbol is not in the recorded/fetched symbols list.
KNOWN_QUOTES = ("usdt", "husd", "usdc", "usdd", "btc", "eth", "trx", "ht")


class HuobiSymbolError(ValueError):
    """An HTX symbol or channel that does not have the documented shape."""


def ticker_for(symbol: str, instrument: Mapping[str, Any] | None = None) -> str:
    """HTX symbol -> project ticker: "btcusdt" -> HUOBI:BTC/USDT, "fil3susdt" -> HUOBI:FIL3S/USDT.

    `instrument` is the symbol's entry of GET /v1/common/symbols (base-currency, quote-currency);
    without it the quote is found by suffix (KNOWN_QUOTES).
    """
    if instrument is not None:
        base, quote = str(instrument["base-currency"]), str(instrument["quote-currency"])
    else:
        quote = next((q for q in KNOWN_QUOTES if symbol.endswith(q) and len(symbol) > len(q)), "")
        base = symbol[: -len(quote)] if quote else ""
    if not base or not quote or not symbol.isalnum() or symbol != symbol.lower():
        raise HuobiSymbolError(f"cannot split HTX symbol {symbol!r} into base and quote")
    return f"{EXCHANGE}:{base.upper()}/{quote.upper()}"


def instruments(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """GET /v1/common/symbols answer -> {symbol: entry}."""
    try:
        return {str(i["symbol"]): i for i in body["data"]}
    except (KeyError, TypeError) as exc:
        raise HuobiSymbolError(f"not an HTX symbols answer (missing {exc}): {str(body)[:200]!r}") from None


def split_channel(ch: str) -> tuple[str, str]:
    """"market.btcusdt.depth.step0" -> ("btcusdt", "depth.step0")."""
    parts = ch.split(".", 2)
    if len(parts) != 3 or parts[0] != "market" or not parts[1] or not parts[2]:
        raise HuobiSymbolError(f"not an HTX market channel (market.<symbol>.<topic>): {ch!r}")
    return parts[1], parts[2]


def book_depth(topic: str) -> tuple[str, int] | None:
    """Book topic -> (kind, levels kept): "depth.step0" -> ("depth", 150), "mbp.150" -> ("mbp", 150),
    "mbp.refresh.20" -> ("refresh", 20); None for a topic that is not a book."""
    parts = topic.split(".")
    if parts[0] == "depth" and len(parts) == 2 and parts[1] in DEPTH_STEPS:
        return "depth", DEPTH_LEVELS
    if parts[0] == "mbp" and len(parts) == 2 and parts[1].isdigit() and int(parts[1]) in MBP_LEVELS:
        return "mbp", int(parts[1])
    if parts[:2] == ["mbp", "refresh"] and len(parts) == 3 and parts[2].isdigit() and int(parts[2]) in REFRESH_LEVELS:
        return "refresh", int(parts[2])
    if parts[0] in ("depth", "mbp"):
        raise HuobiSymbolError(f"HTX has no book topic {topic!r}")
    return None
