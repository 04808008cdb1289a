"""history_batch_job executed in-process with the real resources: real Kafka in, real Iceberg out.

Also the batch checks on their own (pure, parametrized): each bad batch is refused
with a reason that names the offending value.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from dagster import DagsterInstance, Definitions, ExecuteInProcessResult, RunRequest, build_sensor_context
from msgspec.structs import replace

from live_relay.messages import OHLC, OHLCBatch, Status
from marketlake.settings import Settings
from marketlake.storage import iceberg_tables as it
from marketlake.storage.batches import (
    BatchFailedError,
    BatchRange,
    BatchRecord,
    InvalidBatchError,
    assemble_batch,
    check_candles,
    check_metadata,
    check_ticks,
)
from orchestration.definitions import build_definitions
from tests.history_fixtures import END_US, MINUTE_US, START_US, batch_records, candles_from_trades, produce, trades_in

# --- the checks, pure ------------------------------------------------------------------------


def located(records: list[OHLCBatch], first: int = 10) -> tuple[BatchRange, list[BatchRecord]]:
    where = BatchRange("t", 0, first, first + len(records) - 1, records[0].batch_id)
    return where, [BatchRecord(first + i, r) for i, r in enumerate(records)]


@pytest.fixture
def candles(data_dir: Path) -> list[OHLC]:
    return candles_from_trades(trades_in(data_dir, START_US, END_US))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: replace(c, high=c.open, open=str(Decimal(c.high) + 1)), "outside open"),
        (lambda c: replace(c, low=str(Decimal(c.close) + 1)), "outside open"),
        (lambda c: replace(c, volume="-0.5"), "negative volume -0.5"),
        (lambda c: replace(c, open_time=c.open_time + 1), "not aligned to the 60s grid"),
        (lambda c: replace(c, open_time=END_US), f"candle {END_US} outside"),
        (lambda c: replace(c, ticker="BINANCE:ETH/USDT"), "is BINANCE:ETH/USDT 60s"),
        (lambda c: replace(c, close="1.0000000000000000001"), "'1.0000000000000000001' does not fit decimal(38,18)"),
        (lambda c: replace(c, volume="abc"), "'abc' is not a decimal number"),
    ],
)
def test_candle_checks_refuse_a_bad_candle_with_its_value(candles: list[OHLC], change, reason: str) -> None:
    bad = [*candles[:-1], change(candles[-1])]
    meta = batch_records(bad, period_seconds=60)[0]
    with pytest.raises(InvalidBatchError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_candles(meta, bad)


def test_candle_checks_refuse_a_duplicate_open_time(candles: list[OHLC]) -> None:
    with pytest.raises(InvalidBatchError, match=f"candle {candles[0].open_time} appears twice"):
        check_candles(batch_records(candles, period_seconds=60)[0], [*candles, candles[0]])


def test_weekly_candles_align_to_monday(candles: list[OHLC]) -> None:
    monday = 1_722_816_000_000_000  # 2024-08-05 00:00 UTC
    week = replace(candles[0], period_seconds=604_800, open_time=monday)
    meta = batch_records([week], period_seconds=604_800, start_us=monday, end_us=monday + 604_800_000_000)[0]
    check_candles(meta, [week])
    with pytest.raises(InvalidBatchError, match="not aligned"):
        check_candles(replace(meta, start_time=monday - 86_400_000_000), [replace(week, open_time=monday - 86_400_000_000)])


def test_trade_checks_refuse_duplicates_and_out_of_range_trades(data_dir: Path) -> None:
    ticks = trades_in(data_dir, START_US, END_US)
    meta = batch_records(ticks, period_seconds=0)[0]
    check_ticks(meta, ticks)
    with pytest.raises(InvalidBatchError, match=f"trade '{ticks[0].trade_id}' is empty or appears twice"):
        check_ticks(meta, [*ticks, ticks[0]])
    late = replace(ticks[0], exchange_time_ns=END_US * 1000)
    with pytest.raises(InvalidBatchError, match=f"at {END_US * 1000} ns outside"):
        check_ticks(meta, [late])


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda rs: [rs[0], rs[2], rs[1], rs[3]], "sequence 2 at offset 11, expected 1"),
        (lambda rs: rs[:-1] + [replace(rs[-1], row_count=99)], "END says 99 rows, the batch holds 4"),
        (lambda rs: rs[1:], "no METADATA record at offset 10"),
        (lambda rs: rs[:-1] + [replace(rs[-1], status=Status.UNSPECIFIED)], "END status UNSPECIFIED"),
        (lambda rs: [rs[0], replace(rs[1], kind=rs[0].kind), *rs[2:]], "not ROWS at offsets \\[11\\]"),
    ],
)
def test_batch_structure_checks_refuse_a_broken_batch(candles: list[OHLC], mangle, reason: str) -> None:
    records = batch_records(candles[:4], period_seconds=60, per_record=2)  # METADATA, ROWS, ROWS, END
    where, mangled = located(mangle(records))
    with pytest.raises(InvalidBatchError, match=reason):
        assemble_batch(where, mangled)


def test_error_batch_raises_the_exchanges_reason_even_when_partial(candles: list[OHLC]) -> None:
    reason = "Binance -1121: Invalid symbol."
    partial = batch_records(candles[:2], period_seconds=60, status=Status.ERROR, error_message=reason)
    where, records = located([*partial[:-1], replace(partial[-1], row_count=99)])
    with pytest.raises(BatchFailedError) as raised:
        assemble_batch(where, records)
    assert raised.value.reason == reason


def test_metadata_check_refuses_an_unknown_source(candles: list[OHLC]) -> None:
    with pytest.raises(InvalidBatchError, match="source 'ftp' is not one of"):
        check_metadata(replace(batch_records(candles, period_seconds=60)[0], source="ftp"))


# --- the job, in-process against real Kafka and a real catalog ------------------------------


def sensor_requests(defs: Definitions) -> list[RunRequest]:
    with build_sensor_context(definitions=defs, resources=defs.resources) as context:
        result = defs.resolve_sensor_def("history_batches_sensor")(context)
    return list(result.run_requests or [])


def execute(defs: Definitions, request: RunRequest, instance: DagsterInstance) -> ExecuteInProcessResult:
    job = defs.resolve_job_def("history_batch_job")
    return job.execute_in_process(run_config=request.run_config, tags=request.tags, instance=instance,
                                  raise_on_error=False)  # fmt: skip


def test_job_writes_a_candle_batch_from_kafka_to_iceberg(settings: Settings, candles: list[OHLC]) -> None:
    offsets = produce(settings, batch_records(candles, period_seconds=60, per_record=2), partition=1)
    defs = build_definitions(settings)
    [request] = sensor_requests(defs)
    result = execute(defs, request, DagsterInstance.ephemeral())
    assert result.success
    table = it.ohlc_table(it.load_catalog(settings))
    rows = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["open_time"])
    assert [(int(r["open_time"].timestamp()) * 1_000_000, r["open"], r["high"], r["low"], r["close"], r["volume"])
            for r in rows] == [(c.open_time, Decimal(c.open), Decimal(c.high), Decimal(c.low), Decimal(c.close),
                                Decimal(c.volume)) for c in candles]  # fmt: skip
    [materialization] = result.asset_materializations_for_node("history_batch")
    assert materialization.asset_key.path == ["market", "ohlc"]
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["row_count"] == len(candles) and metadata["table"] == "market.ohlc"
    assert metadata["snapshot_id"] == table.current_snapshot().snapshot_id
    assert (metadata["kafka_start_offset"], metadata["kafka_end_offset"]) == (offsets[0], offsets[-1])


def test_rerun_of_the_same_batch_changes_no_rows(settings: Settings, data_dir: Path) -> None:
    ticks = trades_in(data_dir, START_US, START_US + 2 * MINUTE_US)
    produce(settings, batch_records(ticks, period_seconds=0, end_us=START_US + 2 * MINUTE_US, per_record=400))
    defs = build_definitions(settings)
    [request] = sensor_requests(defs)
    instance = DagsterInstance.ephemeral()
    assert execute(defs, request, instance).success
    table = it.trades_table(it.load_catalog(settings))
    first = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["trade_id"])
    rerun = execute(defs, request, instance)
    assert rerun.success
    [materialization] = rerun.asset_materializations_for_node("history_batch")
    assert materialization.asset_key.path == ["market", "trades"]
    table.refresh()
    assert sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["trade_id"]) == first
    assert len(first) == len(ticks)
    coverage = it.kafka_coverage(table)
    assert len(coverage) == 2 and coverage[0].start_offset == coverage[1].start_offset


def test_error_batch_fails_the_run_with_the_exchanges_reason(settings: Settings) -> None:
    reason = "Binance 429: Too many requests; retries exhausted"
    produce(settings, batch_records([], period_seconds=60, status=Status.ERROR, error_message=reason), partition=2)
    defs = build_definitions(settings)
    [request] = sensor_requests(defs)
    result = execute(defs, request, DagsterInstance.ephemeral())
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_failure_data.user_failure_data.description == reason


def test_invalid_batch_fails_the_run_and_writes_nothing(settings: Settings, candles: list[OHLC]) -> None:
    bad = [*candles[:-1], replace(candles[-1], low=str(Decimal(candles[-1].high) + 1))]
    produce(settings, batch_records(bad, period_seconds=60), partition=3)
    defs = build_definitions(settings)
    [request] = sensor_requests(defs)
    result = execute(defs, request, DagsterInstance.ephemeral())
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert f"candle {candles[-1].open_time} has high" in failure.step_failure_data.user_failure_data.description
    assert it.ohlc_table(it.load_catalog(settings)).scan().to_arrow().num_rows == 0
