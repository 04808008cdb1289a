"""MEXC spot v3 public market REST: klines and aggregate trades as the project's messages.

Endpoints (https://www.mexc.com/api-docs/spot-v3/market-data-endpoints):
- GET /api/v3/klines?symbol&interval&startTime&endTime&limit: rows [openTime, o, h, l, c, volume,
  closeTime, quoteVolume], oldest first, limit default 500, max 1000; intervals 1m 5m 15m 30m 60m
  4h 1d 1W 1M (config.INTERVALS; "60m", not "1h"). Pages walk forwards from startTime by open time.
- GET /api/v3/aggTrades?symbol&startTime&endTime&limit: oldest first, limit default 500, max 1000.
  MEXC's aggregate trades carry no ids ("a", "f", "l" are null) and fromId is not a MEXC parameter, so
  trades page by time only: a window [w0, w1] (ms, both inclusive) whose answer is a full page is split
  in half until every window fits one page (a millisecond with more than 1000 aggregates cannot be
  listed: ExchangeApiError). Windows never span more than an hour. Trade ids are content-derived
  ("<time ms>-<n>-<price>-<quantity>", n counting identical aggregates in that millisecond), the scheme
  of the live adapter (live.deal_ids).
Rate limit: 500 weight per 10 s per IP (config.WEIGHT_LIMIT). Errors: {"code": int, "msg": str}, HTTP 4xx/5xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingestors.mexc import codec
from ingestors.mexc import config as cfg
from ingestors.mexc.live import deal_ids
from ingestors.rest_base import (
    BodyError,
    ExchangeApiError,
    PagedRest,
    RateLimit,
    RestFacts,
    align_up,
    now_us,
    own_ticker,
)
from live_relay.messages import OHLC, Tick

FACTS = RestFacts(
    exchange=cfg.EXCHANGE, candle_page_max=int(cfg.KLINES_MAX_LIMIT.value), trade_page_max=int(cfg.AGG_TRADES_MAX_LIMIT.value),
    empty_candles="undocumented", candle_bounds="startTime/endTime ms on open time, inclusive; oldest first",
    trade_paging="startTime/endTime ms, inclusive, oldest first; no ids, no fromId: windows split until they fit a page",
    rate_limit=RateLimit(int(cfg.WEIGHT_LIMIT.value), float(cfg.WEIGHT_WINDOW_S)),
)
TRADE_WINDOW_MS = int(cfg.AGG_TRADES_MAX_WINDOW_MS.value)


class MexcRest(PagedRest):
    FACTS = FACTS

    def body_error(self, body: Any) -> BodyError | None:
        if isinstance(body, dict) and "code" in body and "msg" in body and body.get("code") not in (0, 200):
            return BodyError(str(body["code"]), str(body["msg"]))
        return None

    def klines(self, symbol: str, interval: str, start_ms: int, end_ms: int, limit: int) -> list[list[Any]]:
        params = {"symbol": symbol, "interval": interval, "startTime": start_ms, "endTime": end_ms, "limit": limit}
        return list(self.get("/api/v3/klines", params))

    def agg_trades(self, symbol: str, start_ms: int, end_ms: int, limit: int) -> list[dict[str, Any]]:
        params = {"symbol": symbol, "startTime": start_ms, "endTime": end_ms, "limit": limit}
        return list(self.get("/api/v3/aggTrades", params))

    def iter_candles(self, ticker: str, period_seconds: int, start_us: int, end_us: int,
                     page_size: int = FACTS.candle_page_max) -> Iterator[list[OHLC]]:
        """Closed candles with open time in [start_us, end_us), oldest first."""
        t = own_ticker(ticker, cfg.EXCHANGE)
        if period_seconds not in cfg.INTERVAL_OF_SECONDS:
            raise ValueError(f"MEXC has no {period_seconds} s kline interval; intervals: {cfg.INTERVALS}")
        symbol, step = f"{t.base}{t.quote}", period_seconds * 1000
        k = align_up(start_us, step * 1000) // 1000
        end_ms = -(-end_us // 1000)
        while k < end_ms and k + step <= now_us() // 1000:
            rows = self.klines(symbol, cfg.INTERVAL_OF_SECONDS[period_seconds], k, end_ms - 1, page_size)
            page = [_candle(r, ticker, period_seconds) for r in rows if int(r[0]) >= k]
            page = [c for c in page if start_us <= c.open_time < end_us]
            if not page:
                return
            yield page
            k = page[-1].open_time // 1000 + step

    def iter_trades(self, ticker: str, start_us: int, end_us: int, page_size: int = FACTS.trade_page_max,
                    window_ms: int = TRADE_WINDOW_MS) -> Iterator[list[Tick]]:
        """Aggregate trades with time in [start_us, end_us), oldest first, one page per window that fits."""
        t = own_ticker(ticker, cfg.EXCHANGE)
        symbol = f"{t.base}{t.quote}"
        seen: dict[tuple[int, str, str, int], int] = {}
        start_ms, end_ms = -(-start_us // 1000), -(-end_us // 1000)  # [start_ms, end_ms) in whole ms
        stack = [(w, min(w + window_ms, end_ms) - 1) for w in range(start_ms, end_ms, window_ms)][::-1]
        while stack:
            w0, w1 = stack.pop()
            rows = self.agg_trades(symbol, w0, w1, page_size)
            if len(rows) >= page_size:
                if w0 == w1:
                    raise ExchangeApiError(cfg.EXCHANGE, 200, "", f"{symbol}: more than {page_size} aggregate trades "
                                           f"in millisecond {w0}: cannot be listed without ids")
                mid = (w0 + w1) // 2
                stack += [(mid + 1, w1), (w0, mid)]
                continue
            deals = [codec.Deal(str(r["p"]), str(r["q"]), codec.TAKER_SELL if r["m"] else codec.TAKER_BUY, int(r["T"]))
                     for r in rows]
            received = now_us() * 1000
            ticks = [Tick(ticker=ticker, trade_id=tid, price=d.price, size=d.quantity,
                          buyer_is_maker=d.trade_type == codec.TAKER_SELL, exchange_time_ns=d.time_ms * 1_000_000,
                          receive_time_ns=received) for d, tid in zip(deals, deal_ids(deals, seen), strict=True)]
            ticks = [x for x in ticks if start_us * 1000 <= x.exchange_time_ns < end_us * 1000]
            if ticks:
                yield ticks


def _candle(r: list[Any], ticker: str, period_seconds: int) -> OHLC:
    return OHLC(ticker=ticker, period_seconds=period_seconds, open_time=int(r[0]) * 1000, open=str(r[1]), high=str(r[2]),
                low=str(r[3]), close=str(r[4]), volume=str(r[5]), quote_volume=str(r[7]) if len(r) > 7 else "",
                closed=True)
