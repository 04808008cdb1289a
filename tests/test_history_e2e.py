"""The historical loop end to end with real processes.

client → relay → Kafka → ingestor → replay server (real Binance REST) → Kafka
→ Dagster sensor → run → Iceberg → HistoryReady → client → Iceberg rows.
"""

from __future__ import annotations

import threading
from collections import Counter

import pyarrow.compute as pc

from live_relay.messages import HistoryReadyNotification, Status
from marketlake.client import MarketlakeClient
from marketlake.storage.iceberg_tables import kafka_coverage, load_catalog, ohlc_table
from marketlake.supervisor import ingestor_group_members

from .platform_fixtures import Platform

HOUR_US = 3_600_000_000
JUL_1 = 1_719_792_000_000_000  # 2024-07-01T00:00:00Z
TIMEOUT = 240.0
DATA_COLUMNS = ["ticker", "exchange", "period_seconds", "open_time", "open", "high", "low", "close", "volume",
                "quote_volume", "trade_count"]


def ohlc_rows(platform: Platform, ticker: str, start_us: int, end_us: int):  # noqa: ANN201
    table = ohlc_table(load_catalog(platform.settings))
    rows = table.scan(row_filter=f"ticker == '{ticker}'").to_arrow()
    times = pc.cast(rows["open_time"], "int64")
    mask = pc.and_(pc.greater_equal(times, start_us), pc.less(times, end_us))
    return rows.filter(mask).sort_by([("open_time", "ascending")])


def test_five_clients_twenty_concurrent_requests_each_get_exactly_their_own(platform: Platform) -> None:
    plan: dict[int, list[tuple[str, int, int]]] = {c: [] for c in range(5)}
    for k in range(20):
        ticker = "BINANCE:BTC/USDT" if k % 2 == 0 else "BINANCE:ETH/USDT"
        start = JUL_1 + (k // 2) * 6 * HOUR_US
        plan[k % 5].append((ticker, start, start + 6 * HOUR_US))
    results: dict[int, tuple[MarketlakeClient, list[str], list[HistoryReadyNotification]]] = {}
    errors: list[BaseException] = []

    def one_client(c: int) -> None:
        try:
            client = MarketlakeClient(platform.settings, client_id=f"e2e-client-{c}")
            per_request = c >= 3  # clients 0-2 listen on RESPONSE:{client_id}, 3-4 on HISTORY_READY:{request_id}
            ids = [client.submit(t, 60, s, e, per_request=per_request).request_id for t, s, e in plan[c]]
            notes = [client.wait(rid, TIMEOUT) for rid in ids]
            results[c] = (client, ids, notes)
        except BaseException as exc:  # surfaced below with the client's number
            errors.append(exc)

    threads = [threading.Thread(target=one_client, args=(c,)) for c in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT + 60)
    assert not errors, errors
    for c, (client, ids, notes) in results.items():
        assert [n.request_id for n in notes] == ids
        assert all(n.status == Status.OK and n.row_count == 360 and n.table == "market.ohlc" for n in notes), notes
        assert all(n.client_id == client.client_id for n in notes)
        expected_topics = ([f"RESPONSE:{client.client_id}"] * 4 if c < 3 else [f"HISTORY_READY:{rid}" for rid in ids])
        assert sorted(client.received_topics) == sorted(expected_topics), f"client {c} got {client.received_topics}"
        client.close()
    for ticker in ("BINANCE:BTC/USDT", "BINANCE:ETH/USDT"):
        rows = ohlc_rows(platform, ticker, JUL_1, JUL_1 + 60 * HOUR_US)
        assert rows.num_rows == 10 * 360
        keys = Counter(zip(rows["period_seconds"].to_pylist(), rows["open_time"].to_pylist(), strict=True))
        assert max(keys.values()) == 1, "duplicate candles"


def test_same_request_again_leaves_rows_unchanged_and_summary_has_kafka_offsets(platform: Platform) -> None:
    start, end = JUL_1 + 100 * HOUR_US, JUL_1 + 124 * HOUR_US
    with MarketlakeClient(platform.settings) as client:
        first = client.history("BINANCE:BTC/USDT", 60, start, end, timeout=TIMEOUT)
        assert first.status == Status.OK and first.row_count == 1440, first.error_message
        before = ohlc_rows(platform, "BINANCE:BTC/USDT", start, end).select(DATA_COLUMNS)
        second = client.history("BINANCE:BTC/USDT", 60, start, end, timeout=TIMEOUT)
        assert second.status == Status.OK and second.snapshot_id != first.snapshot_id
    after = ohlc_rows(platform, "BINANCE:BTC/USDT", start, end).select(DATA_COLUMNS)
    assert before.num_rows == 1440
    assert after.equals(before)
    table = ohlc_table(load_catalog(platform.settings))
    coverage = {c.request_id: c for c in kafka_coverage(table)}
    for note in (first, second):
        cov = coverage[note.request_id]
        assert cov.snapshot_id == note.snapshot_id
        assert cov.topic == f"{platform.settings.kafka_topic_prefix}history"
        assert cov.end_offset > cov.start_offset >= 0


def test_exchange_answering_429_then_200_is_served(platform: Platform) -> None:
    platform.set_faults(fail_429=2, retry_after_seconds=1)
    with MarketlakeClient(platform.settings) as client:
        note = client.history("BINANCE:ETH/USDT", 60, JUL_1 + 200 * HOUR_US, JUL_1 + 201 * HOUR_US, timeout=TIMEOUT)
    assert note.status == Status.OK, note.error_message
    assert note.row_count == 60


def test_exchange_failing_for_good_gives_history_ready_error_with_reason(platform: Platform) -> None:
    platform.set_faults(fail_always_status=500, fail_always_code=-1000, fail_always_msg="An unknown error occurred.")
    try:
        with MarketlakeClient(platform.settings) as client:
            note = client.history("BINANCE:BTC/USDT", 60, JUL_1 + 300 * HOUR_US, JUL_1 + 301 * HOUR_US,
                                  per_request=True, timeout=TIMEOUT)
    finally:
        platform.set_faults(fail_always_status=0)
    assert note.status == Status.ERROR
    assert "500" in note.error_message, note.error_message
    assert note.row_count == 0


def test_request_made_while_no_ingestor_runs_is_served_when_one_starts(platform: Platform) -> None:
    ingestor = platform.service("ingestor-binance")
    platform.supervisor.stop_service(ingestor)
    assert ingestor_group_members(platform.settings, "BINANCE") == 0
    with MarketlakeClient(platform.settings) as client:
        response = client.submit("BINANCE:BTC/USDT", 60, JUL_1 + 400 * HOUR_US, JUL_1 + 402 * HOUR_US)
        platform.supervisor.start(ingestor)
        note = client.wait(response.request_id, TIMEOUT)
    assert note.status == Status.OK, note.error_message
    assert note.row_count == 120
