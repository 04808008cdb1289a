"""Durability of the live stream: recorded Binance events → KafkaSink (acks=all) → Kafka → Dagster → Iceberg.

The recorded BTCUSDT session (data/binance) is turned into live events by the real
Binance live adapter, written through the sink as the live process does (events,
then the stream processor's closed candles), with the broker stopped and restarted
half-way. Then the live events sensor and job (real Dagster, ephemeral instance)
write them into market.trades / ohlc / book_snapshots / heatmap, and the live gaps
sensor records the session's disconnect in market.gaps.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from dagster import DagsterInstance, RunRequest, SensorResult, build_sensor_context

from assets.live import LIVE_JOB, LIVE_OP
from ingestors.binance.live import BinanceLive
from ingestors.binance.parse import parse_combined_frame, parse_recorded_line, parse_trade_event
from ingestors.book import OrderBook
from ingestors.live.adapter import SnapshotRequest
from ingestors.live.kafka_sink import KafkaSink, LiveDeliveryError, SinkStats
from live_relay import codec
from live_relay.book_views import BookViews
from live_relay.messages import OHLC, BookLevel, BookUpdate, Heatmap, StreamGap, Tick
from live_relay.stream import StreamProcessor
from marketlake.book_sampler import BookSampler
from marketlake.kafka_broker import KafkaBroker, ensure_topics, free_port
from marketlake.kafka_topics import all_topics, consumer_config, live_topic
from marketlake.settings import REPO_ROOT, Settings
from marketlake.storage import gaps
from marketlake.storage.iceberg_tables import load_catalog, ohlc_table, trades_table, write_trades_batch
from marketlake.storage.live_rows import LiveRecord, live_rows
from marketlake.storage.live_tables import TRADES_KEY, append_new, book_snapshots_table, heatmap_table
from orchestration.definitions import build_definitions

from .factories import make_settings
from .history_fixtures import TICKER, candles_from_trades

RECORDING = Path("binance") / "spot_btcusdt_20240808.gz"
SNAPSHOT_S = 10
LEVELS = 50
WRITE_BATCH = 1024
Sides = tuple[list[tuple[str, str]], list[tuple[str, str]]]


def parsed_trades(data_dir: Path) -> list[Tick]:
    """The recording's trades as ingestors/binance/parse.py parses them (the count Kafka must hold)."""
    out = []
    with gzip.open(data_dir / RECORDING, "rt") as lines:
        for line in lines:
            ns, payload = parse_recorded_line(line)
            if '"btcusdt@trade"' in payload:
                out.append(parse_trade_event(parse_combined_frame(payload)[1], TICKER, ns))
    return out


def live_events(data_dir: Path) -> list[object]:
    """The events the live adapter emits for the recording, ending with its disconnect (a StreamGap)."""
    adapter = BinanceLive([TICKER], "ws://127.0.0.1:1/ws", "http://127.0.0.1:1")
    events: list[object] = []
    last_ns = 0
    with gzip.open(data_dir / RECORDING, "rt") as lines:
        for line in lines:
            last_ns, payload = parse_recorded_line(line)
            if payload.startswith('{"lastUpdateId"'):  # the REST depth snapshot, recorded after the socket opened
                events += adapter.on_snapshot(SnapshotRequest("BTCUSDT", "recorded"), orjson.loads(payload), last_ns)
            else:
                events += adapter.on_frame(payload, last_ns)
    return events + adapter.on_disconnect(last_ns + 1_000_000)


@dataclass
class Streamed:
    settings: Settings
    events: list[object]
    closed: list[OHLC]
    stats: SinkStats
    outage_write_s: float  # how long the first write issued while the broker was down took


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker of this module's own: the test stops and restarts it."""
    home = Path(os.environ.get("MARKETLAKE_HOME", REPO_ROOT / ".marketlake"))
    broker = KafkaBroker(home=home, data_dir=tmp_path_factory.mktemp("live-kafka"), port=free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory, own_broker: KafkaBroker, data_dir: Path) -> Streamed:
    """Every live event of the recording written through the sink, the broker restarted half-way."""
    settings = make_settings(tmp_path_factory.mktemp("live-home"), own_broker.bootstrap,
                             live_book_snapshot_seconds=float(SNAPSHOT_S), live_book_snapshot_levels=LEVELS)  # fmt: skip
    ensure_topics(settings.kafka_bootstrap, all_topics(settings))
    events = live_events(data_dir)
    batches = [events[i : i + WRITE_BATCH] for i in range(0, len(events), WRITE_BATCH)]
    processor = StreamProcessor([1, 60])
    closed_all: list[OHLC] = []

    async def main() -> tuple[float, SinkStats]:
        sink = KafkaSink(settings, timeout_s=90)
        outage = 0.0
        for i, batch in enumerate(batches):
            restart = None
            if i == len(batches) // 2:
                await asyncio.to_thread(own_broker.stop)  # everything written so far was acknowledged
                restart = asyncio.create_task(asyncio.to_thread(own_broker.start))
            started = time.monotonic()
            await sink.write(batch)  # while the broker is down: resolves only once it is back and has acked
            if restart is not None:
                outage = time.monotonic() - started
                assert restart.done(), "a write resolved before the broker was back"
                await restart
            _, closed = processor.process(batch)
            closed_all.extend(closed)
            await sink.write(closed)
        sink.close()
        return outage, sink.stats

    outage, stats = asyncio.run(main())
    return Streamed(settings, events, closed_all, stats, outage)


def watermarks(consumer: Consumer, tp: TopicPartition) -> tuple[int, int]:
    """(low, high), waiting out NOT_LEADER_FOR_PARTITION while a just-created topic elects its leaders."""
    deadline = time.monotonic() + 30
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            return int(low), int(high)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.NOT_LEADER_FOR_PARTITION or time.monotonic() > deadline:
                raise
        time.sleep(0.1)  # polling the broker's leader election; not test synchronisation


def read_topic(settings: Settings, kind: str) -> list[object]:
    """Every record of one live topic, decoded, partition by partition."""
    topic = live_topic(settings, kind)
    consumer = Consumer(consumer_config(settings, f"check-{kind}"))
    out: list[object] = []
    try:
        for p in range(settings.kafka_live_partitions):
            low, high = watermarks(consumer, TopicPartition(topic, p))
            consumer.assign([TopicPartition(topic, p, low)])
            position, deadline = low, time.monotonic() + 30
            while position < high:
                assert time.monotonic() < deadline, f"{topic}:{p}: read stuck at {position} of {high}"
                for msg in consumer.consume(1000, timeout=1):
                    assert msg.error() is None, msg.error()
                    position = (msg.offset() or 0) + 1
                    out.append(codec.decode_record(msg.value()))
    finally:
        consumer.close()
    return out


def test_kafka_holds_exactly_the_parsed_trades_across_a_broker_restart(streamed: Streamed, data_dir: Path) -> None:
    parsed = parsed_trades(data_dir)
    in_kafka = read_topic(streamed.settings, "trades")
    ids = [t.trade_id for t in in_kafka if isinstance(t, Tick)]
    print(f"\nparsed trades {len(parsed)}; in Kafka {len(in_kafka)} ({len(set(ids))} distinct); sink {streamed.stats}; "
          f"first write during the outage waited {streamed.outage_write_s:.1f}s for the restarted broker")  # fmt: skip
    assert len(in_kafka) == len(parsed) == 9757
    assert sorted(ids, key=int) == [t.trade_id for t in parsed]  # each once, none lost, none doubled
    assert in_kafka and {t for t in in_kafka if isinstance(t, Tick)} == set(parsed)  # field for field
    books = [e for e in streamed.events if isinstance(e, BookUpdate)]
    assert len(read_topic(streamed.settings, "books")) == len(books)
    assert len(read_topic(streamed.settings, "ohlc")) == len(streamed.closed) > 0
    assert streamed.stats.failed == 0 and streamed.stats.acked == streamed.stats.written


def tick_sensor(defs: object, instance: DagsterInstance, name: str, cursor: str | None = None) -> SensorResult:
    with build_sensor_context(instance=instance, cursor=cursor, definitions=defs,  # type: ignore[arg-type]
                              resources=defs.resources) as context:  # type: ignore[attr-defined]  # fmt: skip
        result = defs.resolve_sensor_def(name)(context)  # type: ignore[attr-defined]
    assert isinstance(result, SensorResult)
    return result


def expected_snapshots(updates: list[BookUpdate], every_ns: int) -> dict[int, Sides]:
    """Independent of the sampler: for each grid time b passed after the sync, the book of every update before b."""
    sync = next(i for i, u in enumerate(updates) if u.snapshot)
    times = [u.exchange_time_ns or u.receive_time_ns for u in updates]
    grid_times = sorted({t - t % every_ns for t in times[sync + 1 :]} - {times[sync] - times[sync] % every_ns})
    book, applied = OrderBook(TICKER), sync
    out: dict[int, Sides] = {}
    book.apply_snapshot([(x.price, x.size) for x in updates[sync].bids], [(x.price, x.size) for x in updates[sync].asks])
    for b in grid_times:
        while applied + 1 < len(updates) and times[applied + 1] < b:
            applied += 1
            book.apply_delta(
                [(x.price, x.size) for x in updates[applied].bids], [(x.price, x.size) for x in updates[applied].asks]
            )
        bids, asks = book.top(LEVELS)
        out[b // 1000] = ([(x.price, x.size) for x in bids], [(x.price, x.size) for x in asks])
    return out


def test_live_events_sensor_writes_every_table_once(streamed: Streamed, data_dir: Path) -> None:
    s = streamed.settings
    defs = build_definitions(s)
    instance = DagsterInstance.ephemeral()
    first = tick_sensor(defs, instance, "live_events_sensor")
    assert first.run_requests is not None and len(first.run_requests) == 1
    request = first.run_requests[0]
    assert isinstance(request, RunRequest)
    job = defs.resolve_job_def(LIVE_JOB)
    started = time.monotonic()
    assert job.execute_in_process(run_config=request.run_config, instance=instance).success
    run_s = time.monotonic() - started

    catalog = load_catalog(s)
    trades = trades_table(catalog).scan().to_arrow()
    keys = set(zip(trades.column("ticker").to_pylist(), trades.column("trade_id").to_pylist(), strict=True))
    parsed = parsed_trades(data_dir)
    print(f"\nrun wrote {trades.num_rows} trades ({len(keys)} distinct) in {run_s:.1f}s; parsed {len(parsed)}")
    assert trades.num_rows == len(keys) == len(parsed)
    assert set(trades.column("source").to_pylist()) == {"websocket"}
    assert keys == {(TICKER, t.trade_id) for t in parsed}

    # Caught up: the next tick asks for nothing. Running the same range again, and everything from offset 0
    # (a lost commit), adds no row.
    assert not tick_sensor(defs, instance, "live_events_sensor", first.cursor).run_requests
    again = job.execute_in_process(run_config=request.run_config, instance=instance)
    config = request.run_config["ops"][LIVE_OP]["config"]
    from_zero = {"ops": {LIVE_OP: {"config": {"ranges": [{**r, "start_offset": 0} for r in config["ranges"]]}}}}
    assert again.success and job.execute_in_process(run_config=from_zero, instance=instance).success
    assert trades_table(load_catalog(s)).scan().to_arrow().num_rows == len(parsed)

    # Tick-built candles, source websocket, equal to candles computed offline (the last minute never closed).
    ohlc = ohlc_table(catalog).scan().to_arrow().to_pylist()
    minutes = sorted((r for r in ohlc if r["period_seconds"] == 60), key=lambda r: r["open_time"])
    offline = candles_from_trades(parsed, 60)[:-1]
    print(f"candles: {len(minutes)} 1m + {sum(r['period_seconds'] == 1 for r in ohlc)} 1s closed, websocket")
    assert {r["source"] for r in ohlc} == {"websocket"} and len(ohlc) == len(streamed.closed)
    assert [(int(r["open_time"].timestamp() * 1e6), r["open"], r["high"], r["low"], r["close"], r["volume"],
             r["trade_count"]) for r in minutes] == [
        (c.open_time, Decimal(c.open), Decimal(c.high), Decimal(c.low), Decimal(c.close), Decimal(c.volume),
         c.trade_count) for c in offline]  # fmt: skip

    # Book snapshots every 10 s of exchange time, each the book of every update before its grid time.
    rows = book_snapshots_table(catalog).scan().to_arrow().to_pylist()
    stored: dict[int, tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]] = {}
    for r in sorted(rows, key=lambda r: (r["snapshot_time"], r["side"], r["level"])):
        sides = stored.setdefault(int(r["snapshot_time"].timestamp() * 1e6), ([], []))
        sides[0 if r["side"] == "bid" else 1].append((r["price"], r["size"]))
    books = [e for e in streamed.events if isinstance(e, BookUpdate)]
    expected = expected_snapshots(books, SNAPSHOT_S * 1_000_000_000)
    print(f"book snapshots: {len(stored)} times, {len(rows)} level rows; sink sampled {streamed.stats.snapshots}")
    assert len(stored) == len(expected) == streamed.stats.snapshots > 30
    for at, (bids, asks) in expected.items():
        assert stored[at] == ([(Decimal(p), Decimal(q)) for p, q in bids], [(Decimal(p), Decimal(q)) for p, q in asks])

    # A heatmap per snapshot, the stream processor's own for that book.
    heat = heatmap_table(catalog).scan().to_arrow().to_pylist()
    last = max(expected)
    views = BookViews()
    bids, asks = expected[last]
    frame = [m for _t, m in views.on_update(BookUpdate(ticker=TICKER, snapshot=True, receive_time_ns=last * 1000,
                                                        bids=tuple(_lv(x) for x in bids), asks=tuple(_lv(x) for x in asks)))
             if isinstance(m, Heatmap)][0]  # fmt: skip
    stored_frame = sorted((r for r in heat if int(r["snapshot_time"].timestamp() * 1e6) == last), key=lambda r: r["price"])
    print(f"heatmap: {len(heat)} bucket rows over {len({r['snapshot_time'] for r in heat})} snapshots")
    assert len({r["snapshot_time"] for r in heat}) == len(expected)
    assert [(r["price"], r["bid_size"], r["ask_size"], r["intensity"]) for r in stored_frame] == [
        (Decimal(b.price), Decimal(b.bid_size), Decimal(b.ask_size), b.intensity) for b in frame.buckets
    ]
    assert all(0.0 <= r["intensity"] <= 1.0 for r in heat)


def _lv(level: tuple[str, str]) -> BookLevel:
    return BookLevel(*level)


def test_the_sessions_stream_gap_lands_in_market_gaps(streamed: Streamed) -> None:
    sent = [e for e in streamed.events if isinstance(e, StreamGap)]
    assert len(sent) == 1 and sent[0].how == "reconnect"
    defs = build_definitions(streamed.settings)
    tick_sensor(defs, DagsterInstance.ephemeral(), "live_gaps_sensor")
    rows = gaps.read_gaps(load_catalog(streamed.settings))
    print(f"\nmarket.gaps: {[(g.ticker, g.detected_by, g.status) for g in rows]}")
    assert [(g.ticker, g.detected_by, g.gap_start) for g in rows] == [(TICKER, "live:reconnect", sent[0].detected_at_ns // 1000)]


def test_an_unacknowledged_write_is_retried_and_then_reported_never_dropped(own_broker: KafkaBroker, tmp_path: Path) -> None:
    """Deliveries fail while the topics do not exist: the sink produces them again, and they land once the topics
    appear; with no topic ever, the write raises with every record counted as failed."""
    settings = make_settings(tmp_path / "home", own_broker.bootstrap)
    ticks = [Tick(ticker=TICKER, trade_id=str(i), price="1", size="1", exchange_time_ns=i + 1) for i in range(50)]
    sink = KafkaSink(settings, max_attempts=10, timeout_s=2)

    async def write_while_topics_appear() -> None:
        writing = asyncio.create_task(sink.write(ticks))
        deadline = time.monotonic() + 30
        while sink.stats.retried == 0:  # the first attempt's deliveries failed: no topic yet
            assert time.monotonic() < deadline and not writing.done(), f"no failed attempt: {sink.stats}"
            await asyncio.sleep(0.05)  # polling the sink's counters, with a deadline
        await asyncio.to_thread(ensure_topics, settings.kafka_bootstrap, all_topics(settings))
        await writing

    asyncio.run(write_while_topics_appear())
    print(f"\nretried then acked: {sink.stats}")
    assert sink.stats.failed == 0 and sink.stats.acked == len(ticks) and sink.stats.retried >= len(ticks)
    assert sorted(t.trade_id for t in read_topic(settings, "trades") if isinstance(t, Tick)) == sorted(t.trade_id for t in ticks)

    lost = KafkaSink(make_settings(tmp_path / "other", own_broker.bootstrap), max_attempts=2, timeout_s=1)
    with pytest.raises(LiveDeliveryError, match="50 live events not acknowledged by Kafka after 2 attempts"):
        asyncio.run(lost.write(ticks))
    print(f"never acked: {lost.stats}")
    assert lost.stats.failed == len(ticks) and lost.stats.acked == 0 and lost.stats.retried == len(ticks)  # once, after attempt 1


def test_the_sampler_says_nothing_of_a_book_between_its_gap_and_its_resync() -> None:
    sampler = BookSampler(every_ns=1_000, levels=1)
    bid = (BookLevel("10", "1"),)
    feed = [BookUpdate(ticker=TICKER, snapshot=True, bids=bid, exchange_time_ns=500),
            BookUpdate(ticker=TICKER, bids=(BookLevel("11", "2"),), exchange_time_ns=1_500),  # due: grid 1000
            StreamGap(exchange="BINANCE", ticker=TICKER, detected_at_ns=1_600, how="sequence_jump"),
            BookUpdate(ticker=TICKER, bids=(BookLevel("12", "3"),), exchange_time_ns=2_500),  # book unknown: nothing
            BookUpdate(ticker=TICKER, snapshot=True, bids=bid, exchange_time_ns=3_500),
            BookUpdate(ticker=TICKER, bids=(BookLevel("9", "1"),), exchange_time_ns=4_200)]  # fmt: skip
    out = [(s.exchange_time_ns, s.bids) for e in feed if (s := sampler.on_event(e)) is not None]
    assert out == [(1_000, bid), (4_000, bid)]


def test_live_trades_inside_stored_rest_history_are_not_stored_twice(tmp_path: Path, data_dir: Path) -> None:
    """Binance REST history is aggTrades, the live feed raw trades (other ids): within the span REST already wrote,
    live trades are dropped; after it they fill in; a later REST batch over their range replaces them."""
    ticks = parsed_trades(data_dir)[:2000]
    table = trades_table(load_catalog(make_settings(tmp_path, "127.0.0.1:1")))
    split = ticks[1000].exchange_time_ns // 1000  # REST history ends here
    rest = live_rows([LiveRecord("rest", 0, i, t) for i, t in enumerate(ticks) if t.exchange_time_ns // 1000 < split],
                     "rest-batch").tables()["trades"]  # fmt: skip
    rest = rest.set_column(rest.schema.get_field_index("trade_id"), "trade_id",
                           pa.array([f"agg-{i}" for i in range(rest.num_rows)]))  # fmt: skip
    rest = rest.set_column(rest.schema.get_field_index("source"), "source", pa.array(["rest"] * rest.num_rows))
    start_us = ticks[0].exchange_time_ns // 1000
    write_trades_batch(table, rest, TICKER, start_us, split, {})

    live = live_rows([LiveRecord("live", 0, i, t) for i, t in enumerate(ticks)], "live-batch").tables()["trades"]
    written = append_new(table, live, TRADES_KEY, "trade_time", {})
    after_rest = [t for t in ticks if t.exchange_time_ns // 1000 > rest.column("trade_time")[-1].value]
    stored = table.scan().to_arrow()
    print(f"\nREST {rest.num_rows} aggTrades, live {live.num_rows} trades: {written} live rows stored")
    assert written == len(after_rest) > 0 and stored.num_rows == rest.num_rows + written
    assert sorted(stored.filter(pc.equal(stored.column("source"), "websocket")).column("trade_id").to_pylist()) == \
        sorted(t.trade_id for t in after_rest)

    end_us = ticks[-1].exchange_time_ns // 1000 + 1  # REST catches up over the whole range: the live rows go
    write_trades_batch(table, rest, TICKER, start_us, end_us, {})
    assert set(table.scan().to_arrow().column("source").to_pylist()) == {"rest"}
