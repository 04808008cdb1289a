"""CEP triggers: the engine fires exactly at the crossings computed here from recorded prices; the relay
acknowledges a registration only once it is durable in Kafka, and refuses a bad one with the reason."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import zmq
from confluent_kafka import Consumer, TopicPartition

from ingestors.binance.parse import parse_trade_event
from ingestors.binance.recording import load_recordings
from live_relay import codec
from live_relay.cep import CepEngine
from live_relay.messages import CEPTriggerAck, CEPTriggerRequest, Status, Tick, TriggerKind
from live_relay.relay import Relay
from live_relay.validation import RequestError
from marketlake.kafka_topics import cep_topic
from marketlake.settings import Settings

BTC = "BINANCE:BTC/USDT"


def recorded_ticks(data_dir: Path) -> list[Tick]:
    rec = load_recordings(data_dir)["BTCUSDT"]
    return [parse_trade_event(orjson.loads(f.data_text()), BTC) for f in rec.frames if f.stream.endswith("@trade")]


def offline_crossings(prices: list[Decimal], level: Decimal) -> list[int]:
    """Indexes of the trades at which the price reaches or passes `level` from the other side."""
    return [i for i in range(1, len(prices))
            if min(prices[i - 1], prices[i]) <= level <= max(prices[i - 1], prices[i]) and prices[i - 1] != level]  # fmt: skip


def test_price_cross_fires_exactly_at_the_recorded_crossings(data_dir: Path) -> None:
    ticks = recorded_ticks(data_dir)
    prices = [Decimal(t.price) for t in ticks]
    level = sorted(prices)[len(prices) // 2]  # the median price: crossed many times in the recording
    engine = CepEngine()
    engine.register(CEPTriggerRequest("t1", "c1", BTC, TriggerKind.PRICE_CROSS, str(level)))
    engine.register(CEPTriggerRequest("once", "c2", BTC, TriggerKind.PRICE_CROSS, str(level), once=True))
    fired: dict[str, list[int]] = {"t1": [], "once": []}
    for i, tick in enumerate(ticks):
        for topic, event in engine.on_tick(tick):
            fired[event.trigger_id].append(i)
            assert (topic, event.ticker, event.value) == (f"RESPONSE:{'c1' if event.trigger_id == 't1' else 'c2'}",
                                                          BTC, tick.price)  # fmt: skip
    expected = offline_crossings(prices, level)
    assert fired["t1"] == expected and len(expected) > 10
    assert fired["once"] == expected[:1] and len(engine) == 1
    print(f"level {level}: {len(expected)} crossings in {len(ticks)} recorded trades")


def test_volume_over_window_fires_when_the_sum_crosses_above_and_rearms() -> None:
    engine = CepEngine()
    engine.register(CEPTriggerRequest("v", "c", BTC, TriggerKind.VOLUME_OVER_WINDOW, "1.0", window_seconds=10))
    s = 1_000_000_000
    sizes = [(0, "0.4"), (1, "0.4"), (2, "0.3"), (3, "0.1"), (14, "0.1"), (20, "0.6"), (21, "0.5")]
    fired = [t for t, size in sizes
             if engine.on_tick(Tick(ticker=BTC, trade_id=str(t), price="1", size=size, exchange_time_ns=t * s))]
    # 0.4+0.4+0.3 = 1.1 > 1 at t=2 (fires); still above at 3; at 14 the window (4, 14] holds 0.1 (re-armed);
    # at 21 the window (11, 21] holds 0.1+0.6+0.5 = 1.2 (fires again)
    assert fired == [2, 21]


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"ticker": "NOPE:BTC/USDT"}, "unknown exchange"),
    ({"level": "abc"}, "not a decimal"),
    ({"level": "-1"}, "positive"),
    ({"kind": TriggerKind.VOLUME_OVER_WINDOW, "window_seconds": 0}, "window_seconds"),
    ({"trigger_id": "a|b"}, "trigger_id"),
])  # fmt: skip
def test_bad_trigger_is_refused_with_the_reason(settings: Settings, relay: Relay, overrides: dict, reason: str) -> None:
    values = {"trigger_id": "t", "client_id": "c", "ticker": BTC, "kind": TriggerKind.PRICE_CROSS, "level": "60000"}
    ack = register(settings, CEPTriggerRequest(**{**values, **overrides}))
    assert ack.status == Status.ERROR and reason in ack.error_message, ack
    with pytest.raises(RequestError, match=reason):
        CepEngine().register(CEPTriggerRequest(**{**values, **overrides}))


def register(settings: Settings, req: CEPTriggerRequest) -> CEPTriggerAck:
    with zmq.Context.instance().socket(zmq.REQ) as sock:
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(settings.relay_endpoint(settings.client_port))
        sock.send_multipart(codec.encode(req))
        assert sock.poll(15_000), "relay did not answer within 15 s"
        reply = codec.decode(sock.recv_multipart())
    assert isinstance(reply, CEPTriggerAck)
    return reply


def test_registration_is_acknowledged_once_durable_in_kafka(settings: Settings, relay: Relay) -> None:
    req = CEPTriggerRequest("t-ok", "client-7", BTC, TriggerKind.PRICE_CROSS, "61830.5", once=True)
    ack = register(settings, req)
    assert (ack.trigger_id, ack.status, ack.notification_topic) == ("t-ok", Status.OK, "RESPONSE:client-7")
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "cep-test"})
    consumer.assign([TopicPartition(cep_topic(settings), 0, 0)])
    [record] = consumer.consume(1, timeout=10)
    consumer.close()
    assert codec.decode_record(record.value()) == req
