"""What every exchange's REST history client shares: rate limits, retries, errors, venue facts as data.

Each exchange's rest.py (ingestors/<x>/rest.py) subclasses RestClient and says only
what is its own: how an error looks in a body (Kraken and Bybit answer errors with
HTTP 200), which headers carry its rate-limit state, and its documented limits.

Rules (the same as ingestors/binance/rest.py): a client-side token bucket keeps under
the documented request rate; a header saying "nothing left" pauses until its reset; a
429 (or an exchange's rate-limit error code) waits Retry-After when sent, else backs off
exponentially with jitter; 5xx and connection errors back off the same way; any other
error is raised at once as ExchangeApiError carrying the exchange's own code and message.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Literal, TypeVar

import httpx
import orjson

from live_relay.messages import OHLC, Tick
from live_relay.topics import Ticker, parse_ticker

log = logging.getLogger(__name__)

T = TypeVar("T")


class ExchangeApiError(Exception):
    """An exchange refused a request (or never answered: status 0). code/msg are the exchange's own."""

    def __init__(self, exchange: str, status: int, code: str, msg: str, *, url: str = "", reason: str = "") -> None:
        self.exchange, self.status, self.code, self.msg, self.url, self.reason = exchange, status, code, msg, url, reason
        where = f" for {url}" if url else ""
        why = f": {reason}" if reason else ""
        super().__init__(f"{exchange} error{where}: HTTP {status}, code {code or '-'}, {msg!r}{why}")


class HistoryUnavailableError(ValueError):
    """The exchange does not serve the asked range (e.g. only its most recent N trades or candles)."""


class Failure(Enum):
    """What an error answer means for the next attempt."""

    RATE_LIMIT = "rate_limit"  # wait (Retry-After, else backoff) and retry
    RETRY = "retry"  # transient: back off and retry
    FATAL = "fatal"  # the request will not get better: raise


@dataclass(frozen=True)
class BodyError:
    code: str
    msg: str
    failure: Failure = Failure.FATAL


@dataclass(frozen=True)
class RateLimit:
    """A documented request budget: `requests` per `per_seconds` (per IP, public endpoints)."""

    requests: int
    per_seconds: float


@dataclass(frozen=True)
class RestFacts:
    """One exchange's documented REST history rules, as data (see each rest.py for the doc links)."""

    exchange: str
    candle_page_max: int  # most candles one request returns (0: the endpoint has no time paging)
    trade_page_max: int  # most trades one request returns
    # an interval without trades: no candle ("omitted"), a flat zero-volume one ("zero_volume"), or the docs do not
    # say ("undocumented"). The fetchers pass through what the exchange sends and never fill gaps themselves.
    empty_candles: Literal["omitted", "zero_volume", "undocumented"]
    candle_bounds: str  # the request's time bounds, e.g. "start/end inclusive, ms"
    trade_paging: str  # how trades page, e.g. "after/before tradeId, exclusive, newest first"
    rate_limit: RateLimit
    trades_history: Literal["full", "recent"] = "full"  # "recent": only the latest trade_page_max trades exist


class TokenBucket:
    """Client-side pacing: at most `requests` in any `per_seconds` window on average, bursts up to `requests`."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.rate = float(limit.requests), limit.requests / limit.per_seconds
        self.tokens, self._clock = self.capacity, clock
        self._at = clock()

    def wait_needed(self) -> float:
        """Take one token; the seconds to wait before using it (0 when one was available)."""
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._at) * self.rate)
        self._at = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    throttle_waits: int = 0  # pauses for the bucket or a rate-limit header, before sending
    rate_limited: int = 0  # answers that said "too many requests"
    slept_seconds: float = 0.0


class RestClient:
    """Synchronous GET client with one exchange's limits, retries and error shape (subclass per exchange)."""

    FACTS: RestFacts
    float_text = False  # decode JSON numbers as their exact text (exchanges that send prices as numbers)

    def __init__(self, base_url: str, *, max_retries: int = 6, timeout: float = 10.0, rate_limit: RateLimit | None = None,
                 backoff_base: float = 0.5, backoff_max: float = 30.0, max_retry_after: float = 300.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries, self.backoff_base, self.backoff_max = max_retries, backoff_base, backoff_max
        self.max_retry_after = max_retry_after
        self.stats = ClientStats()
        self.bucket = TokenBucket(rate_limit or self.FACTS.rate_limit)
        self._sleep_fn = sleep
        self._pause_until = 0.0  # monotonic time before which a rate-limit header told us not to send
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers={"User-Agent": "marketlake"})

    @property
    def exchange(self) -> str:
        return self.FACTS.exchange

    def close(self) -> None:
        self._http.close()

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Exchange-specific hooks -------------------------------------------------------------------------

    def body_error(self, body: Any) -> BodyError | None:
        """An error carried by a decoded body (whatever the HTTP status), or None for a good answer."""
        return None

    def pause_from_headers(self, headers: httpx.Headers) -> float:
        """Seconds to wait before the next request, from the exchange's rate-limit headers (0: none)."""
        return 0.0

    # Machinery ---------------------------------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.slept_seconds += seconds
            self._sleep_fn(seconds)

    def backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        return delay / 2 + random.uniform(0, delay / 2)  # "equal jitter"

    def _throttle(self) -> None:
        wait = max(self.bucket.wait_needed(), self._pause_until - time.monotonic())
        if wait > 0:
            self.stats.throttle_waits += 1
            log.debug("%s: pacing %.3f s before the next request", self.exchange, wait)
            self._sleep(wait)

    def decode(self, content: bytes) -> Any:
        if self.float_text:  # exact decimal text of JSON numbers, big integers kept whole
            return json.loads(content, parse_float=str)
        return orjson.loads(content)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET path with the exchange's limits and retries: the decoded good body, or ExchangeApiError."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = str(httpx.URL(f"{self.base_url}{path}", params=query))
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            self._throttle()
            self.stats.requests += 1
            try:
                resp = self._http.get(path, params=query)
            except httpx.TransportError as exc:
                if last:
                    raise ExchangeApiError(self.exchange, 0, "", f"{type(exc).__name__}: {exc}", url=url,
                                           reason=f"no answer after {attempt + 1} attempts") from exc
                self._retry(f"{type(exc).__name__} on {path}", self.backoff(attempt))
                continue
            pause = self.pause_from_headers(resp.headers)
            if pause > 0:
                self._pause_until = max(self._pause_until, time.monotonic() + pause)
            try:
                body: Any = self.decode(resp.content)
            except (ValueError, orjson.JSONDecodeError):
                body = None
            err = self.body_error(body) if body is not None else None
            if resp.status_code == 200 and err is None:
                if body is None:
                    raise ExchangeApiError(self.exchange, 200, "", resp.text[:200], url=url, reason="not JSON")
                return body
            status = resp.status_code
            if err is None:
                err = BodyError("", resp.text[:200] or resp.reason_phrase)
            if status == 429 or (status != 200 and status >= 500) or err.failure is not Failure.FATAL:
                rate = status == 429 or err.failure is Failure.RATE_LIMIT
                wait = _retry_after(resp) if rate else None
                if wait is not None and wait > self.max_retry_after:
                    raise ExchangeApiError(self.exchange, status, err.code, err.msg, url=url,
                                           reason=f"Retry-After {wait:.0f} s is longer than {self.max_retry_after:.0f} s")
                if last:
                    raise ExchangeApiError(self.exchange, status, err.code, err.msg, url=url,
                                           reason=f"gave up after {attempt + 1} attempts")
                if rate:
                    self.stats.rate_limited += 1
                self._retry(f"HTTP {status} {err.code} on {path}", wait if wait is not None else self.backoff(attempt))
                continue
            raise ExchangeApiError(self.exchange, status, err.code, err.msg, url=url, reason="request rejected; not retried")
        raise AssertionError("unreachable")

    def _retry(self, what: str, wait: float) -> None:
        log.warning("%s %s: retrying in %.2f s", self.exchange, what, wait)
        self.stats.retries += 1
        self._sleep(wait)


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


# Shared helpers for the clients --------------------------------------------------------------------------


def plain(text: object) -> str:
    """A decimal as plain text: JSON-number text "2.516e-5" -> "0.00002516"; "716.0" and "0.0420" stay as they are."""
    s = str(text)
    if "e" not in s and "E" not in s:
        return s
    try:
        return format(Decimal(s), "f")
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {s!r}") from None


def ms_to_ns(text: object) -> int:
    """Milliseconds (int or decimal text such as "1619093546958.116") -> ns."""
    return int(Decimal(str(text)) * 1_000_000)


def seconds_to_ns(text: object) -> int:
    """Seconds (decimal text such as "1618678142.557535") -> ns."""
    return int(Decimal(str(text)) * 1_000_000_000)


def align_up(us: int, step_us: int) -> int:
    """The first multiple of step_us at or after us."""
    return -(-us // step_us) * step_us


def windows(start_us: int, end_us: int, span_us: int) -> Iterator[tuple[int, int]]:
    """Consecutive [w0, w1) windows of span_us covering [start_us, end_us)."""
    w0 = start_us
    while w0 < end_us:
        w1 = min(end_us, w0 + span_us)
        yield w0, w1
        w0 = w1


class AdaptiveWindows:
    """[w0, w1) windows over [start, end) whose span adapts to how busy the market is.

    For endpoints without a forward cursor (a window is paged backwards, then returned oldest
    first): a window done in one page doubles the next one (quiet markets cost few requests),
    one that took more than `busy_pages` halves it (a window is held in memory whole).
    """

    def __init__(self, start: int, end: int, initial: int, minimum: int, maximum: int, busy_pages: int = 8) -> None:
        self.w0, self.end, self.span = start, end, initial
        self.minimum, self.maximum, self.busy_pages = minimum, maximum, busy_pages

    def __iter__(self) -> Iterator[tuple[int, int]]:
        while self.w0 < self.end:
            w1 = min(self.end, self.w0 + self.span)
            yield self.w0, w1
            self.w0 = w1

    def pages_used(self, pages: int) -> None:
        """Tell how many requests the window just yielded took."""
        if pages <= 1:
            self.span = min(self.maximum, self.span * 2)
        elif pages > self.busy_pages:
            self.span = max(self.minimum, self.span // 2)


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def dedupe_sorted(items: Iterable[T], key: Callable[[T], Any], ident: Callable[[T], Any]) -> list[T]:
    """Items sorted by key, each identity once (pages that overlap at a boundary repeat some)."""
    seen: set[Any] = set()
    out = []
    for it in sorted(items, key=key):
        i = ident(it)
        if i not in seen:
            seen.add(i)
            out.append(it)
    return out


def now_us() -> int:
    return time.time_ns() // 1000


def own_ticker(ticker: str, exchange: str) -> Ticker:
    """The parsed ticker, or ValueError when it belongs to another exchange."""
    t = parse_ticker(ticker)
    if t.exchange != exchange:
        raise ValueError(f"not a {exchange} ticker: {ticker!r}")
    return t


def recent_window(first_us: int | None, listed: int, limit: int, start_us: int, what: str) -> None:
    """For endpoints that list only the most recent `limit` items (no time paging): HistoryUnavailableError when
    the list is full and its oldest item (`first_us`, None: none parsed) is after `start_us`, so the asked range
    starts before what the exchange still lists."""
    if listed >= limit and (first_us is None or first_us >= start_us):
        oldest = f"{first_us} µs" if first_us is not None else "-"
        raise HistoryUnavailableError(f"{what}: only the {limit} most recent are listed (oldest at {oldest}); "
                                      f"the range from {start_us} µs is older than that")


class PagedRest(RestClient):
    """A client that can list closed candles and trades of a ticker as pages (what a HistoryFetcher needs)."""

    def iter_candles(self, ticker: str, period_seconds: int, start_us: int, end_us: int) -> Iterator[list[OHLC]]:
        raise NotImplementedError

    def iter_trades(self, ticker: str, start_us: int, end_us: int) -> Iterator[list[Tick]]:
        raise NotImplementedError


class RestHistory:
    """HistoryFetcher over a PagedRest: period 0 -> trades, else candles; pages in time order inside [start, end)."""

    def __init__(self, rest: PagedRest) -> None:
        self.rest = rest

    def pages(self, ticker: str, period_seconds: int, start_us: int, end_us: int) -> Iterator[Sequence[OHLC | Tick]]:
        if period_seconds == 0:
            yield from self.rest.iter_trades(ticker, start_us, end_us)
        else:
            yield from self.rest.iter_candles(ticker, period_seconds, start_us, end_us)
