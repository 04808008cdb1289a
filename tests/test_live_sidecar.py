"""The live process end to end: replay server → websocket feeds → bus → Kafka and stream processor → relay → subscriber.

Real Kafka (session broker), a real relay, the Binance, Kraken and Coinbase replay servers
in deterministic mode and the real recordings (Binance BTCUSDT and ETHUSDT,
Kraken XBT/CHF, ETH/CHF, XMR/USD, Coinbase BTC-USD, ETH-USD), streamed at once. A subscriber
on the relay gets every tick, the closed 1-minute candles equal the candles
computed here from the recorded trades, the BBO world view changes exactly when
the recorded best bid/ask change, and Kafka holds exactly the parsed trades.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import zmq
from confluent_kafka import Consumer, TopicPartition

from ingestors.binance.recording import Recording, load_recordings
from ingestors.binance.replay import ReplayServer
from ingestors.replay.exchanges import replay_for
from ingestors.replay.server import ReplayServer as RecordedReplayServer
from live_relay import codec
from live_relay.live import LiveProcess
from live_relay.messages import OHLC, BboWorldView, CEPTriggerEvent, CEPTriggerRequest, Status, Tick, TriggerKind
from live_relay.relay import Relay
from live_relay.sidecar_config import load_sidecar_config
from marketlake.kafka_broker import free_port
from marketlake.kafka_topics import live_topic
from marketlake.settings import Settings

from .test_cep import offline_crossings, register
from .test_coinbase_live import recorded as coinbase_recorded
from .test_kraken_live import recorded as kraken_recorded

TICKERS = ["BINANCE:BTC/USDT", "BINANCE:ETH/USDT"]
KRAKEN = ["KRAKEN:BTC/CHF", "KRAKEN:ETH/CHF", "KRAKEN:XMR/USD"]
COINBASE = ["COINBASE:BTC/USD", "COINBASE:ETH/USD"]
TOPICS = [f"{t}|{kind}" for t in TICKERS for kind in ("tick", "ohlc:60")] + ["BTC/USDT|bbo", "ETH/USDT|bbo"] + \
    [f"{t}|tick" for t in KRAKEN + COINBASE] + [f"{t}|book" for t in KRAKEN] + ["BTC/USD|bbo", "ETH/USD|bbo"] + \
    ["RESPONSE:cep-client"]


def offline_candles(rec: Recording) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal, int]]:
    """1-minute candles of the recorded trades, computed here: (open time µs, o, h, l, c, volume, trades)."""
    minutes: dict[int, list[dict]] = defaultdict(list)
    for t in rec.trades:
        minutes[t["T"] // 60_000].append(t)
    out = []
    for minute in sorted(minutes):
        ts = minutes[minute]
        prices = [Decimal(t["p"]) for t in ts]
        out.append((minute * 60_000_000, prices[0], max(prices), min(prices), prices[-1],
                    sum(Decimal(t["q"]) for t in ts), len(ts)))  # fmt: skip
    return out


def offline_best_changes(rec: Recording) -> list[tuple[str, str]]:
    """(best bid, best ask) prices each time the recorded bookTicker's best changes (one venue per pair here)."""
    out: list[tuple[str, str]] = []
    for f in rec.frames:
        if f.stream.endswith("@bookTicker"):
            d = orjson.loads(f.data_text())
            if not out or out[-1] != (d["b"], d["a"]):
                out.append((d["b"], d["a"]))
    return out


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    kraken, coinbase = free_port(), free_port()
    return settings.model_copy(update={"live_tickers": TICKERS + KRAKEN + COINBASE, "live_health_port": free_port(),
                                       "live_candle_periods": [60], "kraken_ws_url": f"ws://127.0.0.1:{kraken}/",
                                       "kraken_rest_url": f"http://127.0.0.1:{kraken}",
                                       "coinbase_ws_url": f"ws://127.0.0.1:{coinbase}/",
                                       "coinbase_rest_url": f"http://127.0.0.1:{coinbase}"})  # fmt: skip


def test_replayed_feeds_reach_subscribers_candles_and_world_view_match_offline_and_kafka_holds_every_trade(
    live_settings: Settings, relay: Relay, data_dir: Path
) -> None:
    s = live_settings
    recs = load_recordings(data_dir)
    want_ticks = {f"BINANCE:{sym[:-4]}/USDT": len(r.trades) for sym, r in recs.items()}
    kraken_trades, _tops, kraken_books = kraken_recorded(data_dir)
    want_ticks |= {t: len(kraken_trades[t]) for t in KRAKEN if kraken_trades[t]}
    coinbase_trades, coinbase_events, _books = coinbase_recorded(data_dir)
    want_ticks |= {t: len(coinbase_trades[t]) for t in COINBASE}
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(s.relay_endpoint(s.xpub_port))
    for topic in TOPICS:
        sub.subscribe(topic.encode())
    received: dict[str, list] = defaultdict(list)
    btc_prices = [Decimal(t["p"]) for t in recs["BTCUSDT"].trades]
    level = sorted(btc_prices)[len(btc_prices) // 2]
    ack = register(s, CEPTriggerRequest("cross-median", "cep-client", "BINANCE:BTC/USDT", TriggerKind.PRICE_CROSS,
                                        str(level)))  # fmt: skip
    assert (ack.status, ack.notification_topic) == (Status.OK, "RESPONSE:cep-client")
    process = LiveProcess(s, load_sidecar_config(s))
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    kraken = RecordedReplayServer(replay_for("KRAKEN"), data_dir, deterministic=True)
    coinbase = RecordedReplayServer(replay_for("COINBASE"), data_dir, deterministic=True)
    with ReplayServer(data_dir, deterministic=True).running(port=s.sim_port), \
            kraken.running(port=int(s.kraken_rest_url.rsplit(":", 1)[1])), \
            coinbase.running(port=int(s.coinbase_rest_url.rsplit(":", 1)[1])):
        runner = threading.Thread(target=lambda: loop.run_until_complete(process.run(stop)), name="live")
        runner.start()
        try:
            ticks = Counter[str]()
            while any(ticks[t] < n for t, n in want_ticks.items()):
                assert sub.poll(30_000), f"the stream went quiet: {dict(ticks)} of {want_ticks}"
                topic, msg = codec.decode_sub(sub.recv_multipart())
                received[topic].append(msg)
                if isinstance(msg, Tick):
                    ticks[msg.ticker] += 1
            while sub.poll(2000):  # the last world views and candle updates after the last tick
                topic, msg = codec.decode_sub(sub.recv_multipart())
                received[topic].append(msg)
        finally:
            loop.call_soon_threadsafe(stop.set)
            runner.join(60)
            sub.close()
            ctx.term()
    assert not runner.is_alive()

    events = [e for e in received["RESPONSE:cep-client"] if isinstance(e, CEPTriggerEvent)]
    crossings = offline_crossings(btc_prices, level)
    assert [e.value for e in events] == [recs["BTCUSDT"].trades[i]["p"] for i in crossings] and crossings
    assert [e.detail.rsplit("trade ", 1)[1].rstrip(")") for e in events] == [
        str(recs["BTCUSDT"].trades[i]["t"]) for i in crossings]
    print(f"CEP: {len(events)} crossings of {level} delivered, as computed offline")
    kraken_updates = sum(len(received[f"{t}|book"]) for t in KRAKEN)
    assert kraken_updates == kraken_books  # every recorded book frame of these pairs, checksum-verified, published
    assert {t: [(x.price, x.size) for x in received[f"{t}|tick"]] for t in KRAKEN} == kraken_trades
    assert {t: [(x.trade_id, x.price, x.size) for x in received[f"{t}|tick"]] for t in COINBASE} == coinbase_trades
    for pair in ("BTC/USD", "ETH/USD"):  # Coinbase's ticker is the only venue of these pairs here
        views = [v for v in received[f"{pair}|bbo"] if isinstance(v, BboWorldView)]
        assert views and all(v.best_bid_ticker == f"COINBASE:{pair}" for v in views)
    for sym, rec in recs.items():
        ticker = f"BINANCE:{sym[:-4]}/USDT"
        got_ticks = received[f"{ticker}|tick"]
        assert [t.trade_id for t in got_ticks] == [str(t["t"]) for t in rec.trades]
        closed = [c for c in received[f"{ticker}|ohlc:60"] if isinstance(c, OHLC) and c.closed]
        expected = offline_candles(rec)[:-1]  # the last minute is still open when the recording ends
        assert [(c.open_time, Decimal(c.open), Decimal(c.high), Decimal(c.low), Decimal(c.close), Decimal(c.volume),
                 c.trade_count) for c in closed] == expected  # fmt: skip
        views = [v for v in received[f"{sym[:-4]}/USDT|bbo"] if isinstance(v, BboWorldView)]
        assert [(v.best_bid_price, v.best_ask_price) for v in views] == offline_best_changes(rec)
        assert all(v.best_bid_ticker == v.best_ask_ticker == ticker and not v.crossed for v in views)
        print(f"{ticker}: {len(got_ticks)} ticks, {len(closed)} closed candles, {len(views)} world-view changes")

    consumer = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": "count", "enable.auto.commit": False})
    topic = live_topic(s, "trades")
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    in_kafka: Counter[str] = Counter()
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        consumer.assign([TopicPartition(topic, p, low)])
        while low < high:
            for record in consumer.consume(1000, timeout=10):
                in_kafka[codec.decode_record(record.value()).ticker] += 1  # type: ignore[union-attr]
                low = record.offset() + 1
    consumer.close()
    assert dict(in_kafka) == want_ticks  # every parsed trade is in Kafka, none twice
    assert process.processor.stats.ticks == sum(want_ticks.values())
    assert process.sink is not None and process.sink.stats.failed == 0
    print(f"kafka live.trades: {dict(in_kafka)}")
