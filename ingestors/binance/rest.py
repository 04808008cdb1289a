"""Binance spot REST client: paged klines and aggregate trades as the project's messages.

Follows Binance's rules (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits):
reads X-MBX-USED-WEIGHT-1M and waits for the next window before it would pass the
weight limit; on 429/418 waits Retry-After; retries 5xx and connection errors with
exponential backoff and jitter; raises ExchangeError with the reason when it gives
up, and at once for other 4xx (an invalid symbol will not get better by retrying).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from ingestors.binance import config as cfg
from ingestors.binance.parse import parse_agg_trade, parse_kline
from live_relay.messages import OHLC, Tick

log = logging.getLogger(__name__)


class ExchangeError(Exception):
    """Binance answered with an error (or never answered); status 0 means no HTTP answer at all."""

    def __init__(self, status: int, code: int | None, msg: str, *, url: str = "", reason: str = "") -> None:
        self.status, self.code, self.msg, self.url, self.reason = status, code, msg, url, reason
        where = f" for {url}" if url else ""
        why = f": {reason}" if reason else ""
        super().__init__(f"Binance error{where}: HTTP {status}, code {code}, {msg!r}{why}")


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    throttle_waits: int = 0  # waits for the next weight window before sending
    slept_seconds: float = 0.0


class BinanceRest:
    """Synchronous Binance spot market-data client (one httpx connection pool)."""

    def __init__(self, base_url: str, max_retries: int = 6, timeout: float = 10.0, *,
                 weight_limit: int = cfg.WEIGHT_LIMIT_PER_MINUTE, weight_window_seconds: int = 60,
                 weight_headroom: float = 0.9, backoff_base: float = 0.5, backoff_max: float = 30.0,
                 max_retry_after: float = 300.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries, self.weight_limit, self.weight_headroom = max_retries, weight_limit, weight_headroom
        self.weight_window_seconds = weight_window_seconds
        self.backoff_base, self.backoff_max, self.max_retry_after = backoff_base, backoff_max, max_retry_after
        self.stats = ClientStats()
        self._sleep_fn = sleep
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers={"User-Agent": "marketlake"})
        self._used_weight, self._weight_window = 0, -1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BinanceRest:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _sleep(self, seconds: float) -> None:
        self.stats.slept_seconds += seconds
        self._sleep_fn(seconds)

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        return delay / 2 + random.uniform(0, delay / 2)  # "equal jitter"

    def _throttle(self, weight: int) -> None:
        """Wait for the next weight window if this request would pass the limit (with headroom)."""
        now = time.time()
        if int(now // self.weight_window_seconds) != self._weight_window:
            return  # a new window: Binance has reset the count
        if self._used_weight + weight > self.weight_limit * self.weight_headroom:
            wait = (self._weight_window + 1) * self.weight_window_seconds - now + 0.05
            log.info("Binance used weight %d of %d: waiting %.2f s for the next window",
                     self._used_weight, self.weight_limit, wait)
            self.stats.throttle_waits += 1
            self._sleep(wait)

    def get_json(self, path: str, params: dict[str, Any], weight: int = 1) -> Any:
        """GET with Binance's rate limits and retries; the decoded JSON body or ExchangeError."""
        url = str(httpx.URL(f"{self.base_url}{path}", params=params))
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            self._throttle(weight)
            self.stats.requests += 1
            try:
                resp = self._http.get(path, params=params)
            except httpx.TransportError as exc:
                if last:
                    raise ExchangeError(0, None, f"{type(exc).__name__}: {exc}", url=url,
                                        reason=f"no answer after {attempt + 1} attempts") from exc
                self._retry(f"{type(exc).__name__} on {path}", self._backoff(attempt))
                continue
            used = resp.headers.get(cfg.WEIGHT_HEADER, "")
            if used.isdigit():
                self._used_weight, self._weight_window = int(used), int(time.time() // self.weight_window_seconds)
            if resp.status_code == 200:
                return orjson.loads(resp.content)
            code, msg = _error_of(resp)
            status = resp.status_code
            if status in (418, 429):
                wait = _retry_after(resp, self._backoff(attempt))
                if status == 418 and wait > self.max_retry_after:
                    raise ExchangeError(status, code, msg, url=url, reason=f"IP banned for {wait:.0f} s")
                if last:
                    raise ExchangeError(status, code, msg, url=url,
                                        reason=f"still rate limited after {attempt + 1} attempts")
                self._retry(f"{status} on {path}", wait)
            elif status >= 500:
                if last:
                    raise ExchangeError(status, code, msg, url=url, reason=f"gave up after {attempt + 1} attempts")
                self._retry(f"{status} on {path}", self._backoff(attempt))
            else:
                raise ExchangeError(status, code, msg, url=url, reason="request rejected; not retried")
        raise AssertionError("unreachable")

    def _retry(self, what: str, wait: float) -> None:
        log.warning("Binance %s: retrying in %.2f s", what, wait)
        self.stats.retries += 1
        self._sleep(wait)

    # Endpoints -------------------------------------------------------------------------------------

    def server_time_ms(self) -> int:
        return int(self.get_json("/api/v3/time", {}, cfg.WEIGHTS["/api/v3/time"])["serverTime"])

    def exchange_info(self, symbols: Sequence[str] | None = None) -> dict[str, Any]:
        params = {"symbols": orjson.dumps(list(symbols)).decode()} if symbols else {}
        return self.get_json("/api/v3/exchangeInfo", params, cfg.WEIGHTS["/api/v3/exchangeInfo"])

    def depth(self, symbol: str, limit: int = cfg.DEPTH_DEFAULT_LIMIT) -> dict[str, Any]:
        params = {"symbol": cfg.exchange_symbol(symbol), "limit": limit}
        return self.get_json("/api/v3/depth", params, cfg.depth_weight(limit))

    def klines(self, symbol: str, interval: str, start_ms: int | None = None, end_ms: int | None = None,
               limit: int = cfg.KLINES_MAX_LIMIT) -> list[list[Any]]:
        params = _params(symbol=symbol, interval=interval, startTime=start_ms, endTime=end_ms, limit=limit)
        return self.get_json("/api/v3/klines", params, cfg.WEIGHTS["/api/v3/klines"])

    def agg_trades(self, symbol: str, from_id: int | None = None, start_ms: int | None = None,
                   end_ms: int | None = None, limit: int = cfg.AGG_TRADES_MAX_LIMIT) -> list[dict[str, Any]]:
        params = _params(symbol=symbol, fromId=from_id, startTime=start_ms, endTime=end_ms, limit=limit)
        return self.get_json("/api/v3/aggTrades", params, cfg.WEIGHTS["/api/v3/aggTrades"])

    # Paged history as messages ---------------------------------------------------------------------

    def iter_klines(self, symbol: str, interval_seconds: int, start_us: int, end_us: int) -> Iterator[list[OHLC]]:
        """Closed candles with open time in [start_us, end_us), pages of up to 1000, in time order."""
        interval = cfg.interval_name(interval_seconds)
        sym = cfg.exchange_symbol(symbol)
        ticker, step = cfg.ticker_for(sym), interval_seconds * 1000
        next_ms, last_ms = -(-start_us // 1000), -(-end_us // 1000) - 1  # Binance's endTime is inclusive
        while next_ms <= last_ms:
            rows = self.klines(sym, interval, next_ms, last_ms, cfg.KLINES_MAX_LIMIT)
            now_ms = int(time.time() * 1000)
            closed = [r for r in rows if r[6] < now_ms]  # the exchange also sends the candle still open
            page = [parse_kline(r, ticker, interval_seconds) for r in closed if start_us <= r[0] * 1000 < end_us]
            if page:
                yield page
            if len(rows) < cfg.KLINES_MAX_LIMIT or len(closed) < len(rows):
                return
            next_ms = rows[-1][0] + step

    def iter_agg_trades(self, symbol: str, start_us: int, end_us: int) -> Iterator[list[Tick]]:
        """Aggregate trades with time in [start_us, end_us): first page by startTime, then by fromId.

        The first page asks one hour at most (Binance's startTime/endTime window) and moves on an hour
        while a window is empty, so a quiet hour at the start does not end the walk.
        """
        sym = cfg.exchange_symbol(symbol)
        ticker = cfg.ticker_for(sym)
        first_ms, last_ms = -(-start_us // 1000), -(-end_us // 1000) - 1
        limit, window = cfg.AGG_TRADES_MAX_LIMIT, cfg.AGG_TRADES_MAX_WINDOW_MS
        rows: list[dict[str, Any]] = []
        while not rows and first_ms <= last_ms:
            rows = self.agg_trades(sym, start_ms=first_ms, end_ms=min(first_ms + window - 1, last_ms), limit=limit)
            first_ms += window
        by_time = True
        while rows:
            received = time.time_ns()
            page = [parse_agg_trade(r, ticker, received) for r in rows if r["T"] <= last_ms]
            if page:
                yield page
            if rows[-1]["T"] >= last_ms or (not by_time and len(rows) < limit):
                return  # past the end, or no newer trades exist yet
            rows, by_time = self.agg_trades(sym, from_id=rows[-1]["a"] + 1, limit=limit), False


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _error_of(resp: httpx.Response) -> tuple[int | None, str]:
    """Binance's {"code", "msg"} from an error answer, or the raw text when it is not one."""
    try:
        body = orjson.loads(resp.content)
        return int(body["code"]), str(body["msg"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None, resp.text[:200] or resp.reason_phrase


def _retry_after(resp: httpx.Response, default: float) -> float:
    value = resp.headers.get("Retry-After", "")
    return float(value) if value.replace(".", "", 1).isdigit() else default
