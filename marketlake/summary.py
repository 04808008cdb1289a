"""A short summary of the rows a HistoryReady points at, read with DuckDB from Iceberg."""

from __future__ import annotations

from typing import Any

from live_relay.messages import HistoryReadyNotification
from marketlake.settings import Settings


def summary_sql(note: HistoryReadyNotification) -> str:
    ticker = note.ticker.replace("'", "''")
    # epoch_us keeps the comparison in UTC µs, whatever DuckDB's session time zone is.
    window = f"ticker = '{ticker}' AND epoch_us({{col}}) >= {note.start_time} AND epoch_us({{col}}) < {note.end_time}"
    if note.period_seconds:
        where = window.format(col="open_time") + f" AND period_seconds = {note.period_seconds}"
        return f"""
            SELECT count(*) AS rows, count(DISTINCT open_time) AS distinct_open_times,
                   min(open_time) AS first_open_time, max(open_time) AS last_open_time,
                   arg_min(open, open_time) AS open, max(high) AS high, min(low) AS low,
                   arg_max(close, open_time) AS close, sum(volume) AS volume, sum(trade_count) AS trades
            FROM market.ohlc WHERE {where}"""
    where = window.format(col="trade_time")
    return f"""
        SELECT count(*) AS rows, count(DISTINCT trade_id) AS distinct_trade_ids,
               min(trade_time) AS first_trade_time, max(trade_time) AS last_trade_time,
               min(price) AS low, max(price) AS high, sum(size) AS volume
        FROM market.trades WHERE {where}"""


def summarize(settings: Settings, note: HistoryReadyNotification) -> dict[str, Any]:
    from marketlake.sql import run_query

    table = run_query(settings, summary_sql(note))
    row = table.to_pylist()[0]
    return {"ticker": note.ticker, "period_seconds": note.period_seconds, **row}
