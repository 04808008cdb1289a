"""Bybit v5 public market REST: klines and recent trades as the project's messages.

Endpoints (https://bybit-exchange.github.io/docs/v5/market/kline, .../market/recent-trade):
- GET /v5/market/kline?category&symbol&interval&start&end&limit: result.list of
  [startTime, open, high, low, close, volume, turnover] newest first; start/end are
  inclusive on the start time (ms); limit at most 1000. We ask windows of `limit` bars
  ([w0, w0 + (limit-1) x step]) so a window is one page; the open candle is dropped.
- GET /v5/market/recent-trade?category&symbol&limit: only the most recent trades (spot at
  most 60, others 1000) and no paging: Bybit has no public REST for older trades. A range
  reaching further back than what it returns raises HistoryUnavailableError rather than
  returning a silently short history.
Errors: HTTP 200 with {"retCode": 10001, "retMsg": ...}; retCode 10006 is "too many
visits". Rate limit: 600 requests / 5 s per IP (https://bybit-exchange.github.io/docs/v5/rate-limit);
X-Bapi-Limit-Status (requests left) and X-Bapi-Limit-Reset-Timestamp (ms) are read when sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx

from ingestors.bybit.config import EXCHANGE, PERPETUAL_QUOTE_SUFFIX
from ingestors.rest_base import (
    BodyError,
    Failure,
    PagedRest,
    RateLimit,
    RestFacts,
    align_up,
    ms_to_ns,
    now_us,
    own_ticker,
    recent_window,
    windows,
)
from live_relay.messages import OHLC, Tick

FACTS = RestFacts(
    exchange=EXCHANGE, candle_page_max=1000, trade_page_max=1000, empty_candles="undocumented",
    candle_bounds="start/end ms, both inclusive on the candle start; newest first",
    trade_paging="none: the most recent trades only (spot 60, derivatives 1000)",
    rate_limit=RateLimit(600, 5.0), trades_history="recent",
)
RECENT_TRADES_MAX = {"spot": 60, "linear": 1000, "inverse": 1000, "option": 100}
INTERVALS = {60: "1", 180: "3", 300: "5", 900: "15", 1800: "30", 3600: "60", 7200: "120", 14400: "240", 21600: "360",
             43200: "720", 86400: "D", 604800: "W"}
RATE_CODES = frozenset({10006, 10018})  # too many visits; IP rate limit
RETRY_CODES = frozenset({10000, 10016})  # server timeout; server error


def market(ticker: str) -> tuple[str, str]:
    """BYBIT:BTC/USDT -> ("spot", "BTCUSDT"); BYBIT:BTC/USDTPERP -> ("linear", "BTCUSDT");
    BYBIT:BTC/USDPERP -> ("inverse", "BTCUSD"); BYBIT:BTC/USDCPERP -> ("linear", "BTCPERP") (config.ticker_for reversed)."""
    t = own_ticker(ticker, EXCHANGE)
    if not t.quote.endswith(PERPETUAL_QUOTE_SUFFIX) or t.quote == PERPETUAL_QUOTE_SUFFIX:
        return "spot", t.base + t.quote
    settle = t.quote[: -len(PERPETUAL_QUOTE_SUFFIX)]
    if settle == "USDC":
        return "linear", f"{t.base}PERP"  # Bybit names USDC perpetuals BTCPERP
    return ("inverse" if settle == "USD" else "linear"), t.base + settle


class BybitRest(PagedRest):
    FACTS = FACTS

    def body_error(self, body: Any) -> BodyError | None:
        if not isinstance(body, dict) or "retCode" not in body or body["retCode"] == 0:
            return None
        code = int(body["retCode"])
        failure = Failure.RATE_LIMIT if code in RATE_CODES else Failure.RETRY if code in RETRY_CODES else Failure.FATAL
        return BodyError(str(code), str(body.get("retMsg", "")), failure)

    def pause_from_headers(self, headers: httpx.Headers) -> float:
        left, reset = headers.get("X-Bapi-Limit-Status", ""), headers.get("X-Bapi-Limit-Reset-Timestamp", "")
        if left.isdigit() and int(left) == 0 and reset.isdigit():
            return max(0.0, int(reset) / 1000 - time.time())
        return 0.0

    def kline(self, category: str, symbol: str, interval: str, start_ms: int, end_ms: int, limit: int) -> list[list[Any]]:
        params = {"category": category, "symbol": symbol, "interval": interval, "start": start_ms, "end": end_ms, "limit": limit}
        return list(self.get("/v5/market/kline", params)["result"]["list"])

    def recent_trades(self, category: str, symbol: str, limit: int) -> list[dict[str, Any]]:
        params = {"category": category, "symbol": symbol, "limit": limit}
        return list(self.get("/v5/market/recent-trade", params)["result"]["list"])

    def iter_candles(self, ticker: str, period_seconds: int, start_us: int, end_us: int,
                     page_size: int = FACTS.candle_page_max) -> Iterator[list[OHLC]]:
        """Closed candles with open time in [start_us, end_us), oldest first, one window of page_size bars a page."""
        if period_seconds not in INTERVALS:
            raise ValueError(f"Bybit has no {period_seconds} s interval; intervals: {sorted(INTERVALS)}")
        category, symbol = market(ticker)
        step = period_seconds * 1000
        for w0, w1 in windows(align_up(start_us, step * 1000) // 1000, -(-end_us // 1000), page_size * step):
            now = now_us()
            if (w0 + step) * 1000 > now:
                return  # no closed candle starts here or later
            rows = self.kline(category, symbol, INTERVALS[period_seconds], w0, w1 - 1, page_size)
            page = sorted((_candle(r, ticker, period_seconds) for r in rows), key=lambda c: c.open_time)
            page = [c for c in page if start_us <= c.open_time < end_us and c.open_time + step * 1000 <= now]
            if page:
                yield page

    def iter_trades(self, ticker: str, start_us: int, end_us: int, page_size: int | None = None) -> Iterator[list[Tick]]:
        """Trades with time in [start_us, end_us), oldest first, if Bybit still lists the whole range."""
        category, symbol = market(ticker)
        limit = page_size or RECENT_TRADES_MAX[category]
        rows = self.recent_trades(category, symbol, limit)
        received = now_us() * 1000
        ticks = sorted((_tick(r, ticker, received) for r in reversed(rows)), key=lambda t: t.exchange_time_ns)  # newest first
        recent_window(ticks[0].exchange_time_ns // 1000 if ticks else None, len(rows), limit, start_us,
                      f"Bybit {category} trades of {symbol}")
        page = [t for t in ticks if start_us * 1000 <= t.exchange_time_ns < end_us * 1000]
        if page:
            yield page


def _candle(r: list[Any], ticker: str, period_seconds: int) -> OHLC:
    return OHLC(ticker=ticker, period_seconds=period_seconds, open_time=int(r[0]) * 1000, open=r[1], high=r[2], low=r[3],
                close=r[4], volume=r[5], quote_volume=r[6], closed=True)


def _tick(r: dict[str, Any], ticker: str, received_ns: int) -> Tick:
    # side is the taker's: "Sell" means the buyer was the maker
    return Tick(ticker=ticker, trade_id=str(r["execId"]), price=r["price"], size=r["size"], buyer_is_maker=r["side"] == "Sell",
                exchange_time_ns=ms_to_ns(r["time"]), receive_time_ns=received_ns)
