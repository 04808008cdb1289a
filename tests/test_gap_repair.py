"""Gap detection and repair, in-process against the real things.

Real Kafka (session broker), the Binance replay server and a relay in threads, a
SQLite Iceberg catalog, and a Dagster instance; the jobs run with
`execute_in_process` and the repair sensor is evaluated with `build_sensor_context`.
A range of candles is deleted from Iceberg, the completeness check fails naming
it and records it in market.gaps, the sensor's repair run refetches exactly that
range (source "repair"), the gap is marked repaired and the check passes again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pyarrow.compute as pc
import pytest
from dagster import (
    AssetCheckEvaluation,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    RunRequest,
    SensorResult,
    build_sensor_context,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan
from pyiceberg.expressions.literals import literal

from assets.partitions import asset_key_for, partition_key
from ingestors.binance.replay import ReplayServer
from live_relay.messages import HistoryReadyNotification, Status
from live_relay.relay import Relay
from marketlake.client import MarketlakeClient
from marketlake.settings import Settings
from marketlake.storage import gaps
from marketlake.storage.iceberg_tables import load_catalog, ohlc_table
from orchestration.definitions import build_definitions
from orchestration.platform import CHECKS_JOB, PARTITIONS_JOB

BTC = "BINANCE:BTC/USDT"
MAR_2 = 1_709_337_600_000_000  # 2024-03-02T00:00:00Z
MINUTE_US = 60_000_000
HOLE = (MAR_2 + 600 * MINUTE_US, MAR_2 + 630 * MINUTE_US)  # 10:00 to 10:30


@dataclass
class InProcessPlatform:
    """Settings, Definitions and an instance, with the replay server and a relay running in threads."""

    settings: Settings
    defs: Definitions
    instance: DagsterInstance

    def run(self, job: str, **kwargs: object) -> ExecuteInProcessResult:
        return self.defs.resolve_job_def(job).execute_in_process(instance=self.instance, raise_on_error=False,
                                                                 **kwargs)  # type: ignore[arg-type]  # fmt: skip

    def materialize(self, period: int, first_day: str, last_day: str, ticker: str = BTC) -> ExecuteInProcessResult:
        tags = {ASSET_PARTITION_RANGE_START_TAG: partition_key(first_day, ticker),
                ASSET_PARTITION_RANGE_END_TAG: partition_key(last_day, ticker)}  # fmt: skip
        return self.run(PARTITIONS_JOB, asset_selection=[asset_key_for(period)], tags=tags)

    def execute(self, request: RunRequest) -> ExecuteInProcessResult:
        return self.run(PARTITIONS_JOB, asset_selection=request.asset_selection, partition_key=request.partition_key,
                        run_config=request.run_config, tags=request.tags)  # fmt: skip

    def sensor(self, name: str) -> SensorResult:
        with build_sensor_context(instance=self.instance, definitions=self.defs,
                                  resources=self.defs.resources) as context:  # fmt: skip
            result = self.defs.resolve_sensor_def(name)(context)
        assert isinstance(result, SensorResult)
        return result


def evaluations(result: ExecuteInProcessResult, period: int = 60) -> dict[str, AssetCheckEvaluation]:
    """The check evaluations of the run on one partitioned asset (candles of `period`, or trades), by name."""
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == asset_key_for(period)}


@pytest.fixture
def inproc(settings: Settings, relay: Relay, data_dir: Path) -> Iterator[InProcessPlatform]:
    with ReplayServer(data_dir).running(port=settings.sim_port):
        instance = DagsterInstance.ephemeral()
        instance.add_dynamic_partitions("tickers", [BTC])
        yield InProcessPlatform(settings, build_definitions(settings), instance)


def candles_of(settings: Settings, start_us: int, end_us: int):  # noqa: ANN201 - an Arrow table
    rows = ohlc_table(load_catalog(settings)).scan(row_filter=f"ticker == '{BTC}' and period_seconds == 60").to_arrow()
    times = pc.cast(rows["open_time"], "int64")
    return rows.filter(pc.and_(pc.greater_equal(times, start_us), pc.less(times, end_us))).sort_by("open_time")


def test_deleted_candles_fail_completeness_get_repaired_and_pass(inproc: InProcessPlatform) -> None:
    first = inproc.materialize(60, "2024-03-01", "2024-03-02")
    assert first.success
    assert {n: e.passed for n, e in evaluations(first).items()} == {
        "completeness": True, "validity": True, "freshness": True, "reconciliation": True}
    before = candles_of(inproc.settings, MAR_2, MAR_2 + 1440 * MINUTE_US)
    table = ohlc_table(load_catalog(inproc.settings))
    table.delete(And(EqualTo("ticker", literal(BTC)), And(GreaterThanOrEqual("open_time", literal(HOLE[0])),
                                                          LessThan("open_time", literal(HOLE[1])))))  # fmt: skip
    assert candles_of(inproc.settings, MAR_2, MAR_2 + 1440 * MINUTE_US).num_rows == 1410

    # The checks alone, over every materialized partition: completeness fails and names the hole.
    check_run = inproc.run(CHECKS_JOB)
    completeness = evaluations(check_run)["completeness"]
    named = "BINANCE:BTC/USDT [2024-03-02T10:00:00Z, 2024-03-02T10:30:00Z)"
    assert not completeness.passed
    assert completeness.metadata["missing_ranges"].value == [named]
    assert completeness.metadata["missing_rows"].value == 30
    assert named in (completeness.description or "")
    [gap] = gaps.read_gaps(load_catalog(inproc.settings))
    assert (gap.ticker, gap.data_type, gap.period_seconds, gap.gap_start, gap.gap_end) == (BTC, "ohlc", 60, *HOLE)
    assert (gap.status, gap.detected_by, gap.detection_run_id) == ("open", "completeness_check", check_run.run_id)
    assert completeness.metadata["gap_ids"].value == [gap.gap_id]

    # The repair sensor launches one run for it, tagged with the gap; the run refetches exactly the hole.
    [request] = inproc.sensor("gap_repair_sensor").run_requests or []
    assert request.run_key == f"gap-repair:{gap.gap_id}:1"
    assert request.partition_key == partition_key("2024-03-02", BTC)
    assert request.tags["marketlake/gap_id"] == gap.gap_id
    with MarketlakeClient(inproc.settings) as client:
        client.subscribe("HISTORY_READY:dagster-run-")
        repair = inproc.execute(request)
        assert repair.success
        note = next(m for _, m in client.stream(["HISTORY_READY:dagster-run-"], timeout=30))
    assert isinstance(note, HistoryReadyNotification)
    assert (note.status, note.row_count, note.start_time, note.end_time) == (Status.OK, 30, *HOLE)
    assert note.request_id.startswith(f"dagster-run-{repair.run_id}-")
    assert evaluations(repair)["completeness"].passed

    after = candles_of(inproc.settings, MAR_2, MAR_2 + 1440 * MINUTE_US)
    assert after.num_rows == 1440
    columns = ["open_time", "open", "high", "low", "close", "volume", "trade_count"]
    assert after.select(columns).equals(before.select(columns))
    sources = dict(zip(pc.cast(after["open_time"], "int64").to_pylist(), after["source"].to_pylist(), strict=True))
    assert {t for t, s in sources.items() if s == "repair"} == set(range(HOLE[0], HOLE[1], MINUTE_US))

    [repaired] = gaps.read_gaps(load_catalog(inproc.settings))
    assert (repaired.gap_id, repaired.status, repaired.repaired_by, repaired.repair_method) == (
        gap.gap_id, "repaired", repair.run_id, "rest")
    assert repaired.repaired_at is not None and repaired.repaired_at >= gap.detected_at

    again = inproc.run(CHECKS_JOB)
    assert evaluations(again)["completeness"].passed
    assert len(gaps.read_gaps(load_catalog(inproc.settings))) == 1
    assert not inproc.sensor("gap_repair_sensor").run_requests


def test_history_sensor_passes_over_batches_written_by_partition_runs(inproc: InProcessPlatform) -> None:
    assert inproc.materialize(3600, "2024-03-01", "2024-03-03").success
    result = inproc.sensor("history_batches_sensor")
    assert not result.run_requests
    assert result.skip_reason is not None and "no complete batch" in (result.skip_reason.skip_message or "")
    assert sum(json.loads(result.cursor or "{}").values()) == 3  # read past METADATA, ROWS, END: not held


def test_range_found_missing_again_after_a_repair_is_unresolved_not_reopened(settings: Settings) -> None:
    catalog = load_catalog(settings)
    hole = gaps.Gap(gap_id="gap-1", ticker=BTC, exchange="BINANCE", data_type="ohlc", period_seconds=60,
                    gap_start=HOLE[0], gap_end=HOLE[1], detected_at=1, detected_by="completeness_check")  # fmt: skip
    assert [g.gap_id for g in gaps.record_gaps(catalog, [hole])] == ["gap-1"]
    assert [g.gap_id for g in gaps.record_gaps(catalog, [replace(hole, gap_id="gap-2")])] == ["gap-1"]  # still open
    gaps.mark_repaired(catalog, "gap-1", "run-1", "rest", 2)
    [found] = gaps.record_gaps(catalog, [replace(hole, gap_id="gap-3", detected_at=3)])
    assert (found.gap_id, found.status) == ("gap-3", "unresolved")
    assert [(g.gap_id, g.status) for g in gaps.read_gaps(catalog)] == [("gap-1", "repaired"), ("gap-3", "unresolved")]
    assert gaps.open_gaps(catalog) == []


def test_failed_repair_run_is_retried_and_given_up_after_max_attempts(inproc: InProcessPlatform) -> None:
    settings = inproc.settings.model_copy(update={"gap_repair_retry_seconds": 0, "gap_repair_max_attempts": 2})
    inproc = InProcessPlatform(settings, build_definitions(settings), inproc.instance)
    assert inproc.materialize(60, "2024-03-02", "2024-03-02").success
    ohlc_table(load_catalog(settings)).delete(And(EqualTo("ticker", literal(BTC)), And(
        GreaterThanOrEqual("open_time", literal(HOLE[0])), LessThan("open_time", literal(HOLE[1])))))  # fmt: skip
    assert not evaluations(inproc.run(CHECKS_JOB))["completeness"].passed
    [gap] = gaps.open_gaps(load_catalog(settings))

    httpx.post(f"{settings.binance_rest_url}/_sim/faults", json={"fail_always_status": 500}, timeout=10).raise_for_status()
    for attempt in (1, 2):
        [request] = inproc.sensor("gap_repair_sensor").run_requests or []
        assert (request.run_key, request.tags["marketlake/attempt"]) == (f"gap-repair:{gap.gap_id}:{attempt}", str(attempt))
        assert not inproc.execute(request).success  # the exchange answers 500: the repair run fails
        assert [g.status for g in gaps.read_gaps(load_catalog(settings))] == ["open"]
    given_up = inproc.sensor("gap_repair_sensor")
    assert not given_up.run_requests
    assert "gave up after 2 failed repair runs" in (given_up.skip_reason.skip_message if given_up.skip_reason else "")

    # Another attempt allowed (e.g. the operator raised the limit): the exchange is back, the gap is repaired.
    httpx.post(f"{settings.binance_rest_url}/_sim/faults", json={"fail_always_status": 0}, timeout=10).raise_for_status()
    more = settings.model_copy(update={"gap_repair_max_attempts": 3})
    retry = InProcessPlatform(more, build_definitions(more), inproc.instance)
    [request] = retry.sensor("gap_repair_sensor").run_requests or []
    assert request.run_key == f"gap-repair:{gap.gap_id}:3"
    assert retry.execute(request).success
    [repaired] = gaps.read_gaps(load_catalog(settings))
    assert repaired.status == "repaired"
    assert not retry.sensor("gap_repair_sensor").run_requests
