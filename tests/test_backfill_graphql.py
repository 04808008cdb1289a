"""A 30-day × 3-ticker backfill of 1-minute candles, launched through Dagster's GraphQL API as the UI does.

The platform runs as processes (replay server, relay, ingestor, dagster-daemon)
plus `dagster-webserver`. The test registers a third ticker with the
`addDynamicPartition` mutation (the UI's "Add partition"), launches the backfill
with the UI's `launchPartitionBackfill` mutation, polls the backfill until it
is done, then checks the runs, every asset check evaluation, the HistoryReady
notifications and the exact Iceberg rows.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.compute as pc
import pytest
from dagster import DagsterInstance

from live_relay.messages import HistoryReadyNotification, Status
from marketlake.client import MarketlakeClient
from marketlake.kafka_broker import KafkaBroker, free_port, port_open
from marketlake.settings import REPO_ROOT, Settings
from marketlake.storage.iceberg_tables import load_catalog, ohlc_table
from marketlake.supervisor import Service, Supervisor

from .factories import make_settings
from .platform_fixtures import start_platform

UNIVERSE = ["BINANCE:BTC/USDT", "BINANCE:ETH/USDT"]
ADDED = "BINANCE:SOL/USDT"  # listed by the replay server's exchangeInfo (ingestors/binance/config.py)
DAYS = [f"2024-05-{d:02d}" for d in range(1, 31)]
MAY_1, MAY_31 = 1_714_521_600_000_000, 1_717_113_600_000_000
CHECKS = ["completeness", "validity", "freshness", "reconciliation"]
TIMEOUT = 420.0


class GraphQL:
    """The webserver's /graphql endpoint."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/graphql"

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(self.url, json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]


def webserver_ready(port: int) -> bool:
    if not port_open("127.0.0.1", port):
        return False
    try:
        return httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


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
    argv = [str(Path(sys.executable).parent / "dagster-webserver"), "-w", str(REPO_ROOT / "workspace.yaml"),
            "-h", "127.0.0.1", "-p", str(settings.dagster_port)]  # fmt: skip
    webserver = Service("dagster-webserver", argv, lambda: webserver_ready(settings.dagster_port), ready_timeout=180)
    sup.services.append(webserver)
    try:
        sup.start(webserver)
        yield settings, GraphQL(settings.dagster_port)
    finally:
        sup.stop_all()


def wait_for(what: str, condition: Any, timeout: float = TIMEOUT, every: float = 1.0) -> Any:
    """Poll `condition` until it returns something truthy (returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not after {timeout}s"
        time.sleep(every)  # polling a condition with a deadline, not synchronising on time
    return value


ADD_PARTITION = """
mutation Add($repositorySelector: RepositorySelector!, $partitionsDefName: String!, $partitionKey: String!) {
  addDynamicPartition(repositorySelector: $repositorySelector, partitionsDefName: $partitionsDefName,
                      partitionKey: $partitionKey) {
    __typename
    ... on AddDynamicPartitionSuccess { partitionsDefName partitionKey }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}"""

LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
  }
}"""

BACKFILL_STATUS = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill { id status numPartitions }
    ... on PythonError { message }
  }
}"""

BACKFILL_RUNS = """
query Runs($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
  }
}"""

CHECK_EXECUTIONS = """
query Checks($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 50) {
    runId
    status
    evaluation { success description }
  }
}"""

ASSET_KEY = {"path": ["market", "ohlc_1m_daily"]}


@pytest.mark.timeout(TIMEOUT + 180)
def test_ui_backfill_of_30_days_of_1m_candles_for_3_tickers_completes_with_exact_rows_and_passing_checks(
    platform_with_ui: tuple[Settings, GraphQL],
) -> None:
    settings, gql = platform_with_ui
    instance = DagsterInstance.from_config(str(settings.dagster_home))
    try:
        wait_for("universe registered", lambda: set(UNIVERSE) <= set(instance.get_dynamic_partitions("tickers")))
    finally:
        instance.dispose()
    added = gql(ADD_PARTITION, repositorySelector={"repositoryLocationName": "marketlake",
                                                   "repositoryName": "__repository__"},
                partitionsDefName="tickers", partitionKey=ADDED)["addDynamicPartition"]  # fmt: skip
    assert added == {"__typename": "AddDynamicPartitionSuccess", "partitionsDefName": "tickers", "partitionKey": ADDED}

    tickers = [*UNIVERSE, ADDED]
    keys = [f"{day}|{ticker}" for ticker in tickers for day in DAYS]
    with MarketlakeClient(settings) as client:
        client.subscribe("HISTORY_READY:dagster-run-")
        started = time.monotonic()
        launched = gql(LAUNCH_BACKFILL, backfillParams={
            "assetSelection": [ASSET_KEY], "partitionNames": keys, "fromFailure": False, "tags": [],
        })["launchPartitionBackfill"]  # fmt: skip
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        def finished() -> dict[str, Any] | None:
            b = gql(BACKFILL_STATUS, backfillId=backfill_id)["partitionBackfillOrError"]
            return b if b["status"] not in ("REQUESTED", "CANCELING", "FAILING") else None

        backfill = wait_for("backfill finished", finished, every=2.0)
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

    runs = gql(BACKFILL_RUNS, filter={"tags": [{"key": "dagster/backfill", "value": backfill_id}]})["runsOrError"]
    run_ids = {r["runId"] for r in runs["results"]}
    assert [r["status"] for r in runs["results"]] == ["SUCCESS"] * 3  # one run per ticker, not 90

    for check in CHECKS:
        executions = gql(CHECK_EXECUTIONS, assetKey=ASSET_KEY, checkName=check)["assetCheckExecutions"]
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
