"""Parsing user-facing times into µs since the epoch, UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time_us(text: str) -> int:
    """Accept ISO dates/datetimes (UTC unless an offset is given) or integer µs."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"cannot read time {text!r}: use 2024-08-01, 2024-08-01T12:00 or µs since the epoch") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1_000_000)


def format_us(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
