"""Bitfinex REST v2 public: candles and trades as the project's messages.

Endpoints (https://docs.bitfinex.com/reference/rest-public-candles, .../rest-public-trades):
- GET /v2/candles/trade:{TF}:{SYMBOL}/hist?start&end&sort&limit: [[MTS, OPEN, CLOSE, HIGH,
  LOW, VOLUME]]; start/end in ms, both inclusive; sort=1 oldest first (default -1, newest
  first); limit at most 10000. Bitfinex has no candle for a timeframe without trades.
  Paged forward: the next start is the last candle + one timeframe. The newest candle
  may still be open (dropped).
- GET /v2/trades/{SYMBOL}/hist?start&end&sort&limit: [[ID, MTS, AMOUNT, PRICE]], AMOUNT
  negative for a sell (the taker's side); same bounds and sort; limit at most 10000.
  Paged forward from the last trade's MTS (inclusive, so same-millisecond trades are not
  lost) dropping the ids already seen.
Numbers are JSON numbers: read as their exact text (then written plain, "2.516e-05" ->
"0.00002516"). Errors: ["error", 10020, "..."]; 11010 "ratelimit: error" is the rate
limit. Rate limits (per IP, no headers): candles 30 requests/min, trades 15 requests/min
(https://docs.bitfinex.com/docs/requirements-and-limitations#rest-rate-limits); passing them
blocks the IP for 60 s, which is the wait when no Retry-After comes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
    plain,
)
from live_relay.messages import OHLC, Tick

EXCHANGE = "BITFINEX"
FACTS = RestFacts(
    exchange=EXCHANGE, candle_page_max=10_000, trade_page_max=10_000, empty_candles="omitted",
    candle_bounds="start/end ms, both inclusive; sort=1 oldest first",
    trade_paging="start (inclusive, ms) = the last trade's MTS, sort=1; repeats dropped by id",
    rate_limit=RateLimit(15, 60.0),
)
TIMEFRAMES = {60: "1m", 300: "5m", 900: "15m", 1800: "30m", 3600: "1h", 10800: "3h", 21600: "6h", 43200: "12h", 86400: "1D",
              604800: "1W"}
ALIASES = {"USDT": "UST"}  # Bitfinex's own currency codes
RATE_CODES = frozenset({"11010"})
BLOCKED_WAIT_S = 60.0


def symbol_of(ticker: str) -> str:
    """BITFINEX:BTC/USD -> "tBTCUSD"; BITFINEX:TESTBTC/TESTUSD -> "tTESTBTC:TESTUSD" (a colon when a code is longer than 3)."""
    t = own_ticker(ticker, EXCHANGE)
    base, quote = ALIASES.get(t.base, t.base), ALIASES.get(t.quote, t.quote)
    return f"t{base}{quote}" if len(base) == 3 and len(quote) == 3 else f"t{base}:{quote}"


class BitfinexRest(PagedRest):
    FACTS = FACTS
    float_text = True

    def body_error(self, body: Any) -> BodyError | None:
        if isinstance(body, list) and body and body[0] == "error":
            code, msg = (str(body[1]) if len(body) > 1 else ""), (str(body[2]) if len(body) > 2 else "")
            return BodyError(code, msg, Failure.RATE_LIMIT if code in RATE_CODES else Failure.FATAL)
        if isinstance(body, dict) and "error" in body:  # {"error": "ERR_RATE_LIMIT"}
            code = str(body["error"])
            return BodyError(code, code, Failure.RATE_LIMIT if "RATE" in code.upper() else Failure.FATAL)
        return None

    def backoff(self, attempt: int) -> float:
        return max(super().backoff(attempt), BLOCKED_WAIT_S if self.stats.rate_limited else 0.0)

    def candles_hist(self, symbol: str, tf: str, start_ms: int, end_ms: int, limit: int) -> list[list[Any]]:
        params = {"start": start_ms, "end": end_ms, "sort": 1, "limit": limit}
        return list(self.get(f"/v2/candles/trade:{tf}:{symbol}/hist", params))

    def trades_hist(self, symbol: str, start_ms: int, end_ms: int, limit: int) -> list[list[Any]]:
        return list(self.get(f"/v2/trades/{symbol}/hist", {"start": start_ms, "end": end_ms, "sort": 1, "limit": limit}))

    def iter_candles(self, ticker: str, period_seconds: int, start_us: int, end_us: int,
                     page_size: int = FACTS.candle_page_max) -> Iterator[list[OHLC]]:
        """Closed candles with open time in [start_us, end_us), oldest first, pages of page_size."""
        if period_seconds not in TIMEFRAMES:
            raise ValueError(f"Bitfinex has no {period_seconds} s timeframe; timeframes: {sorted(TIMEFRAMES)}")
        symbol, step = symbol_of(ticker), period_seconds * 1000
        start_ms, last_ms = align_up(start_us, step * 1000) // 1000, -(-end_us // 1000) - 1
        while start_ms <= last_ms:
            rows = self.candles_hist(symbol, TIMEFRAMES[period_seconds], start_ms, last_ms, page_size)
            now = now_us()
            page = [_candle(r, ticker, period_seconds) for r in rows]
            closed = [c for c in page if start_us <= c.open_time < end_us and c.open_time + step * 1000 <= now]
            if closed:
                yield closed
            if len(rows) < page_size or len(closed) < len(page):
                return
            start_ms = int(rows[-1][0]) + step

    def iter_trades(self, ticker: str, start_us: int, end_us: int, page_size: int = FACTS.trade_page_max) -> Iterator[list[Tick]]:
        """Trades with time in [start_us, end_us), oldest first."""
        symbol = symbol_of(ticker)
        start_ms, last_ms = -(-start_us // 1000), -(-end_us // 1000) - 1
        seen_at_start: set[str] = set()  # ids already yielded at millisecond start_ms
        while start_ms <= last_ms:
            rows = self.trades_hist(symbol, start_ms, last_ms, page_size)
            received = now_us() * 1000
            ticks = [_tick(r, ticker, received) for r in rows]
            page = [t for t in ticks if t.trade_id not in seen_at_start and start_us * 1000 <= t.exchange_time_ns < end_us * 1000]
            if page:
                yield page
            if len(rows) < page_size:
                return
            next_ms = int(rows[-1][1])
            if next_ms == start_ms and not page:
                raise ValueError(f"Bitfinex {symbol}: more than {page_size} trades at {start_ms} ms; cannot page past them")
            seen_at_start = {t.trade_id for t in ticks if int(t.exchange_time_ns // 1_000_000) == next_ms} | (
                seen_at_start if next_ms == start_ms else set())
            start_ms = next_ms


def _candle(r: list[Any], ticker: str, period_seconds: int) -> OHLC:
    return OHLC(ticker=ticker, period_seconds=period_seconds, open_time=int(r[0]) * 1000, open=plain(r[1]), close=plain(r[2]),
                high=plain(r[3]), low=plain(r[4]), volume=plain(r[5]), closed=True)


def _tick(r: list[Any], ticker: str, received_ns: int) -> Tick:
    amount = plain(r[2])
    return Tick(ticker=ticker, trade_id=str(r[0]), price=plain(r[3]), size=amount.lstrip("-"),
                buyer_is_maker=amount.startswith("-"), exchange_time_ns=ms_to_ns(r[1]), receive_time_ns=received_ns)
