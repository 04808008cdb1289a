"""The historical ingestor against the Binance replay server and a real Kafka broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from ingestors.binance.replay import ReplayServer
from ingestors.binance.sim_faults import FaultConfig
from ingestors.worker import Ingestor
from live_relay import codec
from live_relay.messages import BatchKind, DataRequest, OHLCBatch, Status
from marketlake.kafka_topics import consumer_config, history_topic, producer_config, request_topic
from marketlake.settings import Settings
from marketlake.supervisor import ingestor_group_members, settings_env

from .factories import DATA_DIR

AUG_8 = 1_723_075_200_000_000  # 2024-08-08T00:00:00Z
DAY_US = 86_400_000_000


@pytest.fixture
def sim(settings: Settings) -> Iterator[ReplayServer]:
    server = ReplayServer(DATA_DIR)
    with server.running(settings.sim_port) as base_url:
        assert base_url == settings.binance_rest_url
        yield server


def submit(settings: Settings, req: DataRequest) -> None:
    producer = Producer(producer_config(settings))
    producer.produce(request_topic(settings, "BINANCE"), key=req.request_id.encode(), value=codec.encode_record(req))
    assert producer.flush(10) == 0


def read_history(settings: Settings, until_ends: int, timeout: float = 60.0) -> list[OHLCBatch]:
    """Every history record (in order within each partition) once `until_ends` END records have arrived."""
    consumer = Consumer(consumer_config(settings, "test-reader"))
    topic = history_topic(settings)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.kafka_history_partitions)])
    records: list[OHLCBatch] = []
    deadline = time.monotonic() + timeout
    while True:
        batch = consumer.consume(500, timeout=1)
        records += [codec.decode_record(m.value()) for m in batch if not m.error()]
        if not batch and sum(r.kind == BatchKind.END for r in records) >= until_ends:
            break  # all END markers are in and every partition is drained
        assert time.monotonic() < deadline, f"only {len(records)} history records after {timeout}s"
    consumer.close()
    return records


def day_request(request_id: str, period: int = 60, start: int = AUG_8, end: int = AUG_8 + DAY_US) -> DataRequest:
    return DataRequest(request_id=request_id, client_id="c", ticker="BINANCE:BTC/USDT", period_seconds=period,
                       start_time=start, end_time=end, notification_topic="RESPONSE:c")


@contextmanager
def ingestor_running(settings: Settings) -> Iterator[Ingestor]:
    """A real Binance ingestor on a thread for the duration of the block; stopped and joined after."""
    worker = Ingestor(settings, "BINANCE")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)


def serve_and_read(settings: Settings, until_ends: int = 1, timeout: float = 60.0) -> list[OHLCBatch]:
    """Run an ingestor until `until_ends` batches are complete in Kafka; return every history record."""
    with ingestor_running(settings):
        return read_history(settings, until_ends=until_ends, timeout=timeout)


def test_one_day_of_candles_becomes_one_complete_batch(settings: Settings, sim: ReplayServer) -> None:
    submit(settings, day_request("r-day"))
    records = serve_and_read(settings)
    assert [r.kind for r in records] == [BatchKind.METADATA, BatchKind.ROWS, BatchKind.ROWS, BatchKind.END]
    assert [r.sequence for r in records] == [0, 1, 2, 3]
    assert len({r.batch_id for r in records}) == 1
    rows = [row for r in records for row in r.rows]
    assert len(rows) == 1440 and records[-1].row_count == 1440 and records[-1].status == Status.OK
    assert [row.open_time for row in rows] == list(range(AUG_8, AUG_8 + DAY_US, 60_000_000))
    assert records[0].request_id == "r-day" and records[0].notification_topic == "RESPONSE:c"


def test_trades_request_writes_ticks_with_exchange_ids(settings: Settings, sim: ReplayServer) -> None:
    start = AUG_8 + DAY_US - 300_000_000  # the recorded last five minutes of 2024-08-08
    submit(settings, day_request("r-trades", period=0, start=start, end=AUG_8 + DAY_US))
    records = serve_and_read(settings)
    ticks = [t for r in records for t in r.ticks]
    assert records[-1].status == Status.OK and records[-1].row_count == len(ticks) > 100
    ids = [int(t.trade_id) for t in ticks]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(start * 1000 <= t.exchange_time_ns < (AUG_8 + DAY_US) * 1000 for t in ticks)


def test_exchange_failing_for_good_becomes_an_error_end_marker_with_the_reason(settings: Settings, sim: ReplayServer) -> None:
    sim.state.set_faults(fail_always_status=400, fail_always_code=-1121, fail_always_msg="Invalid symbol.")
    submit(settings, day_request("r-fail"))
    records = serve_and_read(settings)
    end = records[-1]
    assert end.kind == BatchKind.END and end.status == Status.ERROR
    assert "Invalid symbol." in end.error_message and "400" in end.error_message


def test_two_ingestors_serve_each_request_exactly_once(settings: Settings, sim: ReplayServer) -> None:
    for i in range(8):
        submit(settings, day_request(f"r{i}", start=AUG_8 - (i + 1) * DAY_US, end=AUG_8 - i * DAY_US))
    with ingestor_running(settings) as first, ingestor_running(settings) as second:
        records = read_history(settings, until_ends=8)
    ends = [r for r in records if r.kind == BatchKind.END]
    assert sorted(r.request_id for r in ends) == sorted(f"r{i}" for i in range(8))
    assert first.served + second.served == 8


def test_a_crashed_ingestors_request_is_served_by_another(settings: Settings) -> None:
    # A slow exchange keeps the first ingestor inside the request when it is killed.
    server = ReplayServer(DATA_DIR, FaultConfig(latency_ms=400))
    with server.running(settings.sim_port):
        submit(settings, day_request("r-crash", start=AUG_8 - 20 * DAY_US, end=AUG_8))
        env = settings_env(settings)
        victim = subprocess.Popen([sys.executable, "-m", "marketlake.cli", "ingestor", "--exchange", "BINANCE"],
                                  env=env, start_new_session=True)
        try:
            records = []
            consumer = Consumer(consumer_config(settings, "crash-watch"))
            consumer.assign([TopicPartition(history_topic(settings), p, 0) for p in range(settings.kafka_history_partitions)])
            deadline = time.monotonic() + 60
            while not any(r.kind == BatchKind.ROWS for r in records):
                assert time.monotonic() < deadline, "the first ingestor wrote no rows within 60 s"
                # consume() returns early with what it has: we must not sleep through the victim's whole run
                records += [codec.decode_record(m.value()) for m in consumer.consume(1, timeout=0.2) if not m.error()]
            consumer.close()
            os.killpg(victim.pid, signal.SIGKILL)  # a crash: no commit, no END marker
            victim.wait(30)
        finally:
            if victim.poll() is None:
                os.killpg(victim.pid, signal.SIGKILL)
        server.state.set_faults(latency_ms=0)
        records = serve_and_read(settings, timeout=120)
    batches = {r.batch_id for r in records}
    ends = [r for r in records if r.kind == BatchKind.END]
    assert len(batches) == 2, "the second ingestor must write a batch of its own"
    assert len(ends) == 1 and ends[0].status == Status.OK and ends[0].row_count == 20 * 1440
    assert ingestor_group_members(settings, "BINANCE") == 0


def test_cancel_on_the_control_channel_ends_the_request_with_error(settings: Settings, relay) -> None:  # noqa: ANN001
    import zmq

    from live_relay.messages import ControlAction, IngestorControl, SubmitResponse

    server = ReplayServer(DATA_DIR, FaultConfig(latency_ms=300))
    with ExitStack() as stack:
        stack.enter_context(server.running(settings.sim_port))
        submit(settings, day_request("r-cancel", start=AUG_8 - 20 * DAY_US, end=AUG_8))
        worker = stack.enter_context(ingestor_running(settings))
        consumer = Consumer(consumer_config(settings, "cancel-watch"))
        consumer.assign([TopicPartition(history_topic(settings), p, 0) for p in range(settings.kafka_history_partitions)])
        ctx = zmq.Context.instance()
        records: list[OHLCBatch] = []
        try:
            deadline = time.monotonic() + 120
            while not any(r.kind == BatchKind.END for r in records):
                assert time.monotonic() < deadline, "no END marker after the cancel"
                if any(r.kind == BatchKind.ROWS for r in records):
                    # resent until it lands: the control channel is PUB/SUB and CANCEL is idempotent
                    with ctx.socket(zmq.REQ) as req:
                        req.setsockopt(zmq.LINGER, 0)
                        req.connect(settings.relay_endpoint(settings.client_port))
                        req.send_multipart(codec.encode(IngestorControl(action=ControlAction.CANCEL, exchange="BINANCE",
                                                                        request_id="r-cancel")))
                        assert req.poll(10_000)
                        reply = codec.decode(req.recv_multipart())
                        assert isinstance(reply, SubmitResponse) and reply.status == Status.OK
                records += [codec.decode_record(m.value()) for m in consumer.consume(10, timeout=0.5) if not m.error()]
        finally:
            consumer.close()
    end = next(r for r in records if r.kind == BatchKind.END)
    assert end.status == Status.ERROR and "cancelled by IngestorControl" in end.error_message
    assert end.row_count < 20 * 1440
    assert "r-cancel" in worker.cancelled
