"""Live gap events reach market.gaps: the Kafka live.gaps topic, read by live_gaps_sensor, recorded once each."""

from __future__ import annotations

import asyncio

from dagster import DagsterInstance, SensorResult, build_sensor_context

from ingestors.live.kafka_sink import KafkaSink
from live_relay.messages import StreamGap, Tick
from marketlake.kafka_broker import ensure_topics
from marketlake.kafka_topics import all_topics
from marketlake.settings import Settings
from marketlake.storage import gaps
from marketlake.storage.iceberg_tables import load_catalog
from orchestration.definitions import build_definitions

BTC, ETH = "BINANCE:BTC/USDT", "BINANCE:ETH/USDT"


def tick(settings: Settings, cursor: str | None) -> SensorResult:
    defs = build_definitions(settings)
    with build_sensor_context(instance=DagsterInstance.ephemeral(), cursor=cursor, definitions=defs,
                              resources=defs.resources) as context:  # fmt: skip
        result = defs.resolve_sensor_def("live_gaps_sensor")(context)
    assert isinstance(result, SensorResult)
    return result


def test_live_gap_events_are_recorded_once_as_resynced_book_gaps(settings: Settings) -> None:
    ensure_topics(settings.kafka_bootstrap, all_topics(settings))
    events = [
        StreamGap(exchange="BINANCE", ticker=BTC, detected_at_ns=1_723_161_600_123_456_789, how="sequence_jump",
                  last_seen=100, first_missing=101, next_received=109, detail="BTCUSDT: depth event U=109"),
        Tick(ticker=BTC, trade_id="1", price="1", size="1"),  # another kind: goes to live.trades, not here
        StreamGap(exchange="BINANCE", ticker=ETH, detected_at_ns=1_723_161_601_000_000_000, how="reconnect",
                  last_seen=7, first_missing=8, detail="ETHUSDT: connection lost"),
    ]  # fmt: skip
    sink = KafkaSink(settings)
    asyncio.run(sink.write(events))
    sink.close()

    first = tick(settings, None)
    assert "recorded 2 live gaps" in (first.skip_reason.skip_message if first.skip_reason else "")
    rows = sorted(gaps.read_gaps(load_catalog(settings)), key=lambda g: g.ticker)
    assert [(g.ticker, g.data_type, g.detected_by, g.status, g.repair_method) for g in rows] == [
        (BTC, "book", "live:sequence_jump", "repaired", "live_resync"),
        (ETH, "book", "live:reconnect", "repaired", "live_resync")]
    assert rows[0].gap_start == rows[0].detected_at == 1_723_161_600_123_456 and rows[0].gap_end == rows[0].gap_start + 1
    assert "next_received=109" in (rows[0].detail or "") and "U=109" in (rows[0].detail or "")
    assert gaps.open_gaps(load_catalog(settings)) == []  # nothing for the REST repair sensor to do

    again = tick(settings, first.cursor)  # nothing new after the cursor
    assert "recorded 0 live gaps" in (again.skip_reason.skip_message if again.skip_reason else "")
    reread = tick(settings, None)  # a lost cursor reads everything again: still one row per event
    assert "recorded 0 live gaps in market.gaps (2 known)" in (reread.skip_reason.skip_message if reread.skip_reason else "")
    assert len(gaps.read_gaps(load_catalog(settings))) == 2
