"""OKX v5 public market REST: history candles and trades as the project's messages.

Endpoints (https://www.okx.com/docs-v5/en/#public-data-rest-api-get-candlesticks-history,
...#order-book-trading-market-data-get-trades-history):
- GET /api/v5/market/history-candles?instId&bar&after&before&limit: rows [ts, o, h, l,
  c, vol, volCcy, volCcyQuote, confirm] newest first, limit at most 100; `after` = older
  than ts, `before` = newer than ts, both exclusive. We ask windows of `limit` bars with
  both bounds (before = w0 - 1, after = w1), so a window always fits one page and pages
  come oldest window first. confirm "0" is the open candle (dropped).
- GET /api/v5/market/history-trades?instId&type&after&before&limit: newest first, limit
  at most 100; type=2 pages by timestamp, type=1 (default) by tradeId, bounds exclusive.
  A window's first page is by time (before = w0 - 1, after = w1); a full page continues
  backwards by tradeId (after = the oldest id) until it passes w0.
Rate limits: both endpoints 20 requests / 2 s per IP; OKX sends no rate-limit headers
and answers code 50011 (HTTP 429) when passed. Errors: {"code": "51000", "msg": ...},
code "0" is success. Whether a bar without trades has a candle is not documented: we pass
through whatever comes (the recorded-trades replay server omits them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingestors.okx.config import EXCHANGE, inst_id
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
    windows,
)
from live_relay.messages import OHLC, Tick

FACTS = RestFacts(
    exchange=EXCHANGE, candle_page_max=100, trade_page_max=100, empty_candles="undocumented",
    candle_bounds="after (older than) / before (newer than) ts in ms, both exclusive; newest first",
    trade_paging="type=2 after/before ts, type=1 after/before tradeId; exclusive; newest first",
    rate_limit=RateLimit(20, 2.0),
)
BARS = {60: "1m", 180: "3m", 300: "5m", 900: "15m", 1800: "30m", 3600: "1H", 7200: "2H", 14400: "4H", 21600: "6Hutc",
        43200: "12Hutc", 86400: "1Dutc"}
RATE_CODES = frozenset({"50011", "50061"})  # "Too Many Requests", "sub-account rate limit"
RETRY_CODES = frozenset({"50001", "50004", "50013", "50026"})  # service unavailable, timeouts, system busy
TRADE_WINDOW_MS = 3_600_000  # the first window of trades (then adaptive)


class OkxRest(PagedRest):
    FACTS = FACTS

    def body_error(self, body: Any) -> BodyError | None:
        if not isinstance(body, dict) or str(body.get("code", "0")) == "0":
            return None
        code = str(body["code"])
        failure = Failure.RATE_LIMIT if code in RATE_CODES else Failure.RETRY if code in RETRY_CODES else Failure.FATAL
        return BodyError(code, str(body.get("msg", "")), failure)

    def history_candles(self, inst: str, bar: str, after: int | None, before: int | None, limit: int) -> list[list[Any]]:
        params = {"instId": inst, "bar": bar, "after": after, "before": before, "limit": limit}
        return list(self.get("/api/v5/market/history-candles", params)["data"])

    def history_trades(self, inst: str, by_time: bool, after: int | None, before: int | None, limit: int) -> list[dict[str, Any]]:
        params = {"instId": inst, "type": 2 if by_time else 1, "after": after, "before": before, "limit": limit}
        return list(self.get("/api/v5/market/history-trades", params)["data"])

    def iter_candles(self, ticker: str, period_seconds: int, start_us: int, end_us: int,
                     page_size: int = FACTS.candle_page_max) -> Iterator[list[OHLC]]:
        """Confirmed candles with open time in [start_us, end_us), oldest first, one window of page_size bars a page."""
        if period_seconds not in BARS:
            raise ValueError(f"OKX has no {period_seconds} s bar; bars: {sorted(BARS)}")
        inst, step = inst_id(ticker), period_seconds * 1000
        for w0, w1 in windows(align_up(start_us, step * 1000) // 1000, -(-end_us // 1000), page_size * step):
            if w0 * 1000 + step * 1000 > now_us():
                return  # no closed candle starts here or later
            rows = self.history_candles(inst, BARS[period_seconds], after=w1, before=w0 - 1, limit=page_size)
            page = sorted((_candle(r, ticker, period_seconds) for r in rows if len(r) < 9 or r[8] == "1"),
                          key=lambda c: c.open_time)
            page = [c for c in page if start_us <= c.open_time < end_us]
            if page:
                yield page

    def iter_trades(self, ticker: str, start_us: int, end_us: int, page_size: int = FACTS.trade_page_max,
                    window_ms: int = TRADE_WINDOW_MS) -> Iterator[list[Tick]]:
        """Trades with time in [start_us, end_us), oldest first: per window, by time, then back by tradeId."""
        inst = inst_id(ticker)
        spans = AdaptiveWindows(-(-start_us // 1000), -(-end_us // 1000), window_ms, 1000, 30 * 86_400_000)
        for w0, w1 in spans:
            rows = self.history_trades(inst, True, after=w1, before=w0 - 1, limit=page_size)
            got, requests = list(rows), 1
            while len(rows) == page_size and min(int(r["ts"]) for r in rows) >= w0:
                oldest = min(int(r["tradeId"]) for r in rows)
                rows = self.history_trades(inst, False, after=oldest, before=None, limit=page_size)
                got, requests = got + rows, requests + 1
            spans.pages_used(requests)
            received = now_us() * 1000
            ticks = [_tick(r, ticker, received) for r in got]
            lo, hi = max(start_us * 1000, w0 * 1_000_000), min(end_us * 1000, w1 * 1_000_000)  # this window's own trades
            ticks = dedupe_sorted(ticks, key=lambda t: (t.exchange_time_ns, int(t.trade_id)), ident=lambda t: t.trade_id)
            ticks = [t for t in ticks if lo <= t.exchange_time_ns < hi]
            yield from chunks(ticks, page_size)


def _candle(r: list[Any], ticker: str, period_seconds: int) -> OHLC:
    return OHLC(ticker=ticker, period_seconds=period_seconds, open_time=int(r[0]) * 1000, open=r[1], high=r[2], low=r[3],
                close=r[4], volume=r[5], quote_volume=r[7] if len(r) > 7 else "", closed=True)


def _tick(r: dict[str, Any], ticker: str, received_ns: int) -> Tick:
    # side is the taker's: "sell" means the buyer was the maker
    return Tick(ticker=ticker, trade_id=str(r["tradeId"]), price=r["px"], size=r["sz"], buyer_is_maker=r["side"] == "sell",
                exchange_time_ns=ms_to_ns(r["ts"]), receive_time_ns=received_ns)
