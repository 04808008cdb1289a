"""Kraken spot public REST: OHLC and trades as the project's messages.

Endpoints (https://docs.kraken.com/api/docs/rest-api/get-ohlc-data, .../get-recent-trades):
- GET /0/public/OHLC?pair&interval&since: rows [time, open, high, low, close, vwap,
  volume, count]; at most the 720 most recent candles exist, whatever `since` says, and
  the last row is the current, not-yet-committed candle (dropped here). So candles have
  no page size to choose: one request covers what Kraken keeps, and a range older than
  that raises HistoryUnavailableError instead of coming back silently short.
- GET /0/public/Trades?pair&since&count: trades after `since` (a ns cursor; the answer's
  `last` is the next one), oldest first, `count` at most 1000; rows [price, volume, time,
  side "b"/"s", ordertype, misc, trade_id]. The time is a JSON number: read as its text.
Errors come with HTTP 200 as {"error": ["EQuery:Unknown asset pair"]};
"EAPI:Rate limit exceeded" / "EGeneral:Too many requests" mean wait and retry. Public
calls have no rate-limit headers; Kraken asks for about one call a second
(https://docs.kraken.com/api/docs/guides/spot-rest-ratelimits).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingestors.kraken.config import ASSET_ALIASES, EXCHANGE
from ingestors.rest_base import (
    BodyError,
    Failure,
    HistoryUnavailableError,
    PagedRest,
    RateLimit,
    RestFacts,
    align_up,
    now_us,
    own_ticker,
    plain,
    seconds_to_ns,
)
from live_relay.messages import OHLC, Tick

FACTS = RestFacts(
    exchange=EXCHANGE, candle_page_max=720, trade_page_max=1000, empty_candles="undocumented",
    candle_bounds="`since` (seconds) only; the 720 most recent candles, older ones cannot be fetched",
    trade_paging="`since` ns cursor, exclusive; the answer's `last` is the next cursor; oldest first",
    rate_limit=RateLimit(1, 1.0),
)
INTERVALS_MIN = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
RATE_ERRORS = ("EAPI:Rate limit exceeded", "EGeneral:Too many requests")
TO_KRAKEN = {v: k for k, v in ASSET_ALIASES.items()}  # BTC -> XBT, DOGE -> XDG


def pair_name(ticker: str) -> str:
    """KRAKEN:BTC/CHF -> "XBTCHF" (the pair's altname, which the REST API accepts)."""
    t = own_ticker(ticker, EXCHANGE)
    return TO_KRAKEN.get(t.base, t.base) + TO_KRAKEN.get(t.quote, t.quote)


def _result_rows(result: dict[str, Any]) -> list[list[Any]]:
    """The one pair entry of a result (keyed by Kraken's own pair name, e.g. XXBTZUSD) besides "last"."""
    return next((v for k, v in result.items() if k != "last"), [])


class KrakenRest(PagedRest):
    FACTS = FACTS
    float_text = True  # trade times are JSON numbers: keep their digits

    def body_error(self, body: Any) -> BodyError | None:
        errors = body.get("error") if isinstance(body, dict) else None
        if not errors:
            return None
        text = "; ".join(str(e) for e in errors)
        code = str(errors[0]).split(":", 1)[0]
        return BodyError(code, text, Failure.RATE_LIMIT if any(e in RATE_ERRORS for e in errors) else Failure.FATAL)

    def ohlc(self, pair: str, interval_min: int, since: int | None) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/0/public/OHLC", {"pair": pair, "interval": interval_min, "since": since})["result"]
        return result

    def trades(self, pair: str, since_ns: int, count: int) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/0/public/Trades", {"pair": pair, "since": since_ns, "count": count})["result"]
        return result

    def iter_candles(self, ticker: str, period_seconds: int, start_us: int, end_us: int) -> Iterator[list[OHLC]]:
        """Committed candles with open time in [start_us, end_us), oldest first (one page: Kraken keeps 720)."""
        if period_seconds % 60 or period_seconds // 60 not in INTERVALS_MIN:
            raise ValueError(f"Kraken has no {period_seconds} s candles; intervals (min): {INTERVALS_MIN}")
        pair, step = pair_name(ticker), period_seconds * 1_000_000
        first = align_up(start_us, step)
        result = self.ohlc(pair, period_seconds // 60, first // 1_000_000 - 1)  # `since` is exclusive
        rows = _result_rows(result)
        if len(rows) >= FACTS.candle_page_max and int(rows[0][0]) * 1_000_000 > first:
            raise HistoryUnavailableError(
                f"Kraken keeps only the {FACTS.candle_page_max} most recent {period_seconds} s candles of {pair}; "
                f"the oldest is at {int(rows[0][0])} s, after the asked start {first // 1_000_000} s")
        now = now_us()
        page = [_candle(r, ticker, period_seconds) for r in rows]
        page = [c for c in page if first <= c.open_time < end_us and c.open_time + step <= now]
        if page:
            yield page

    def iter_trades(self, ticker: str, start_us: int, end_us: int, page_size: int = FACTS.trade_page_max) -> Iterator[list[Tick]]:
        """Trades with time in [start_us, end_us), oldest first, following the `last` cursor."""
        pair = pair_name(ticker)
        since, end_ns = start_us * 1000 - 1, end_us * 1000
        while True:
            result = self.trades(pair, since, page_size)
            rows = _result_rows(result)
            received = now_us() * 1000
            page = [_tick(r, ticker, received) for r in rows]
            inside = [t for t in page if start_us * 1000 <= t.exchange_time_ns < end_ns]
            if inside:
                yield inside
            cursor = int(str(result.get("last", since)))
            if len(rows) < page_size or not page or page[-1].exchange_time_ns >= end_ns or cursor <= since:
                return
            since = cursor


def _candle(r: list[Any], ticker: str, period_seconds: int) -> OHLC:
    # no quote volume: Kraken sends a rounded vwap, and vwap x volume would be a made-up number
    return OHLC(ticker=ticker, period_seconds=period_seconds, open_time=int(r[0]) * 1_000_000, open=plain(r[1]),
                high=plain(r[2]), low=plain(r[3]), close=plain(r[4]), volume=plain(r[6]), trade_count=int(r[7]), closed=True)


def _tick(r: list[Any], ticker: str, received_ns: int) -> Tick:
    return Tick(ticker=ticker, trade_id=str(r[6]) if len(r) > 6 else "", price=plain(r[0]), size=plain(r[1]),
                buyer_is_maker=r[3] == "s", exchange_time_ns=seconds_to_ns(r[2]), receive_time_ns=received_ns)
