"""Benchmark (not a test): request → HistoryReady latency by stage, and 30-day backfill throughput.

Runs the real platform (own Kafka broker, replay server, relay, ingestor, Dagster
daemon) on free ports in a temporary home, and measures in the same run the
baselines: the same exchange fetch alone (latency), and the same fetch written
straight to Parquet (throughput).

    .venv/bin/python -m bench.history [--requests 7] [--days 30] [--write bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ingestors.binance.rest import BinanceRest
from live_relay.messages import OHLC
from marketlake.client import MarketlakeClient
from marketlake.kafka_broker import free_port
from marketlake.settings import Settings
from marketlake.stages import RequestTimes, stage_seconds

from .common import bench_broker, platform_supervisor, write_section

DAY_US = 86_400_000_000
JUN_1 = 1_717_200_000_000_000  # 2024-06-01T00:00:00Z
STAGES = ["relay_ack", "fetch", "sensor_pickup", "run", "notify", "total"]


def bench_settings(home: Path, bootstrap: str) -> Settings:
    ports = {f: free_port() for f in ("client_port", "work_port", "control_port", "xsub_port", "xpub_port", "sim_port")}
    s = Settings(home=home, kafka_bootstrap=bootstrap, relay_metrics_port=0, **ports)  # type: ignore[arg-type]
    s.binance_rest_url = f"http://127.0.0.1:{s.sim_port}"
    return s


def fetch_to_parquet(settings: Settings, start_us: int, end_us: int, path: Path) -> int:
    """Baseline: the same REST fetch, written straight to one Parquet file."""
    rows: list[OHLC] = []
    with BinanceRest(settings.binance_rest_url) as rest:
        for page in rest.iter_klines("BTCUSDT", 60, start_us, end_us):
            rows.extend(page)
    table = pa.table({
        "open_time": [r.open_time for r in rows], "open": [r.open for r in rows], "high": [r.high for r in rows],
        "low": [r.low for r in rows], "close": [r.close for r in rows], "volume": [r.volume for r in rows],
    })  # fmt: skip
    pq.write_table(table, path)
    return len(rows)


def measure(settings: Settings, requests: int, days: int, workdir: Path) -> dict[str, object]:
    # The replay server generates synthetic days on first use (~0.2 s/day) and caches them; warm every
    # range first so the platform and the baselines see the same, exchange-like, answer times.
    fetch_to_parquet(settings, JUN_1 - days * DAY_US, JUN_1 + requests * DAY_US, workdir / "warmup.parquet")
    latencies: list[dict[str, float]] = []
    with MarketlakeClient(settings) as client:
        for i in range(requests):
            start = JUN_1 + i * DAY_US
            t_submit = time.time()
            rid = client.submit("BINANCE:BTC/USDT", 60, start, start + DAY_US).request_id
            t_ack = time.time()
            note = client.wait(rid, 300)
            t_ready = time.time()
            assert note.status == 1 and note.row_count == 1440, note
            latencies.append(stage_seconds(settings, rid, RequestTimes(t_submit, t_ack, t_ready)))
        fetch_only = []
        for i in range(requests):
            t0 = time.perf_counter()
            fetch_to_parquet(settings, JUN_1 + i * DAY_US, JUN_1 + (i + 1) * DAY_US, workdir / f"d{i}.parquet")
            fetch_only.append(time.perf_counter() - t0)
        backfill_start = JUN_1 - days * DAY_US
        t0 = time.perf_counter()
        note = client.history("BINANCE:BTC/USDT", 60, backfill_start, JUN_1, timeout=900)
        backfill_seconds = time.perf_counter() - t0
        assert note.status == 1 and note.row_count == days * 1440, note
    t0 = time.perf_counter()
    parquet_rows = fetch_to_parquet(settings, backfill_start, JUN_1, workdir / "backfill.parquet")
    parquet_seconds = time.perf_counter() - t0
    return {
        "latency": {s: statistics.median(x[s] for x in latencies) for s in STAGES},
        "latency_p90_total": sorted(x["total"] for x in latencies)[int(0.9 * (len(latencies) - 1))],
        "fetch_only_median": statistics.median(fetch_only),
        "backfill_candles": note.row_count,
        "backfill_seconds": backfill_seconds,
        "parquet_candles": parquet_rows,
        "parquet_seconds": parquet_seconds,
        "requests": requests,
        "days": days,
    }


def report(r: dict[str, object]) -> str:
    lat = r["latency"]
    assert isinstance(lat, dict)
    lines = [
        "## Historical request loop (issue 2)",
        "",
        "Command: `.venv/bin/python -m bench.history --write bench/RESULTS.md` (also `make bench`).",
        f"Embedded defaults: own Kafka broker, SQLite Dagster storage and Iceberg catalog; {r['requests']} sequential",
        "requests for one day of 1-minute BINANCE:BTC/USDT from the replay server.",
        "",
        "| stage | median seconds |",
        "| --- | --- |",
        *[f"| {s} | {lat[s]:.3f} |" for s in STAGES],
        f"| total p90 | {r['latency_p90_total']:.3f} |",
        "",
        f"Baseline in the same run: the same fetch alone (REST → Parquet) takes {r['fetch_only_median']:.3f} s median; "
        f"request → HistoryReady is **{lat['total'] / r['fetch_only_median']:.1f}×** that "  # type: ignore[operator]
        f"(the rest is Kafka, Dagster's sensor loop and run launch, the Iceberg commit and the notification).",
        "",
        f"Backfill of {r['days']} days × 1-minute candles in one request: {r['backfill_candles']} candles in "
        f"{r['backfill_seconds']:.1f} s = **{r['backfill_candles'] / r['backfill_seconds']:.0f} candles/s**; "  # type: ignore[operator]
        f"baseline (same fetch written straight to Parquet): {r['parquet_candles']} in {r['parquet_seconds']:.1f} s = "
        f"{r['parquet_candles'] / r['parquet_seconds']:.0f} candles/s; ratio "  # type: ignore[operator]
        f"**{(r['backfill_candles'] / r['backfill_seconds']) / (r['parquet_candles'] / r['parquet_seconds']):.2f}**.",  # type: ignore[operator]
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=7)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--write", type=Path, help="replace this benchmark's section of a results file")
    args = parser.parse_args()
    with bench_broker() as (home, broker):
        settings = bench_settings(home, broker.bootstrap)
        sup = platform_supervisor(settings)
        try:
            sup.start_all()
            result = measure(settings, args.requests, args.days, home)
        finally:
            sup.stop_all()
    text = report(result)
    print(text)
    if args.write:
        write_section(args.write, "## Historical request loop (issue 2)", text)


if __name__ == "__main__":
    main()
