"""Binance spot wire shapes: the JSON the replay server writes and the parsers read.

Internally prices and sizes are integers in units of 1e-8 (Binance prints every
price and size with 8 decimals) and notional sums in 1e-16, so sums are exact;
these helpers turn them into Binance's strings and rows.
"""

from __future__ import annotations

from typing import NamedTuple, TypedDict

from ingestors.binance.config import WEIGHT_LIMIT_PER_MINUTE, SymbolSpec

E8 = 10**8


class AggTrade(NamedTuple):
    """One aggregate trade (a taker order's fills at one price), prices/sizes in 1e-8 units."""

    agg_id: int
    price_e8: int
    qty_e8: int
    first_id: int
    last_id: int
    time_ms: int
    buyer_maker: bool


class Summary(NamedTuple):
    """OHLCV of the trades of one period; notional sums in 1e-16 units."""

    open_e8: int
    high_e8: int
    low_e8: int
    close_e8: int
    volume_e8: int
    quote_e16: int
    trades: int
    taker_buy_e8: int
    taker_buy_quote_e16: int


class AggTradeWire(TypedDict):
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - Binance's field name
    T: int
    m: bool
    M: bool


def to_e8(text: str) -> int:
    """"61837.63000000" -> 6183763000000 (exact; at most 8 decimals)."""
    whole, _, frac = text.partition(".")
    if len(frac) > 8:
        raise ValueError(f"more than 8 decimals in {text!r}")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole or "0")) * E8 + int((frac + "00000000")[:8]))


def fmt_e8(value: int) -> str:
    """6183763000000 -> "61837.63000000" (Binance prints 8 decimals)."""
    return f"{value // E8}.{value % E8:08d}"


def fmt_e16(value: int) -> str:
    """A notional sum in 1e-16 units, truncated to Binance's 8 decimals."""
    return fmt_e8(value // E8)


def summarize(aggs: list[AggTrade] | tuple[AggTrade, ...]) -> Summary | None:
    """OHLCV, trade count and taker-buy sums of aggregate trades in time order; None if empty."""
    if not aggs:
        return None
    prices = [a.price_e8 for a in aggs]
    vol = quote = n = tb = tbq = 0
    for a in aggs:
        notional = a.price_e8 * a.qty_e8
        vol += a.qty_e8
        quote += notional
        n += a.last_id - a.first_id + 1
        if not a.buyer_maker:  # the buyer was the taker
            tb += a.qty_e8
            tbq += notional
    return Summary(prices[0], max(prices), min(prices), prices[-1], vol, quote, n, tb, tbq)


def combine(parts: list[Summary | None]) -> Summary | None:
    """Summary of consecutive periods from the summaries of each (None = no trades)."""
    xs = [p for p in parts if p is not None]
    if not xs:
        return None
    return Summary(
        xs[0].open_e8, max(x.high_e8 for x in xs), min(x.low_e8 for x in xs), xs[-1].close_e8,
        sum(x.volume_e8 for x in xs), sum(x.quote_e16 for x in xs), sum(x.trades for x in xs),
        sum(x.taker_buy_e8 for x in xs), sum(x.taker_buy_quote_e16 for x in xs),
    )


def kline_row(open_ms: int, interval_ms: int, s: Summary | None, prev_close_e8: int) -> list[object]:
    """A /api/v3/klines row; a period without trades is flat at the previous close with zero volume."""
    if s is None:
        p = fmt_e8(prev_close_e8)
        zero = fmt_e8(0)
        return [open_ms, p, p, p, p, zero, open_ms + interval_ms - 1, zero, 0, zero, zero, "0"]
    return [
        open_ms, fmt_e8(s.open_e8), fmt_e8(s.high_e8), fmt_e8(s.low_e8), fmt_e8(s.close_e8), fmt_e8(s.volume_e8),
        open_ms + interval_ms - 1, fmt_e16(s.quote_e16), s.trades, fmt_e8(s.taker_buy_e8),
        fmt_e16(s.taker_buy_quote_e16), "0",
    ]


def agg_trade_wire(a: AggTrade) -> AggTradeWire:
    """A /api/v3/aggTrades element, fields in Binance's order."""
    return {"a": a.agg_id, "p": fmt_e8(a.price_e8), "q": fmt_e8(a.qty_e8), "f": a.first_id, "l": a.last_id,
            "T": a.time_ms, "m": a.buyer_maker, "M": True}


def error_body(code: int, msg: str) -> dict[str, object]:
    return {"code": code, "msg": msg}


def symbol_info(spec: SymbolSpec) -> dict[str, object]:
    """One element of exchangeInfo "symbols", in the 2024 field layout."""
    tick, step = fmt_e8(to_e8(spec.tick_size)), fmt_e8(to_e8(spec.step_size))
    return {
        "symbol": spec.symbol, "status": "TRADING", "baseAsset": spec.base, "baseAssetPrecision": 8,
        "quoteAsset": spec.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                       "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000.00000000", "stepSize": step},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000",
             "stepSize": "0.00000000"},
            {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
             "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
             "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
            {"filterType": "NOTIONAL", "minNotional": fmt_e8(to_e8(spec.min_notional)), "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [], "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def exchange_info(specs: list[SymbolSpec], server_time_ms: int) -> dict[str, object]:
    """GET /api/v3/exchangeInfo body for the given symbols."""
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": WEIGHT_LIMIT_PER_MINUTE},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ],
        "exchangeFilters": [],
        "symbols": [symbol_info(s) for s in specs],
    }

