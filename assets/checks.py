"""Asset checks of the partitioned assets: completeness, validity, freshness, reconciliation (candles).

One multi-check op per asset reads the rows once and evaluates every selected
check (rules: marketlake/storage/quality.py). Its scope is the run's partitions,
so a backfill, schedule or repair run checks what it wrote; a run of the checks
alone, from the UI, checks every materialised partition of the asset. A failed
completeness check names each missing range in its metadata and records it in
`market.gaps`, where the gap repair sensor finds it.

Reconciliation compares candles with candles built from `market.trades` where
both exist; with no trades in the scope it passes and says that nothing was compared.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    multi_asset_check,
)
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import And, BooleanExpression, EqualTo, GreaterThanOrEqual, LessThan, Reference
from pyiceberg.expressions.literals import literal

from assets.partitions import TRADES, Window, asset_key_for, plan_windows
from live_relay.topics import parse_ticker
from marketlake.settings import Settings
from marketlake.storage import gaps, quality
from marketlake.storage.iceberg_tables import ohlc_table, trades_table
from resources.iceberg import IcebergResource

COMPLETENESS, VALIDITY, FRESHNESS, RECONCILIATION = "completeness", "validity", "freshness", "reconciliation"
CANDLE_COLUMNS = ("ticker", "period_seconds", "open_time", "open", "high", "low", "close", "volume", "trade_count")
TRADE_COLUMNS = ("ticker", "trade_id", "first_trade_id", "last_trade_id", "price", "size", "exchange_time_ns",
                 "trade_time")  # fmt: skip
SHOWN = 50  # ranges / violations listed in metadata


def _between(ticker: str, column: str, window: Window) -> BooleanExpression:
    return And(EqualTo(term=Reference("ticker"), value=literal(ticker)),
               And(GreaterThanOrEqual(term=Reference(column), value=literal(window.start_us)),
                   LessThan(term=Reference(column), value=literal(window.end_us))))  # fmt: skip


def read_candles(catalog: SqlCatalog, period_seconds: int, window: Window) -> pa.Table:
    where = And(EqualTo(term=Reference("period_seconds"), value=literal(period_seconds)),
                _between(window.ticker, "open_time", window))  # fmt: skip
    return ohlc_table(catalog).scan(row_filter=where, selected_fields=CANDLE_COLUMNS).to_arrow()


def read_trades(catalog: SqlCatalog, window: Window) -> pa.Table:
    return trades_table(catalog).scan(row_filter=_between(window.ticker, "trade_time", window),
                                      selected_fields=TRADE_COLUMNS).to_arrow()  # fmt: skip


def _micros(column: pa.ChunkedArray) -> list[int]:
    return pc.cast(column, pa.int64()).to_pylist()


@dataclass
class Findings:
    """What the checks found over every window of their scope."""

    windows: list[Window]
    missing: list[tuple[str, quality.TimeRange, int]] = field(default_factory=list)  # ticker, range, rows
    violations: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    newest: dict[str, str] = field(default_factory=dict)
    compared: int = 0
    mismatches: list[str] = field(default_factory=list)
    rows: int = 0


def _examine_trades(found: Findings, w: Window, trades: pa.Table, facts: quality.ExchangeFacts) -> int | None:
    """Validity and id contiguity of one window's trades; returns the newest trade time."""
    times = _micros(trades["trade_time"])
    found.rows += trades.num_rows
    found.violations += quality.trade_violations(trades)
    if facts.contiguous_trade_ids and trades.num_rows:
        order = sorted(zip((int(i) for i in trades["trade_id"].to_pylist()), times, strict=True))
        found.missing += [(w.ticker, r, 0) for r in quality.trade_id_gaps([i for i, _ in order], [t for _, t in order])]
    return max(times, default=None)


def _examine_candles(found: Findings, w: Window, candles: pa.Table, trades: pa.Table | None, period_seconds: int,
                     facts: quality.ExchangeFacts, now_us: int) -> int | None:  # fmt: skip
    """Validity, completeness and (with trades) reconciliation of one window's candles; returns the newest close."""
    step = period_seconds * 1_000_000
    opens = _micros(candles["open_time"])
    found.rows += candles.num_rows
    found.violations += quality.candle_violations(candles)
    traded = {t // step * step for t in _micros(trades["trade_time"])} if trades is not None else set()
    holes = quality.missing_candles(opens, w.range, step, now_us, facts, traded)
    found.missing += [(w.ticker, r, (r.end_us - r.start_us) // step) for r in holes]
    if trades is not None:
        result = quality.reconcile(candles, trades, period_seconds)
        found.compared += result.compared
        found.mismatches += [f"{w.ticker} {m}" for m in result.mismatches]
    return None if not opens else max(opens) + step  # a candle covers up to its close


def examine(catalog: SqlCatalog, settings: Settings, period_seconds: int, windows: list[Window], now_us: int,
            reconcile: bool) -> Findings:  # fmt: skip
    """Read each window once and apply every rule to it."""
    found = Findings(windows)
    for w in windows:
        facts = quality.facts_for(parse_ticker(w.ticker).exchange)
        if period_seconds == TRADES:
            newest = _examine_trades(found, w, read_trades(catalog, w), facts)
        else:
            # Trades are read to reconcile, or to know which candles an exchange that omits empty ones owes us.
            trades = read_trades(catalog, w) if reconcile or not facts.emits_empty_candles else None
            newest = _examine_candles(found, w, read_candles(catalog, period_seconds, w), trades, period_seconds,
                                      facts, now_us)  # fmt: skip
        found.newest[w.ticker] = quality.iso(newest) if newest is not None else "none"
        if not quality.is_fresh(newest, w.range, now_us, settings.freshness_max_lag_seconds * 1_000_000):
            found.stale.append(f"{w}: newest {found.newest[w.ticker]}")
    return found


def record_missing(catalog: SqlCatalog, period_seconds: int, found: Findings, run_id: str, now_us: int) -> list[str]:
    """Record each missing range (cut at midnights: one partition each) in market.gaps; their gap ids."""
    new = [
        gaps.Gap(gap_id=gaps.new_gap_id(), ticker=ticker, exchange=parse_ticker(ticker).exchange,
                 data_type="trades" if period_seconds == TRADES else "ohlc", period_seconds=period_seconds,
                 gap_start=part.start_us, gap_end=part.end_us, detected_at=now_us,
                 detected_by=gaps.COMPLETENESS_CHECK, detection_run_id=run_id,
                 missing_count=(part.end_us - part.start_us) // (period_seconds * 1_000_000) if period_seconds else None)
        for ticker, r, _ in found.missing
        for part in quality.split_at_days([r])
    ]  # fmt: skip
    return [g.gap_id for g in gaps.record_gaps(catalog, new)]


def results(found: Findings, gap_ids: list[str], period_seconds: int) -> dict[str, AssetCheckResult]:
    scope = MetadataValue.json([str(w) for w in found.windows[:SHOWN]])
    missing = [f"{t} {r}" for t, r, _ in found.missing]
    unit = "trades" if period_seconds == TRADES else "candles"
    return {
        COMPLETENESS: AssetCheckResult(
            check_name=COMPLETENESS, passed=not missing,
            description=f"missing {unit}: {'; '.join(missing[:5])}" if missing else f"no missing {unit}",
            metadata={"missing_ranges": MetadataValue.json(missing[:SHOWN]), "missing_range_count": len(missing),
                      "missing_rows": sum(n for _, _, n in found.missing), "gap_ids": MetadataValue.json(gap_ids),
                      "scope": scope, "rows": found.rows}),
        VALIDITY: AssetCheckResult(
            check_name=VALIDITY, passed=not found.violations,
            description="; ".join(found.violations[:3]) or "every row valid",
            metadata={"violations": MetadataValue.json(found.violations[:SHOWN]), "scope": scope}),
        FRESHNESS: AssetCheckResult(
            check_name=FRESHNESS, passed=not found.stale, severity=AssetCheckSeverity.WARN,
            description="; ".join(found.stale[:3]) or "every window reaches its end (or now)",
            metadata={"newest": MetadataValue.json(found.newest), "stale": MetadataValue.json(found.stale[:SHOWN])}),
        RECONCILIATION: AssetCheckResult(
            check_name=RECONCILIATION, passed=not found.mismatches,
            description=("; ".join(found.mismatches[:3]) if found.mismatches else
                         f"{found.compared} candles match the candles built from market.trades" if found.compared
                         else "no trades in market.trades for this scope: nothing to reconcile"),
            metadata={"compared": found.compared, "mismatches": MetadataValue.json(found.mismatches[:SHOWN])}),
    }  # fmt: skip


def build_checks(settings: Settings, period_seconds: int) -> AssetChecksDefinition:
    """The checks of one partitioned asset (candles of a period, or trades)."""
    key = asset_key_for(period_seconds)
    names = [COMPLETENESS, VALIDITY, FRESHNESS] + ([] if period_seconds == TRADES else [RECONCILIATION])
    about = {
        COMPLETENESS: "Every expected candle (or trade id) is present; missing ranges go to market.gaps.",
        VALIDITY: "high >= max(open, close), low <= min(open, close), volume >= 0, no duplicate keys.",
        FRESHNESS: "The newest row reaches min(partition end, now) within MARKETLAKE_FRESHNESS_MAX_LAG_SECONDS.",
        RECONCILIATION: "Candles match candles built from market.trades wherever both exist.",
    }

    @multi_asset_check(
        specs=[AssetCheckSpec(n, asset=key, description=about[n]) for n in names],
        name=f"{key.to_python_identifier()}_checks",
        can_subset=True,
    )
    def checks(context: AssetCheckExecutionContext, iceberg: IcebergResource) -> Iterator[AssetCheckResult]:
        op = context.op_execution_context
        keys = op.partition_keys if op.has_partition_key or op.has_partition_key_range else \
            sorted(context.instance.get_materialized_partitions(key))  # fmt: skip
        windows = plan_windows(keys)
        selected = {k.name for k in context.selected_asset_check_keys}
        catalog = iceberg.catalog()
        now_us = quality.now_us()
        found = examine(catalog, settings, period_seconds, windows, now_us, RECONCILIATION in selected)
        gap_ids = record_missing(catalog, period_seconds, found, op.run_id, now_us) \
            if COMPLETENESS in selected else []  # fmt: skip
        context.log.info(f"{key.to_user_string()}: {len(windows)} windows, {found.rows} rows, "
                         f"{len(found.missing)} missing ranges, {len(found.violations)} violations")
        for name, result in results(found, gap_ids, period_seconds).items():
            if name in selected:
                yield result

    return checks
