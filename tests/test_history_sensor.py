"""history_batches_sensor against the session's real Kafka broker, evaluated with build_sensor_context."""

from __future__ import annotations

import json
import time
from pathlib import Path

from dagster import Definitions, SensorResult, build_sensor_context

from live_relay.messages import OHLCBatch
from marketlake.kafka_topics import history_topic
from marketlake.settings import Settings
from orchestration.definitions import build_definitions
from tests.history_fixtures import END_US, START_US, TICKER, batch_records, candles_from_trades, produce, trades_in


def tick(defs: Definitions, cursor: str | None) -> SensorResult:
    sensor = defs.resolve_sensor_def("history_batches_sensor")
    with build_sensor_context(cursor=cursor, definitions=defs, resources=defs.resources) as context:
        result = sensor(context)
    assert isinstance(result, SensorResult)
    return result


def run_keys(result: SensorResult) -> list[str]:
    return [r.run_key for r in result.run_requests or []]


def candle_batch(data_dir: Path, **kwargs: object) -> list[OHLCBatch]:
    candles = candles_from_trades(trades_in(data_dir, START_US, END_US))
    return batch_records(candles, period_seconds=60, per_record=2, **kwargs)  # type: ignore[arg-type]


def test_complete_batch_yields_one_run_request_with_key_config_and_tags(settings: Settings, data_dir: Path) -> None:
    records = candle_batch(data_dir, batch_id="batch-1", request_id="req-1", client_id="cli-1")
    offsets = produce(settings, records, partition=2)
    result = tick(build_definitions(settings), None)
    topic = history_topic(settings)
    [request] = result.run_requests or []
    assert request.run_key == f"{topic}:2:{offsets[0]}-{offsets[-1]}"
    assert request.run_config["ops"] == {"history_batch": {"config": {
        "topic": topic, "partition": 2, "start_offset": offsets[0], "end_offset": offsets[-1], "batch_id": "batch-1",
    }}}  # fmt: skip
    assert {k: v for k, v in request.tags.items() if k.startswith("marketlake/")} == {
        "marketlake/request_id": "req-1", "marketlake/client_id": "cli-1", "marketlake/ticker": TICKER,
        "marketlake/period_seconds": "60", "marketlake/start_time": str(START_US), "marketlake/end_time": str(END_US),
        "marketlake/notification_topic": "RESPONSE:cli-1", "marketlake/batch_id": "batch-1",
    }  # fmt: skip
    assert json.loads(result.cursor or "") == {"0": 0, "1": 0, "2": offsets[-1] + 1, "3": 0}


def test_open_batch_yields_no_run_and_holds_the_cursor_at_its_metadata(settings: Settings, data_dir: Path) -> None:
    records = candle_batch(data_dir)
    defs = build_definitions(settings)
    first = produce(settings, records[:-1], partition=0)
    held = tick(defs, None)
    assert run_keys(held) == [] and held.skip_reason is not None
    assert json.loads(held.cursor or "")["0"] == first[0]
    again = tick(defs, held.cursor)  # a restarted sensor re-reads the open batch from its METADATA
    assert run_keys(again) == [] and json.loads(again.cursor or "")["0"] == first[0]
    [end] = produce(settings, records[-1:], partition=0)
    done = tick(defs, again.cursor)
    assert run_keys(done) == [f"{history_topic(settings)}:0:{first[0]}-{end}"]
    assert json.loads(done.cursor or "")["0"] == end + 1


def test_interleaved_batches_from_two_writers_in_one_partition(settings: Settings, data_dir: Path) -> None:
    a = candle_batch(data_dir, batch_id="writer-a")
    b = candle_batch(data_dir, batch_id="writer-b", start_us=START_US)
    assert len(a) == len(b) == 5  # METADATA, 3 ROWS, END
    topic, defs = history_topic(settings), build_definitions(settings)
    order = [a[0], b[0], a[1], b[1], b[2], a[2], b[3], b[4]]  # b ends while a is still open
    offsets = dict(zip([(r.batch_id, r.sequence) for r in order], produce(settings, order, partition=1), strict=True))
    first = tick(defs, None)
    b_key = f"{topic}:1:{offsets['writer-b', 0]}-{offsets['writer-b', 4]}"
    assert run_keys(first) == [b_key]
    assert json.loads(first.cursor or "")["1"] == offsets["writer-a", 0]
    tail = produce(settings, a[3:], partition=1)
    second = tick(defs, first.cursor)
    # b is seen again from the held cursor: same run key, so Dagster launches it once.
    assert run_keys(second) == [b_key, f"{topic}:1:{offsets['writer-a', 0]}-{tail[-1]}"]
    assert json.loads(second.cursor or "")["1"] == tail[-1] + 1


def test_batch_open_longer_than_the_abandon_time_stops_holding_the_cursor(settings: Settings, data_dir: Path) -> None:
    crashed = candle_batch(data_dir, batch_id="crashed")[:2]  # METADATA + one ROWS, then the ingestor died
    two_hours_ago_ms = int(time.time() * 1000) - 2 * 3600 * 1000
    produce(settings, crashed, partition=3, timestamp_ms=two_hours_ago_ms)
    served_again = candle_batch(data_dir, batch_id="served-again")
    offsets = produce(settings, served_again, partition=3)
    result = tick(build_definitions(settings.model_copy(update={"history_batch_abandon_seconds": 3600.0})), None)
    assert run_keys(result) == [f"{history_topic(settings)}:3:{offsets[0]}-{offsets[-1]}"]
    assert json.loads(result.cursor or "")["3"] == offsets[-1] + 1


def test_recent_open_batch_is_not_abandoned(settings: Settings, data_dir: Path) -> None:
    offsets = produce(settings, candle_batch(data_dir)[:2], partition=3)
    result = tick(build_definitions(settings.model_copy(update={"history_batch_abandon_seconds": 3600.0})), None)
    assert json.loads(result.cursor or "")["3"] == offsets[0]


def test_tick_reads_a_bounded_number_of_records_but_always_finishes_a_batch(
    settings: Settings, data_dir: Path
) -> None:
    topic = history_topic(settings)
    trades = trades_in(data_dir, START_US, END_US)[:60]
    big = batch_records(trades, period_seconds=0, per_record=5, batch_id="big")  # METADATA, 12 ROWS, END
    big_offsets = produce(settings, big, partition=0)
    small = [produce(settings, batch_records([], period_seconds=60, batch_id=f"small-{i}"), 0) for i in range(3)]
    defs = build_definitions(settings.model_copy(update={"history_sensor_max_records": 3}))
    first = tick(defs, None)  # the big batch passes the bound: the tick reads on until it completes
    assert run_keys(first) == [f"{topic}:0:{big_offsets[0]}-{big_offsets[-1]}"]
    assert json.loads(first.cursor or "")["0"] == big_offsets[-1] + 1
    cursor = first.cursor
    for i, (meta, end) in enumerate(small):  # then 3 records a tick: one small batch and the next METADATA
        result = tick(defs, cursor)
        assert run_keys(result) == [f"{topic}:0:{meta}-{end}"]
        cursor = result.cursor
        assert json.loads(cursor or "")["0"] == (small[i + 1][0] if i < 2 else end + 1)


def test_missing_history_topic_skips_and_keeps_the_cursor(settings: Settings) -> None:
    no_topics = settings.model_copy(update={"kafka_topic_prefix": "never-created."})
    result = tick(build_definitions(no_topics), '{"0": 7}')
    assert run_keys(result) == [] and result.cursor == '{"0": 7}'
    assert "never-created.history" in (result.skip_reason.skip_message if result.skip_reason else "")
