"""Gate.io spot REST v4: candlesticks and trades as the project's messages.

Endpoints (https://www.gate.io/docs/developers/apiv4/en/#market-candlesticks, ...#retrieve-market-trades):
- GET /api/v4/spot/candlesticks?currency_pair&interval&from&to: rows [t (s), quote volume,
  close, high, low, open, base volume, window closed "true"/"false"] oldest first; from/to
  in seconds, both inclusive; at most 1000 points a request. Gate documents `limit` as
  conflicting with from/to, so windows are asked by from/to alone; the next window starts
  a step after the last row received, so an answer cut short (the replay server stops at
  its default of 100) loses nothing. Rows with closed "false" are dropped.
- GET /api/v4/spot/trades?currency_pair&limit&last_id&reverse&from&to: newest first,
  limit at most 1000; `last_id` + reverse=true lists trades older than that id. A window
  is paged back by id from its newest trade until it passes the window's start.
Errors: non-2xx with {"label": "INVALID_PARAM_VALUE", "message": ...}; 429 label
TOO_MANY_REQUESTS. Rate limit: 200 requests / 10 s per endpoint per IP
(https://www.gate.io/docs/developers/apiv4/en/#frequency-limit-rule); X-Gate-RateLimit-Requests-Remain
and X-Gate-RateLimit-Reset-Timestamp (ms) are read when sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx

from ingestors.rest_base import (
    AdaptiveWindows,
    BodyError,
    Failure,
    PagedRest,
    RateLimit,
    RestFacts,
    align_up,
    chunks,
    dedupe_sorted,
    ms_to_ns,
    now_us,
    own_ticker,
)
from live_relay.messages import OHLC, Tick

EXCHANGE = "GATEIO"
FACTS = RestFacts(
    exchange=EXCHANGE, candle_page_max=1000, trade_page_max=1000, empty_candles="undocumented",
    candle_bounds="from/to unix seconds, both inclusive; no `limit` with them; oldest first",
    trade_paging="last_id + reverse=true: older than that id; newest first",
    rate_limit=RateLimit(200, 10.0),
)
INTERVALS = {10: "10s", 60: "1m", 300: "5m", 900: "15m", 1800: "30m", 3600: "1h", 14400: "4h", 28800: "8h", 86400: "1d"}
TRADE_WINDOW_S = 86_400  # the first window of trades (then adaptive)


def currency_pair(ticker: str) -> str:
    """GATEIO:BTC/USDT -> "BTC_USDT"."""
    t = own_ticker(ticker, EXCHANGE)
    return f"{t.base}_{t.quote}"


class GateioRest(PagedRest):
    FACTS = FACTS

    def body_error(self, body: Any) -> BodyError | None:
        if isinstance(body, dict) and "label" in body:
            label = str(body["label"])
            return BodyError(label, str(body.get("message", "")),
                             Failure.RATE_LIMIT if label == "TOO_MANY_REQUESTS" else Failure.FATAL)
        return None

    def pause_from_headers(self, headers: httpx.Headers) -> float:
        left, reset = headers.get("X-Gate-RateLimit-Requests-Remain", ""), headers.get("X-Gate-RateLimit-Reset-Timestamp", "")
        if left.isdigit() and int(left) == 0 and reset.isdigit():
            return max(0.0, int(reset) / 1000 - time.time())
        return 0.0

    def candlesticks(self, pair: str, interval: str, from_s: int, to_s: int) -> list[list[Any]]:
        params = {"currency_pair": pair, "interval": interval, "from": from_s, "to": to_s}
        return list(self.get("/api/v4/spot/candlesticks", params))

    def trades(self, pair: str, limit: int, last_id: str | None, from_s: int, to_s: int) -> list[dict[str, Any]]:
        params = {"currency_pair": pair, "limit": limit, "last_id": last_id, "reverse": "true" if last_id else None,
                  "from": from_s, "to": to_s}
        return list(self.get("/api/v4/spot/trades", params))

    def iter_candles(self, ticker: str, period_seconds: int, start_us: int, end_us: int,
                     page_size: int = FACTS.candle_page_max) -> Iterator[list[OHLC]]:
        """Closed candles with open time in [start_us, end_us), oldest first, windows of page_size points."""
        if period_seconds not in INTERVALS:
            raise ValueError(f"Gate.io has no {period_seconds} s interval; intervals: {sorted(INTERVALS)}")
        pair, step = currency_pair(ticker), period_seconds
        t0, last = align_up(start_us, step * 1_000_000) // 1_000_000, -(-end_us // 1_000_000) - 1
        while t0 <= last:
            now_s = now_us() // 1_000_000
            if t0 + step > now_s:
                return  # no closed candle starts here or later
            t1 = min(last, t0 + (page_size - 1) * step)
            rows = self.candlesticks(pair, INTERVALS[period_seconds], t0, t1)
            page = sorted((_candle(r, ticker, step) for r in rows if len(r) < 8 or r[7] == "true"), key=lambda c: c.open_time)
            page = [c for c in page if t0 * 1_000_000 <= c.open_time <= t1 * 1_000_000 and start_us <= c.open_time < end_us
                    and c.open_time // 1_000_000 + step <= now_s]
            if page:
                yield page
            newest = max((int(r[0]) for r in rows), default=t1)
            # a short answer that stops before t1 may have been cut short: go on right after its newest row
            t0 = newest + step if len(rows) < page_size and newest < t1 else t1 + step

    def iter_trades(self, ticker: str, start_us: int, end_us: int, page_size: int = FACTS.trade_page_max,
                    window_s: int = TRADE_WINDOW_S) -> Iterator[list[Tick]]:
        """Trades with time in [start_us, end_us), oldest first; each window paged back by id."""
        pair = currency_pair(ticker)
        spans = AdaptiveWindows(start_us // 1_000_000, -(-end_us // 1_000_000), window_s, 60, 30 * 86400)
        for w0, w1 in spans:
            rows = self.trades(pair, page_size, None, w0, w1)
            got, requests = list(rows), 1
            while len(rows) == page_size and min(ms_to_ns(r["create_time_ms"]) for r in rows) >= w0 * 10**9:
                oldest = min(int(r["id"]) for r in rows)
                rows = self.trades(pair, page_size, str(oldest), w0, w1)
                got, requests = got + rows, requests + 1
            spans.pages_used(requests)
            received = now_us() * 1000
            lo, hi = max(start_us * 1000, w0 * 10**9), min(end_us * 1000, w1 * 10**9)
            ticks = dedupe_sorted((_tick(r, ticker, received) for r in got), key=lambda t: (t.exchange_time_ns, int(t.trade_id)),
                                  ident=lambda t: t.trade_id)
            yield from chunks([t for t in ticks if lo <= t.exchange_time_ns < hi], page_size)


def _candle(r: list[Any], ticker: str, period_seconds: int) -> OHLC:
    return OHLC(ticker=ticker, period_seconds=period_seconds, open_time=int(r[0]) * 1_000_000, open=r[5], high=r[3], low=r[4],
                close=r[2], volume=r[6] if len(r) > 6 else "", quote_volume=r[1], closed=True)


def _tick(r: dict[str, Any], ticker: str, received_ns: int) -> Tick:
    # side is the taker's: "sell" means the buyer was the maker
    return Tick(ticker=ticker, trade_id=str(r["id"]), price=r["price"], size=r["amount"], buyer_is_maker=r["side"] == "sell",
                exchange_time_ns=ms_to_ns(r["create_time_ms"]), receive_time_ns=received_ns)
