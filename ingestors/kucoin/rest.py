"""KuCoin spot REST v1: klines and trade histories as the project's messages.

Endpoints (https://www.kucoin.com/docs/rest/spot-trading/market-data/get-klines, .../get-trade-histories):
- GET /api/v1/market/candles?symbol&type&startAt&endAt: rows [time (s), open, close, high,
  low, volume, turnover] newest first, at most 1500 a request; startAt/endAt in seconds.
  "Klines data may be incomplete. No data is published for intervals where there are no
  ticks": empty intervals are omitted. Windows of page_size intervals; each keeps only its
  own rows (so an inclusive endAt cannot repeat a candle); the open candle is dropped.
- GET /api/v1/market/histories?symbol: the latest 100 trades, no paging (KuCoin has no
  public REST for older trades); rows {sequence, price, size, side, time (ns)} without a
  trade id, so the sequence is the Tick's trade_id. A range older than what it returns
  raises HistoryUnavailableError.
Errors: {"code": "400100", "msg": ...} (success is "200000"); "429000" is the rate limit.
Rate limit: the public pool, 2000 weight / 30 s per IP, klines and histories weigh 3
(https://www.kucoin.com/docs/basic-info/request-rate-limit/rest-api); gw-ratelimit-remaining
and gw-ratelimit-reset (ms until the pool refills) are read when sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from ingestors.rest_base import (
    BodyError,
    Failure,
    PagedRest,
    RateLimit,
    RestFacts,
    align_up,
    now_us,
    own_ticker,
    recent_window,
    windows,
)
from live_relay.messages import OHLC, Tick

EXCHANGE = "KUCOIN"
FACTS = RestFacts(
    exchange=EXCHANGE, candle_page_max=1500, trade_page_max=100, empty_candles="omitted",
    candle_bounds="startAt/endAt unix seconds; at most 1500 rows; newest first",
    trade_paging="none: the latest 100 trades only", rate_limit=RateLimit(660, 30.0), trades_history="recent",
)
TYPES = {60: "1min", 180: "3min", 300: "5min", 900: "15min", 1800: "30min", 3600: "1hour", 7200: "2hour", 14400: "4hour",
         21600: "6hour", 28800: "8hour", 43200: "12hour", 86400: "1day", 604800: "1week"}
OK_CODE = "200000"
RATE_CODES = frozenset({"429000"})


def symbol_of(ticker: str) -> str:
    """KUCOIN:BTC/USDT -> "BTC-USDT"."""
    t = own_ticker(ticker, EXCHANGE)
    return f"{t.base}-{t.quote}"


class KucoinRest(PagedRest):
    FACTS = FACTS

    def body_error(self, body: Any) -> BodyError | None:
        if not isinstance(body, dict) or str(body.get("code", OK_CODE)) == OK_CODE:
            return None
        code = str(body["code"])
        return BodyError(code, str(body.get("msg", "")), Failure.RATE_LIMIT if code in RATE_CODES else Failure.FATAL)

    def pause_from_headers(self, headers: httpx.Headers) -> float:
        left, reset = headers.get("gw-ratelimit-remaining", ""), headers.get("gw-ratelimit-reset", "")
        if left.isdigit() and int(left) == 0 and reset.isdigit():
            return int(reset) / 1000
        return 0.0

    def candles(self, symbol: str, kind: str, start_s: int, end_s: int) -> list[list[Any]]:
        params = {"symbol": symbol, "type": kind, "startAt": start_s, "endAt": end_s}
        return list(self.get("/api/v1/market/candles", params)["data"])

    def histories(self, symbol: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/market/histories", {"symbol": symbol})["data"])

    def iter_candles(self, ticker: str, period_seconds: int, start_us: int, end_us: int,
                     page_size: int = FACTS.candle_page_max) -> Iterator[list[OHLC]]:
        """Closed candles with open time in [start_us, end_us), oldest first, windows of page_size intervals."""
        if period_seconds not in TYPES:
            raise ValueError(f"KuCoin has no {period_seconds} s klines; types: {sorted(TYPES)}")
        symbol, step = symbol_of(ticker), period_seconds
        for w0, w1 in windows(align_up(start_us, step * 1_000_000) // 1_000_000, -(-end_us // 1_000_000), page_size * step):
            now_s = now_us() // 1_000_000
            if w0 + step > now_s:
                return  # no closed candle starts here or later
            rows = self.candles(symbol, TYPES[period_seconds], w0, w1)
            page = sorted((_candle(r, ticker, step) for r in rows), key=lambda c: c.open_time)
            page = [c for c in page if w0 * 1_000_000 <= c.open_time < w1 * 1_000_000 and start_us <= c.open_time < end_us
                    and c.open_time // 1_000_000 + step <= now_s]
            if page:
                yield page

    def iter_trades(self, ticker: str, start_us: int, end_us: int) -> Iterator[list[Tick]]:
        """Trades with time in [start_us, end_us), oldest first, if KuCoin still lists the whole range."""
        symbol = symbol_of(ticker)
        rows = self.histories(symbol)
        received = now_us() * 1000
        ticks = sorted((_tick(r, ticker, received) for r in rows), key=lambda t: (t.exchange_time_ns, int(t.trade_id)))
        recent_window(ticks[0].exchange_time_ns // 1000 if ticks else None, len(rows), FACTS.trade_page_max, start_us,
                      f"KuCoin trades of {symbol}")
        page = [t for t in ticks if start_us * 1000 <= t.exchange_time_ns < end_us * 1000]
        if page:
            yield page


def _candle(r: list[Any], ticker: str, period_seconds: int) -> OHLC:
    return OHLC(ticker=ticker, period_seconds=period_seconds, open_time=int(r[0]) * 1_000_000, open=r[1], close=r[2], high=r[3],
                low=r[4], volume=r[5], quote_volume=r[6], closed=True)


def _tick(r: dict[str, Any], ticker: str, received_ns: int) -> Tick:
    # side is the taker's: "sell" means the buyer was the maker
    return Tick(ticker=ticker, trade_id=str(r["sequence"]), price=r["price"], size=r["size"], buyer_is_maker=r["side"] == "sell",
                exchange_time_ns=int(r["time"]), receive_time_ns=received_ns)
