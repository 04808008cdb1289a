"""A 30-day × 3-ticker backfill of 1-minute candles, launched through Dagster's GraphQL API as the UI does.

The platform runs as processes (replay server, relay, ingestor, dagster-daemon)
plus `dagster-webserver`. The test registers a third ticker with the
`addDynamicPartition` mutation (the UI's "Add partition"), launches the backfill
with the UI's `launchPartitionBackfill` mutation, polls the backfill until it
is done, then checks the runs, every asset check evaluation, the HistoryReady
notifications and the exact Iceberg rows.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pyarrow.compute as pc
import pytest
from dagster import DagsterInstance

from live_relay.messages import HistoryReadyNotification, Status
from marketlake.client import MarketlakeClient
from marketlake.dagster_ui import GraphQL, wait_for, webserver_service
from marketlake.kafka_broker import KafkaBroker, free_port
from marketlake.settings import Settings
from marketlake.storage.iceberg_tables import load_catalog, ohlc_table
from marketlake.supervisor import Supervisor

from .factories import make_settings
from .platform_fixtures import start_platform

UNIVERSE = ["BINANCE:BTC/USDT", "BINANCE:ETH/USDT"]
ADDED = "BINANCE:SOL/USDT"  # listed by the replay server's exchangeInfo (ingestors/binance/config.py)
DAYS = [f"2024-05-{d:02d}" for d in range(1, 31)]
MAY_1, MAY_31 = 1_714_521_600_000_000, 1_717_113_600_000_000
CHECKS = ["completeness", "validity", "freshness", "reconciliation"]
TIMEOUT = 420.0
ASSET_PATH = ["market", "ohlc_1m_daily"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def platform_with_ui(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, kafka_broker: KafkaBroker
) -> Iterator[tuple[Settings, GraphQL]]:
    """Embedded defaults, and the production configuration: Dagster storage and Iceberg catalog in Postgres."""
    postgres_url = ""
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        db = f"backfill_{uuid.uuid4().hex[:10]}"
        server.create_database(db)
        postgres_url = server.url(db)
    settings = make_settings(tmp_path_factory.mktemp("backfill"), kafka_broker.bootstrap, relay_metrics_port=free_port(),
                             dagster_port=free_port(), universe=UNIVERSE, postgres_url=postgres_url)  # fmt: skip
    sup: Supervisor = start_platform(settings)
    webserver = webserver_service(settings)
    sup.services.append(webserver)
    try:
        sup.start(webserver)
        yield settings, GraphQL(settings.dagster_port)
    finally:
        sup.stop_all()


@pytest.mark.timeout(TIMEOUT + 180)
def test_ui_backfill_of_30_days_of_1m_candles_for_3_tickers_completes_with_exact_rows_and_passing_checks(
    platform_with_ui: tuple[Settings, GraphQL],
) -> None:
    settings, gql = platform_with_ui
    instance = DagsterInstance.from_config(str(settings.dagster_home))
    try:
        wait_for("universe registered", lambda: set(UNIVERSE) <= set(instance.get_dynamic_partitions("tickers")), TIMEOUT)
    finally:
        instance.dispose()
    added = gql.add_partition("tickers", ADDED)
    assert added == {"__typename": "AddDynamicPartitionSuccess", "partitionsDefName": "tickers", "partitionKey": ADDED}

    tickers = [*UNIVERSE, ADDED]
    keys = [f"{day}|{ticker}" for ticker in tickers for day in DAYS]
    with MarketlakeClient(settings) as client:
        client.subscribe("HISTORY_READY:dagster-run-")
        started = time.monotonic()
        backfill_id = gql.launch_backfill(ASSET_PATH, keys)
        backfill = gql.wait_backfill(backfill_id, TIMEOUT)
        elapsed = time.monotonic() - started
        notes: list[HistoryReadyNotification] = []
        for _, msg in client.stream(["HISTORY_READY:dagster-run-"], timeout=10):
            assert isinstance(msg, HistoryReadyNotification)
            notes.append(msg)
            if len(notes) == len(tickers):
                break
    print(f"backfill of {len(keys)} partitions: {elapsed:.1f}s")
    assert backfill["status"] in ("COMPLETED_SUCCESS", "COMPLETED"), backfill
    assert backfill["numPartitions"] == 90

    runs = gql.backfill_runs(backfill_id)
    run_ids = {r["runId"] for r in runs}
    assert [r["status"] for r in runs] == ["SUCCESS"] * 3  # one run per ticker, not 90

    for check in CHECKS:
        executions = gql.check_executions(ASSET_PATH, check)
        mine = [e for e in executions if e["runId"] in run_ids]
        assert len(mine) == 3, (check, executions)
        assert all(e["status"] == "SUCCEEDED" and e["evaluation"]["success"] for e in mine), (check, mine)

    assert sorted(n.ticker for n in notes) == sorted(tickers)
    assert all(n.status == Status.OK and n.row_count == 30 * 1440 and n.table == "market.ohlc" for n in notes), notes
    assert all((n.start_time, n.end_time) == (MAY_1, MAY_31) for n in notes)

    rows = ohlc_table(load_catalog(settings)).scan(row_filter="period_seconds == 60").to_arrow()
    times = pc.cast(rows["open_time"], "int64")
    rows = rows.filter(pc.and_(pc.greater_equal(times, MAY_1), pc.less(times, MAY_31)))
    per_ticker = Counter(rows["ticker"].to_pylist())
    assert per_ticker == {t: 30 * 1440 for t in tickers}
    keys_seen = Counter(zip(rows["ticker"].to_pylist(), pc.cast(rows["open_time"], "int64").to_pylist(), strict=True))
    assert max(keys_seen.values()) == 1, "duplicate candles"
    assert set(rows["source"].to_pylist()) == {"rest"}
