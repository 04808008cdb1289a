"""HistoryReady run-status sensors, fed by real executed runs, publishing through a real relay.

The client side is a plain ZeroMQ SUB socket on the relay's XPUB port, subscribed
before the run (as the protocol requires); the notification is decoded with the codec.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from dagster import (
    DagsterEventType,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    build_run_status_sensor_context,
    build_sensor_context,
)

from live_relay import codec
from live_relay.messages import HistoryReadyNotification, Status
from live_relay.relay import Relay
from marketlake.settings import Settings
from marketlake.storage import iceberg_tables as it
from orchestration.definitions import build_definitions
from sensors.history_ready import error_notification, ok_notification
from tests.history_fixtures import END_US, START_US, TICKER, batch_records, candles_from_trades, produce, trades_in

TOPIC = "RESPONSE:cli-ready"


@pytest.fixture
def subscriber(settings: Settings, relay: Relay) -> Iterator[zmq.Socket]:
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.connect(settings.relay_endpoint(settings.xpub_port))
    sock.setsockopt(zmq.SUBSCRIBE, TOPIC.encode())
    yield sock
    sock.close(linger=0)


def receive(sock: zmq.Socket, timeout: float = 20.0) -> HistoryReadyNotification:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if sock.poll(int(left * 1000) + 1):
            topic, msg = codec.decode_sub(sock.recv_multipart())
            if topic == TOPIC and isinstance(msg, HistoryReadyNotification):
                return msg
    raise AssertionError(f"no HistoryReadyNotification on {TOPIC} within {timeout}s")


def run_batch(settings: Settings, records: list) -> tuple[Definitions, DagsterInstance, ExecuteInProcessResult]:
    produce(settings, records, partition=0)
    defs = build_definitions(settings)
    with build_sensor_context(definitions=defs, resources=defs.resources) as context:
        [request] = defs.resolve_sensor_def("history_batches_sensor")(context).run_requests
    instance = DagsterInstance.ephemeral()
    result = defs.resolve_job_def("history_batch_job").execute_in_process(
        run_config=request.run_config, tags=request.tags, instance=instance, raise_on_error=False
    )
    return defs, instance, result


def fire(defs: Definitions, instance: DagsterInstance, run_id: str, sensor_name: str, event_type: DagsterEventType):
    [record] = instance.get_records_for_run(run_id, of_type=event_type).records
    context = build_run_status_sensor_context(
        sensor_name=sensor_name, dagster_event=record.event_log_entry.dagster_event, dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id), resources=defs.resources,
    )  # fmt: skip
    sensor = defs.resolve_sensor_def(sensor_name)
    return sensor(context.for_run_failure() if event_type == DagsterEventType.RUN_FAILURE else context)


def test_successful_run_sends_history_ready_ok_with_table_snapshot_and_range(
    settings: Settings, subscriber: zmq.Socket, data_dir: Path
) -> None:
    candles = candles_from_trades(trades_in(data_dir, START_US, END_US))
    records = batch_records(candles, period_seconds=60, client_id="cli-ready", request_id="req-ok")
    defs, instance, result = run_batch(settings, records)
    assert result.success
    fire(defs, instance, result.run_id, "history_ready_on_success", DagsterEventType.RUN_SUCCESS)
    note = receive(subscriber)
    snapshot = it.ohlc_table(it.load_catalog(settings)).current_snapshot().snapshot_id
    assert (note.request_id, note.client_id, note.status, note.ticker, note.period_seconds) == (
        "req-ok", "cli-ready", Status.OK, TICKER, 60)  # fmt: skip
    assert (note.start_time, note.end_time, note.row_count, note.table, note.snapshot_id) == (
        START_US, END_US, len(candles), "market.ohlc", snapshot)  # fmt: skip
    assert note.completed_at > 0 and note.error_message == ""


def test_failed_run_sends_history_ready_error_with_the_exchanges_reason(
    settings: Settings, subscriber: zmq.Socket
) -> None:
    reason = "Binance -1121: Invalid symbol."
    records = batch_records([], period_seconds=60, client_id="cli-ready", request_id="req-err",
                            status=Status.ERROR, error_message=reason)  # fmt: skip
    defs, instance, result = run_batch(settings, records)
    assert not result.success
    fire(defs, instance, result.run_id, "history_ready_on_failure", DagsterEventType.RUN_FAILURE)
    note = receive(subscriber)
    assert (note.request_id, note.status, note.error_message, note.ticker) == ("req-err", Status.ERROR, reason, TICKER)
    assert note.snapshot_id == 0 and note.table == ""


TAGS = {
    "marketlake/request_id": "r1", "marketlake/client_id": "c1", "marketlake/ticker": TICKER,
    "marketlake/period_seconds": "60", "marketlake/start_time": "10", "marketlake/end_time": "20",
    "marketlake/notification_topic": "RESPONSE:c1", "marketlake/batch_id": "b1",
}  # fmt: skip


def test_ok_notification_is_built_from_run_tags_and_materialization_metadata() -> None:
    note = ok_notification(TAGS, {"row_count": 7, "table": "market.ohlc", "snapshot_id": 42})
    assert (note.request_id, note.client_id, note.status, note.ticker, note.period_seconds, note.start_time,
            note.end_time, note.row_count, note.table, note.snapshot_id) == (
        "r1", "c1", Status.OK, TICKER, 60, 10, 20, 7, "market.ohlc", 42)  # fmt: skip


def test_error_notification_carries_the_reason_and_the_request() -> None:
    note = error_notification(TAGS, "exchange said no")
    assert (note.request_id, note.status, note.error_message, note.row_count) == ("r1", Status.ERROR, "exchange said no", 0)
