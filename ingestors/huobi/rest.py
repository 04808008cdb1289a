"""HTX (Huobi) spot market REST: klines and trades as the project's messages.

Endpoints (https://www.htx.com/en-us/opend/newApiPages/?id=7ec4a4da-7773-11ed-9966-0242ac110003 and
the "Get the Most Recent Trades" page):
- GET /market/history/kline?symbol&period&size: the latest `size` (at most 2000) candles,
  newest first, {"id": open time s, open, close, low, high, amount (base), vol (quote),
  count}. There are no time parameters: the newest is the open candle (dropped), and a
  range older than the oldest returned raises HistoryUnavailableError.
- GET /market/history/trade?symbol&size: the latest `size` (at most 2000) trade groups,
  newest first, each {"id", "ts", "data": [{"trade-id", "price", "amount", "direction",
  "ts"}]}; no paging, same rule for older ranges. The Tick's trade_id is "trade-id".
Numbers are JSON numbers: read as their exact text (ids above 2^64 stay whole). Errors
come with HTTP 200 as {"status": "error", "err-code": "invalid-parameter", "err-msg": ...}.
Rate limit: 800 requests/s per IP for market data with X-HB-RateLimit-Requests-Remain
and X-HB-RateLimit-Requests-Expire (ms) on some endpoints; read when sent, and we keep
to a modest 100 requests/s ourselves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx

from ingestors.rest_base import (
    BodyError,
    Failure,
    PagedRest,
    RateLimit,
    RestFacts,
    ms_to_ns,
    now_us,
    own_ticker,
    plain,
    recent_window,
)
from live_relay.messages import OHLC, Tick

EXCHANGE = "HUOBI"
FACTS = RestFacts(
    exchange=EXCHANGE, candle_page_max=2000, trade_page_max=2000, empty_candles="undocumented",
    candle_bounds="none: the latest `size` candles only", trade_paging="none: the latest `size` trade groups only",
    rate_limit=RateLimit(100, 1.0), trades_history="recent",
)
PERIODS = {60: "1min", 300: "5min", 900: "15min", 1800: "30min", 3600: "60min", 14400: "4hour", 86400: "1day", 604800: "1week"}
RATE_CODES = frozenset({"too-many-request", "api-limit-exceeded"})


def symbol_of(ticker: str) -> str:
    """HUOBI:BTC/USDT -> "btcusdt"."""
    t = own_ticker(ticker, EXCHANGE)
    return f"{t.base}{t.quote}".lower()


class HuobiRest(PagedRest):
    FACTS = FACTS
    float_text = True

    def body_error(self, body: Any) -> BodyError | None:
        if isinstance(body, dict) and body.get("status") == "error":
            code = str(body.get("err-code", ""))
            return BodyError(code, str(body.get("err-msg", "")), Failure.RATE_LIMIT if code in RATE_CODES else Failure.FATAL)
        return None

    def pause_from_headers(self, headers: httpx.Headers) -> float:
        left, expire = headers.get("X-HB-RateLimit-Requests-Remain", ""), headers.get("X-HB-RateLimit-Requests-Expire", "")
        if left.isdigit() and int(left) == 0 and expire.isdigit():
            return max(0.0, int(expire) / 1000 - time.time())
        return 0.0

    def kline(self, symbol: str, period: str, size: int) -> list[dict[str, Any]]:
        return list(self.get("/market/history/kline", {"symbol": symbol, "period": period, "size": size})["data"] or [])

    def trade(self, symbol: str, size: int) -> list[dict[str, Any]]:
        return list(self.get("/market/history/trade", {"symbol": symbol, "size": size})["data"] or [])

    def iter_candles(self, ticker: str, period_seconds: int, start_us: int, end_us: int,
                     page_size: int = FACTS.candle_page_max) -> Iterator[list[OHLC]]:
        """Closed candles with open time in [start_us, end_us), oldest first, if HTX still lists the range."""
        if period_seconds not in PERIODS:
            raise ValueError(f"HTX has no {period_seconds} s period; periods: {sorted(PERIODS)}")
        symbol, step = symbol_of(ticker), period_seconds * 1_000_000
        rows = self.kline(symbol, PERIODS[period_seconds], page_size)
        now = now_us()
        candles = sorted((_candle(r, ticker, period_seconds) for r in rows), key=lambda c: c.open_time)
        recent_window(candles[0].open_time - 1 if candles else None, len(rows), page_size, start_us,
                      f"HTX {period_seconds} s candles of {symbol}")  # a first candle opening at start covers it
        page = [c for c in candles if start_us <= c.open_time < end_us and c.open_time + step <= now]
        if page:
            yield page

    def iter_trades(self, ticker: str, start_us: int, end_us: int, page_size: int = FACTS.trade_page_max) -> Iterator[list[Tick]]:
        """Trades with time in [start_us, end_us), oldest first, if HTX still lists the range."""
        symbol = symbol_of(ticker)
        groups = self.trade(symbol, page_size)
        received = now_us() * 1000
        ticks = sorted((_tick(d, ticker, received) for g in reversed(groups) for d in g.get("data", [])),
                       key=lambda t: (t.exchange_time_ns, int(t.trade_id)))
        recent_window(ticks[0].exchange_time_ns // 1000 if ticks else None, len(groups), page_size, start_us,
                      f"HTX trade groups of {symbol}")
        page = [t for t in ticks if start_us * 1000 <= t.exchange_time_ns < end_us * 1000]
        if page:
            yield page


def _candle(r: dict[str, Any], ticker: str, period_seconds: int) -> OHLC:
    return OHLC(ticker=ticker, period_seconds=period_seconds, open_time=int(r["id"]) * 1_000_000, open=plain(r["open"]),
                high=plain(r["high"]), low=plain(r["low"]), close=plain(r["close"]), volume=plain(r["amount"]),
                quote_volume=plain(r["vol"]), trade_count=int(r.get("count", 0)), closed=True)


def _tick(d: dict[str, Any], ticker: str, received_ns: int) -> Tick:
    # direction is the taker's: "sell" means the buyer was the maker
    return Tick(ticker=ticker, trade_id=str(d["trade-id"]), price=plain(d["price"]), size=plain(d["amount"]),
                buyer_is_maker=d["direction"] == "sell", exchange_time_ns=ms_to_ns(d["ts"]), receive_time_ns=received_ns)
