"""Validation of client requests at the relay (SPEC: known exchange, ticker, period, range limits)."""

from __future__ import annotations

import time

from live_relay.messages import NotifyPattern, SubmitHistoricalRequest
from live_relay.topics import TickerError, parse_ticker, valid_id

# Candle periods any exchange might serve, in seconds; 0 means trades. The ingestor of an
# exchange refuses (ERROR end marker) a period its exchange does not have.
SUPPORTED_PERIODS = frozenset(
    {0, 1, 60, 180, 300, 900, 1800, 3600, 7200, 14400, 21600, 28800, 43200, 86400, 259200, 604800}
)
EARLIEST_US = 1_230_768_000_000_000  # 2009-01-01: nothing traded before Bitcoin
MICROS_PER_DAY = 86_400_000_000


class RequestError(ValueError):
    """A request the relay refuses; the message is the reason sent back to the client."""


def validate_submit(req: SubmitHistoricalRequest, max_days: int, now_us: int | None = None) -> None:
    """Raise RequestError with a reason a person can act on, or return when the request is valid."""
    now_us = now_us if now_us is not None else time.time_ns() // 1000
    if not valid_id(req.request_id):
        raise RequestError(f"invalid request_id {req.request_id!r}: 1-128 of [A-Za-z0-9_.-]")
    if req.notify != NotifyPattern.PER_REQUEST and not valid_id(req.client_id):
        raise RequestError(f"invalid client_id {req.client_id!r}: 1-128 of [A-Za-z0-9_.-]")
    try:
        parse_ticker(req.ticker)
    except TickerError as exc:
        raise RequestError(str(exc)) from exc
    if req.period_seconds not in SUPPORTED_PERIODS:
        raise RequestError(
            f"unsupported period_seconds {req.period_seconds}; use 0 (trades) or one of "
            f"{sorted(p for p in SUPPORTED_PERIODS if p)}"
        )
    if req.start_time >= req.end_time:
        raise RequestError(f"start_time {req.start_time} must be before end_time {req.end_time} (µs, half-open)")
    if req.start_time < EARLIEST_US:
        raise RequestError(f"start_time {req.start_time} is before 2009-01-01 (times are µs since the epoch)")
    if req.start_time > now_us:
        raise RequestError(f"start_time {req.start_time} is in the future")
    if req.end_time - req.start_time > max_days * MICROS_PER_DAY:
        raise RequestError(f"range of {(req.end_time - req.start_time) / MICROS_PER_DAY:.1f} days exceeds {max_days}")
