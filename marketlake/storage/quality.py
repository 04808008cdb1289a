"""The data-quality rules of the asset checks, as pure functions over rows (no catalog, no Dagster).

- completeness: which candles (or trades) should exist and do not, as time ranges;
  what "should exist" depends on the exchange (`EXCHANGE_FACTS`);
- validity: high >= max(open, close), low <= min(open, close), volume >= 0, no
  duplicate keys (trades: price > 0, size >= 0, no duplicate trade ids);
- freshness: the newest row reaches min(window end, now) within a tolerance;
- reconciliation: candles built from `market.trades` against exchange klines.

Validity and reconciliation are SQL over Arrow in an in-memory DuckDB: the decimal
columns compare exactly there.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class ExchangeFacts:
    """What an exchange's history looks like when nothing is missing."""

    emits_empty_candles: bool  # a candle for every period, zero volume when nothing traded
    contiguous_trade_ids: bool  # the trade ids we store (e.g. aggregate trade ids) increase by exactly one
    reference: str


EXCHANGE_FACTS: dict[str, ExchangeFacts] = {
    "BINANCE": ExchangeFacts(
        emits_empty_candles=True, contiguous_trade_ids=True,
        reference="https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints "
                  "(klines: one per interval since listing; aggTrades ids are sequential)",
    ),
    "COINBASE": ExchangeFacts(
        emits_empty_candles=False, contiguous_trade_ids=False,
        reference="https://docs.cdp.coinbase.com/exchange/reference/exchangerestapi_getproductcandles "
                  "(no data point for a bucket without trades)",
    ),
}  # fmt: skip
# An exchange without an entry: nothing is assumed, so only candles of periods that have trades are expected.
UNKNOWN_EXCHANGE = ExchangeFacts(emits_empty_candles=False, contiguous_trade_ids=False, reference="no entry")


def facts_for(exchange: str) -> ExchangeFacts:
    return EXCHANGE_FACTS.get(exchange, UNKNOWN_EXCHANGE)


def now_us() -> int:
    return time.time_ns() // 1000


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True, order=True)
class TimeRange:
    """A half-open range of µs since the epoch, [start_us, end_us)."""

    start_us: int
    end_us: int

    def __str__(self) -> str:
        return f"[{iso(self.start_us)}, {iso(self.end_us)})"


def runs_of_missing(present: Iterable[int], expected: Iterable[int], step_us: int) -> list[TimeRange]:
    """Expected grid points not present, merged into ranges of consecutive points."""
    have = set(present)
    ranges: list[TimeRange] = []
    for t in sorted(set(expected) - have):
        if ranges and ranges[-1].end_us == t:
            ranges[-1] = TimeRange(ranges[-1].start_us, t + step_us)
        else:
            ranges.append(TimeRange(t, t + step_us))
    return ranges


def completeness_end(window: TimeRange, period_us: int, now_us: int, newest_open_us: int | None) -> int:
    """Where completeness stops looking: the window's end once it has closed; inside the window that holds
    now, the newest candle present (what lies after it is freshness's concern)."""
    if window.end_us <= now_us // period_us * period_us:
        return window.end_us
    return window.start_us if newest_open_us is None else min(window.end_us, newest_open_us + period_us)


def missing_candles(
    open_times: Sequence[int], window: TimeRange, period_us: int, now_us: int, facts: ExchangeFacts,
    traded_periods: Iterable[int] = (),
) -> list[TimeRange]:
    """Missing candles of one ticker and period in `window`: every period of the grid where the exchange emits
    empty candles, else only periods that have trades (`traded_periods`: their open times)."""
    end = completeness_end(window, period_us, now_us, max(open_times, default=None))
    if facts.emits_empty_candles:
        expected: Iterable[int] = range(window.start_us, end, period_us)
    else:
        expected = (t for t in traded_periods if window.start_us <= t < end)
    return runs_of_missing(open_times, expected, period_us)


def trade_id_gaps(ids: Sequence[int], times_us: Sequence[int]) -> list[TimeRange]:
    """Where consecutive trade ids jump (ids sorted, times aligned): the range between the two trades
    around the hole, [time of the one before, time of the one after + 1 µs)."""
    return [
        TimeRange(times_us[i - 1], times_us[i] + 1)
        for i in range(1, len(ids))
        if ids[i] - ids[i - 1] > 1
    ]


def split_at_days(ranges: Iterable[TimeRange]) -> list[TimeRange]:
    """Cut ranges at UTC midnights, so each lies in one daily partition."""
    out: list[TimeRange] = []
    for r in ranges:
        start = r.start_us
        while start < r.end_us:
            end = min(r.end_us, (start // DAY_US + 1) * DAY_US)
            out.append(TimeRange(start, end))
            start = end
    return out


def _rows(sql: str, **tables: pa.Table) -> list[tuple]:
    with duckdb.connect() as con:
        for name, table in tables.items():
            con.register(name, table)
        return con.execute(sql).fetchall()


def candle_violations(candles: pa.Table, limit: int = 20) -> list[str]:
    """Rule breaks in candles (columns ticker, period_seconds, open_time, open, high, low, close, volume)."""
    rows = _rows(f"""
        SELECT ticker, period_seconds, epoch_us(open_time) AS t,
               concat_ws(', ',
                   CASE WHEN high < greatest(open, close) THEN 'high ' || high || ' < max(open, close)' END,
                   CASE WHEN low > least(open, close) THEN 'low ' || low || ' > min(open, close)' END,
                   CASE WHEN volume < 0 THEN 'volume ' || volume || ' < 0' END) AS why
        FROM candles WHERE high < greatest(open, close) OR low > least(open, close) OR volume < 0
        UNION ALL
        SELECT ticker, period_seconds, epoch_us(open_time), 'appears ' || count(*) || ' times'
        FROM candles GROUP BY ALL HAVING count(*) > 1
        ORDER BY t LIMIT {int(limit)}""", candles=candles)  # fmt: skip
    return [f"{ticker} {period}s candle {iso(t)}: {why}" for ticker, period, t, why in rows]


def trade_violations(trades: pa.Table, limit: int = 20) -> list[str]:
    """Rule breaks in trades (columns ticker, trade_id, trade_time, price, size)."""
    rows = _rows(f"""
        SELECT ticker, trade_id, epoch_us(trade_time) AS t,
               concat_ws(', ', CASE WHEN price <= 0 THEN 'price ' || price || ' <= 0' END,
                               CASE WHEN size < 0 THEN 'size ' || size || ' < 0' END) AS why
        FROM trades WHERE price <= 0 OR size < 0
        UNION ALL
        SELECT ticker, trade_id, min(epoch_us(trade_time)), 'appears ' || count(*) || ' times'
        FROM trades GROUP BY ticker, trade_id HAVING count(*) > 1
        ORDER BY t LIMIT {int(limit)}""", trades=trades)  # fmt: skip
    return [f"{ticker} trade {trade_id} at {iso(t)}: {why}" for ticker, trade_id, t, why in rows]


def is_fresh(newest_us: int | None, window: TimeRange, now_us: int, max_lag_us: int) -> bool:
    """The newest row reaches min(window end, now) minus the tolerated lag."""
    return newest_us is not None and newest_us >= min(window.end_us, now_us) - max_lag_us


@dataclass(frozen=True, slots=True)
class Reconciliation:
    compared: int  # candles that have both a kline and trades
    mismatches: list[str]  # the first few, each naming the candle and the field that differs


def reconcile(klines: pa.Table, trades: pa.Table, period_seconds: int, limit: int = 20) -> Reconciliation:
    """Candles built from trades (open/close by exchange time then trade id; trade count from aggregate
    trades' first..last ids) against the klines of the same periods. A kline with volume but no trade in
    a day that has trades is a mismatch too."""
    if trades.num_rows == 0 or klines.num_rows == 0:
        return Reconciliation(0, [])
    p = int(period_seconds) * 1_000_000
    built = f"""
        SELECT epoch_us(trade_time) // {p} * {p} AS t,
               first(price ORDER BY exchange_time_ns, try_cast(trade_id AS BIGINT), trade_id) AS open,
               max(price) AS high, min(price) AS low,
               last(price ORDER BY exchange_time_ns, try_cast(trade_id AS BIGINT), trade_id) AS close,
               sum(size) AS volume,
               sum(coalesce(try_cast(last_trade_id AS BIGINT) - try_cast(first_trade_id AS BIGINT) + 1, 1)) AS n
        FROM trades GROUP BY 1"""
    rows = _rows(f"""
        WITH b AS ({built}), k AS (SELECT epoch_us(open_time) AS t, * FROM klines),
             days AS (SELECT DISTINCT t // {DAY_US} AS d FROM b)
        SELECT k.t, b.t IS NOT NULL AS both_exist,
               concat_ws(', ',
                   CASE WHEN b.t IS NULL THEN 'kline volume ' || k.volume || ' but no trades' END,
                   CASE WHEN k.open <> b.open THEN 'open ' || k.open || ' vs ' || b.open END,
                   CASE WHEN k.high <> b.high THEN 'high ' || k.high || ' vs ' || b.high END,
                   CASE WHEN k.low <> b.low THEN 'low ' || k.low || ' vs ' || b.low END,
                   CASE WHEN k.close <> b.close THEN 'close ' || k.close || ' vs ' || b.close END,
                   CASE WHEN k.volume <> b.volume THEN 'volume ' || k.volume || ' vs ' || b.volume END,
                   CASE WHEN k.trade_count IS NOT NULL AND k.trade_count <> b.n
                        THEN 'trades ' || k.trade_count || ' vs ' || b.n END) AS why
        FROM k LEFT JOIN b USING (t)
        WHERE b.t IS NOT NULL OR (k.volume > 0 AND k.t // {DAY_US} IN (SELECT d FROM days))
        ORDER BY k.t""", klines=klines, trades=trades)  # fmt: skip
    compared = sum(1 for _, both, _ in rows if both)
    bad = [f"candle {iso(t)}: {why} (kline vs trades)" for t, _, why in rows if why]
    return Reconciliation(compared, bad[:limit])
