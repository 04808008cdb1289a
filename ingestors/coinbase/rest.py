"""Coinbase Advanced Trade public market REST: paged candles and trades as the project's messages.

Endpoints (https://docs.cdp.coinbase.com/advanced-trade/reference/retailbrokerageapi_getpublicproductcandles,
.../retailbrokerageapi_getpublicmarkettrades):
- GET /api/v3/brokerage/market/products/{product_id}/candles?start&end&granularity&limit:
  unix seconds, at most 350 candles a request (more is an error), newest first; a bucket
  without trades has no candle; the newest candle may still be open (dropped here).
- GET /api/v3/brokerage/market/products/{product_id}/ticker?start&end&limit: the newest
  `limit` (max 1000) trades in the window, newest first. There is no cursor: we walk
  backwards by moving `end` to the oldest trade's second (+1, since bounds are whole
  seconds) and drop repeats by trade_id; a window is returned oldest first.
Rate limit: public endpoints 10 requests/s per IP (https://docs.cdp.coinbase.com/advanced-trade/docs/rest-api-rate-limits);
no rate-limit headers on public calls. Errors: {"error": "...", "message": "..."}.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingestors.coinbase.config import EXCHANGE, time_ns
from ingestors.rest_base import (
    AdaptiveWindows,
    BodyError,
    Failure,
    HistoryUnavailableError,
    PagedRest,
    RateLimit,
    RestFacts,
    align_up,
    chunks,
    dedupe_sorted,
    now_us,
    own_ticker,
    windows,
)
from live_relay.messages import OHLC, Tick

FACTS = RestFacts(
    exchange=EXCHANGE, candle_page_max=350, trade_page_max=1000, empty_candles="omitted",
    candle_bounds="start/end unix seconds; at most 350 candles per request",
    trade_paging="the newest `limit` trades in [start, end), whole seconds; no cursor",
    rate_limit=RateLimit(10, 1.0),
)
GRANULARITIES = {60: "ONE_MINUTE", 300: "FIVE_MINUTE", 900: "FIFTEEN_MINUTE", 1800: "THIRTY_MINUTE", 3600: "ONE_HOUR",
                 7200: "TWO_HOUR", 21600: "SIX_HOUR", 86400: "ONE_DAY"}
TRADE_WINDOW_S = 3600  # the first window of trades (then adaptive): paged newest first inside, returned oldest first


def product_id(ticker: str) -> str:
    """COINBASE:BTC/USD -> "BTC-USD"."""
    t = own_ticker(ticker, EXCHANGE)
    return f"{t.base}-{t.quote}"


class CoinbaseRest(PagedRest):
    FACTS = FACTS

    def body_error(self, body: Any) -> BodyError | None:
        if isinstance(body, dict) and "error" in body:
            code = str(body["error"])
            failure = Failure.RATE_LIMIT if code == "RATE_LIMIT_EXCEEDED" else Failure.FATAL
            return BodyError(code, str(body.get("message") or body.get("error_details") or code), failure)
        return None

    def candles(self, pid: str, granularity: str, start_s: int, end_s: int, limit: int) -> list[dict[str, Any]]:
        body = self.get(f"/api/v3/brokerage/market/products/{pid}/candles",
                        {"start": start_s, "end": end_s, "granularity": granularity, "limit": limit})
        return list(body.get("candles") or [])

    def market_trades(self, pid: str, start_s: int, end_s: int, limit: int) -> list[dict[str, Any]]:
        body = self.get(f"/api/v3/brokerage/market/products/{pid}/ticker", {"start": start_s, "end": end_s, "limit": limit})
        return list(body.get("trades") or [])

    def iter_candles(self, ticker: str, period_seconds: int, start_us: int, end_us: int,
                     page_size: int = FACTS.candle_page_max) -> Iterator[list[OHLC]]:
        """Closed candles with open time in [start_us, end_us), windows of page_size buckets, oldest first."""
        if period_seconds not in GRANULARITIES:
            raise ValueError(f"Coinbase has no {period_seconds} s candles; granularities: {sorted(GRANULARITIES)}")
        pid, step = product_id(ticker), period_seconds * 1_000_000
        for w0, w1 in windows(align_up(start_us, step), end_us, page_size * step):
            if w0 + step > now_us():
                return  # no closed candle starts here or later
            rows = self.candles(pid, GRANULARITIES[period_seconds], w0 // 1_000_000, w0 // 1_000_000 + page_size * period_seconds,
                                page_size)
            now = now_us()
            page = [OHLC(ticker=ticker, period_seconds=period_seconds, open_time=int(r["start"]) * 1_000_000, open=r["open"],
                         high=r["high"], low=r["low"], close=r["close"], volume=r["volume"], closed=True)
                    for r in rows]
            # the window's own buckets only (should `end` be inclusive, its bucket comes again in the next window)
            page = sorted((c for c in page if w0 <= c.open_time < w1 and c.open_time + step <= now), key=lambda c: c.open_time)
            if page:
                yield page

    def iter_trades(self, ticker: str, start_us: int, end_us: int, page_size: int = FACTS.trade_page_max,
                    window_s: int = TRADE_WINDOW_S) -> Iterator[list[Tick]]:
        """Trades with time in [start_us, end_us), oldest first; each window paged backwards by its oldest second."""
        pid = product_id(ticker)
        first_s, last_s = start_us // 1_000_000, -(-end_us // 1_000_000)
        spans = AdaptiveWindows(first_s, last_s, window_s, 60, 30 * 86400)
        for w0, w1 in spans:
            got: list[Tick] = []
            upper, requests = w1, 0
            while True:
                rows = self.market_trades(pid, w0, upper, page_size)
                requests += 1
                received = now_us() * 1000
                got += [Tick(ticker=ticker, trade_id=str(r["trade_id"]), price=r["price"], size=r["size"],
                             buyer_is_maker=str(r["side"]).upper() == "SELL", exchange_time_ns=time_ns(r["time"]),
                             receive_time_ns=received) for r in rows]
                if len(rows) < page_size:
                    break
                oldest_s = min(time_ns(r["time"]) for r in rows) // 1_000_000_000
                if oldest_s + 1 >= upper:  # a whole page inside one second: the seconds bounds cannot go further
                    raise HistoryUnavailableError(
                        f"Coinbase {pid}: more than {page_size} trades in second {oldest_s}; cannot page below it")
                upper = oldest_s + 1
            spans.pages_used(requests)
            ticks = [t for t in dedupe_sorted(got, key=_trade_order, ident=lambda t: t.trade_id)
                     if max(start_us * 1000, w0 * 10**9) <= t.exchange_time_ns < min(end_us * 1000, w1 * 10**9)]
            yield from chunks(ticks, page_size)


def _trade_order(t: Tick) -> tuple[int, int]:
    return t.exchange_time_ns, int(t.trade_id) if t.trade_id.isdigit() else 0
