"""Talking to the Dagster webserver the way its UI does: the /graphql API, for tests and benchmarks.

The UI's "Add partition" is the `addDynamicPartition` mutation and its "Launch
backfill" is `launchPartitionBackfill`; both are sent here verbatim, so a test or
benchmark that uses this module exercises the same path as a user in the UI.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from marketlake.kafka_broker import port_open
from marketlake.settings import REPO_ROOT, Settings
from marketlake.supervisor import Service

__all__ = ["GraphQL", "GraphQLError", "webserver_service", "wait_for"]

REPOSITORY = {"repositoryLocationName": "marketlake", "repositoryName": "__repository__"}

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

BACKFILL_RUNNING = ("REQUESTED", "CANCELING", "FAILING")


class GraphQLError(RuntimeError):
    """The webserver answered with GraphQL errors or a failure union member."""


class GraphQL:
    """The webserver's /graphql endpoint."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/graphql"

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(self.url, json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(str(body["errors"]))
        data: dict[str, Any] = body["data"]
        return data

    def add_partition(self, partitions_def: str, key: str) -> dict[str, Any]:
        out: dict[str, Any] = self(ADD_PARTITION, repositorySelector=REPOSITORY, partitionsDefName=partitions_def,
                                   partitionKey=key)["addDynamicPartition"]  # fmt: skip
        return out

    def launch_backfill(self, asset_path: list[str], partition_keys: list[str]) -> str:
        """Launch a backfill of one asset over `partition_keys`; its id."""
        launched = self(LAUNCH_BACKFILL, backfillParams={
            "assetSelection": [{"path": asset_path}], "partitionNames": partition_keys, "fromFailure": False, "tags": [],
        })["launchPartitionBackfill"]  # fmt: skip
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(f"launchPartitionBackfill: {launched}")
        backfill_id: str = launched["backfillId"]
        return backfill_id

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self(BACKFILL_STATUS, backfillId=backfill_id)["partitionBackfillOrError"]
        return out

    def wait_backfill(self, backfill_id: str, timeout: float) -> dict[str, Any]:
        """Poll the backfill until it is no longer running; its final state."""
        return wait_for(f"backfill {backfill_id}",
                        lambda: (b := self.backfill(backfill_id)) and (b if b["status"] not in BACKFILL_RUNNING else None),
                        timeout, every=2.0)  # fmt: skip

    def backfill_runs(self, backfill_id: str) -> list[dict[str, Any]]:
        runs = self(BACKFILL_RUNS, filter={"tags": [{"key": "dagster/backfill", "value": backfill_id}]})["runsOrError"]
        results: list[dict[str, Any]] = runs["results"]
        return results

    def check_executions(self, asset_path: list[str], check: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self(CHECK_EXECUTIONS, assetKey={"path": asset_path}, checkName=check)[
            "assetCheckExecutions"
        ]
        return out


def wait_for(what: str, condition: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    """Poll `condition` until it returns something truthy (returned); TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not after {timeout}s")
        time.sleep(every)  # polling a condition with a deadline, not synchronising on time
    return value


def webserver_ready(port: int) -> bool:
    if not port_open("127.0.0.1", port):
        return False
    try:
        return httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def webserver_service(settings: Settings) -> Service:
    """`dagster-webserver` on settings.dagster_port over the project's workspace (the UI, without `dagster dev`)."""
    argv = [str(Path(sys.executable).parent / "dagster-webserver"), "-w", str(REPO_ROOT / "workspace.yaml"),
            "-h", "127.0.0.1", "-p", str(settings.dagster_port)]  # fmt: skip
    return Service("dagster-webserver", argv, lambda: webserver_ready(settings.dagster_port), ready_timeout=180)
