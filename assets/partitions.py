"""The ticker × day partitions of the platform's assets, and how a set of partitions becomes fetch windows.

Dates are daily partitions since 2024-01-01 (today's included: the hourly
schedule keeps it current); tickers are dynamic partitions, registered from the
configured universe by the `ticker_universe_sensor` or added from the UI. Pure
functions only: the run bodies (assets/backfill.py) and the checks
(assets/checks.py) share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

from live_relay.topics import parse_ticker
from marketlake.storage.quality import DAY_US, TimeRange

TICKERS = DynamicPartitionsDefinition(name="tickers")
FIRST_DAY = "2024-01-01"
DAYS = DailyPartitionsDefinition(start_date=FIRST_DAY, end_offset=1, timezone="UTC")  # end_offset=1: today too
PARTITIONS = MultiPartitionsDefinition({"date": DAYS, "ticker": TICKERS})

CANDLE_PERIODS: dict[int, str] = {60: "1m", 3600: "1h"}
TRADES = 0  # period 0 means trades, as in the protocol
FOREVER_US = 1 << 62


class TickerPartitionError(ValueError):
    """A ticker that cannot be a partition key."""


def check_ticker(ticker: str) -> str:
    """A valid EXCHANGE:BASE/QUOTE ticker (so it is also a valid partition key: no '|' or ',')."""
    try:
        parse_ticker(ticker)
    except ValueError as exc:
        raise TickerPartitionError(f"ticker {ticker!r} cannot be a partition: {exc}") from exc
    return ticker


def asset_key_for(period_seconds: int) -> AssetKey:
    """market/ohlc_1m_daily, market/ohlc_1h_daily, market/trades_daily."""
    if period_seconds == TRADES:
        return AssetKey(["market", "trades_daily"])
    return AssetKey(["market", f"ohlc_{CANDLE_PERIODS[period_seconds]}_daily"])


def period_of(asset_key: AssetKey) -> int:
    """The inverse of asset_key_for (KeyError for an asset that is not one of ours)."""
    return {asset_key_for(p): p for p in (TRADES, *CANDLE_PERIODS)}[asset_key]


def partition_key(day: str, ticker: str) -> str:
    return MultiPartitionKey({"date": day, "ticker": ticker})


def split_partition_key(key: str) -> tuple[str, str]:
    """'2024-03-01|BINANCE:BTC/USDT' -> ('2024-03-01', 'BINANCE:BTC/USDT')."""
    dims = PARTITIONS.get_partition_key_from_str(key).keys_by_dimension
    return dims["date"], dims["ticker"]


def day_start_us(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * 1_000_000


def day_of(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).date().isoformat()


@dataclass(frozen=True, slots=True)
class Window:
    """A ticker and a half-open µs range: one batch to fetch, or one range to check."""

    ticker: str
    start_us: int
    end_us: int

    @property
    def range(self) -> TimeRange:
        return TimeRange(self.start_us, self.end_us)

    def __str__(self) -> str:
        return f"{self.ticker} {self.range}"


def fetchable_end(end_us: int, period_seconds: int, now_us: int) -> int:
    """Only closed candles (and trades up to now) exist: cut a window that reaches into the present."""
    step = period_seconds * 1_000_000 if period_seconds else 1000
    return min(end_us, now_us // step * step)


def plan_windows(
    keys: Iterable[str], period_seconds: int = TRADES, now_us: int = FOREVER_US, max_days: int = 1 << 30
) -> list[Window]:
    """Partition keys -> per ticker, runs of consecutive days (at most `max_days` each), cut at now."""
    days_by_ticker: dict[str, set[str]] = {}
    for key in keys:
        day, ticker = split_partition_key(key)
        days_by_ticker.setdefault(ticker, set()).add(day)
    windows: list[Window] = []
    for ticker in sorted(days_by_ticker):
        run: list[int] = []
        for start in [*sorted(day_start_us(d) for d in days_by_ticker[ticker]), -1]:  # -1 flushes the last run
            if run and (start != run[-1] + DAY_US or len(run) == max_days):
                end = fetchable_end(run[-1] + DAY_US, period_seconds, now_us)
                if end > run[0]:
                    windows.append(Window(ticker, run[0], end))
                run = []
            run.append(start)
    return windows


class RepairRangeError(ValueError):
    """A repair range that is empty or not inside the run's one partition."""


def repair_window(keys: Sequence[str], start_us: int, end_us: int) -> Window:
    """The window of a repair run: [start_us, end_us), which must lie inside the run's one partition."""
    if len(keys) != 1:
        raise RepairRangeError(f"a repair run covers one partition, this one covers {len(keys)}")
    day, ticker = split_partition_key(keys[0])
    start = day_start_us(day)
    if not start <= start_us < end_us <= start + DAY_US:
        raise RepairRangeError(f"repair range [{start_us}, {end_us}) is not inside partition {keys[0]}")
    return Window(ticker, start_us, end_us)
