"""`marketlake live`: every configured exchange's websocket feed, the stream processor and the Kafka writer.

One asyncio process (seed 004's layers):
  connection (ingestors/live/connection.py, one task per exchange)
    → event bus (live_relay/bus.py)
      → "kafka"  required: every event to Kafka, acks=all (ingestors/live/kafka_sink.py)
      → "stream" required: candles, world view, ... (live_relay/stream.py) → relay XSUB
Both subscribers are required: a slow broker or processor slows the feeds rather
than losing anything. GET /health and /metrics on MARKETLAKE_LIVE_HEALTH_PORT.
SIGINT/SIGTERM: feeds stop, the bus drains (everything read is written to Kafka
and published), then the process exits 0.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import time
from typing import Any

import zmq
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from ingestors.live.adapter import LiveAdapter
from ingestors.live.connection import LiveConnection
from ingestors.live.kafka_sink import KafkaSink
from live_relay import codec
from live_relay.bus import BusDrainTimeout, EventBus, Subscription
from live_relay.health import HealthServer
from live_relay.messages import CEPTriggerRequest
from live_relay.sidecar_config import ExchangeConfig, SidecarConfig, load_sidecar_config
from live_relay.stream import Publication, StreamProcessor
from live_relay.validation import RequestError
from marketlake.kafka_broker import ensure_topics
from marketlake.kafka_topics import all_topics, cep_topic, consumer_config
from marketlake.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["ADAPTERS", "LiveProcess", "RelayPublisher", "adapter_for", "run_live"]

# Exchanges with a live adapter: "module:class", constructed as cls(tickers, ws_url, rest_url).
ADAPTERS: dict[str, str] = {
    "BINANCE": "ingestors.binance.live:BinanceLive",
    "COINBASE": "ingestors.coinbase.live:CoinbaseLive",
    "KRAKEN": "ingestors.kraken.live:KrakenLive",
    "OKX": "ingestors.okx.live:OkxLive",
    "BYBIT": "ingestors.bybit.live:BybitLive",  # one category per URL: spot by default (MARKETLAKE_BYBIT_WS_URL)
    "HUOBI": "ingestors.huobi.live:HuobiLive",
    "GATEIO": "ingestors.gateio.live:GateioLive",
    "KUCOIN": "ingestors.kucoin.live:KucoinLive",
    "BITFINEX": "ingestors.bitfinex.live:BitfinexLive",
    "MEXC": "ingestors.mexc.live:MexcLive",
}
BATCH = 2048  # events a bus reader takes at once ([] once the bus has closed and its queue is drained)
SUBSCRIPTION_WAIT_S = 2.0  # at start, wait this long at most for the relay to pass on current subscriptions


class UnsupportedLiveExchangeError(ValueError):
    """No live adapter exists for the exchange."""


def adapter_for(exchange: str, config: ExchangeConfig) -> LiveAdapter:
    if exchange not in ADAPTERS:
        raise UnsupportedLiveExchangeError(f"no live adapter for {exchange} yet; available: {', '.join(sorted(ADAPTERS))}")
    module, _, name = ADAPTERS[exchange].partition(":")
    cls = getattr(importlib.import_module(module), name)
    adapter: LiveAdapter = cls(config.tickers, config.ws_url, config.rest_url)
    return adapter


class RelayPublisher:
    """Publishes (topic, message) to the relay's XSUB. An XPUB, so it can see the subscriptions arrive."""

    def __init__(self, settings: Settings) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.SNDHWM, 1_000_000)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.sock.connect(settings.relay_endpoint(settings.xsub_port))
        self.published = 0

    def await_subscriptions(self, timeout_s: float) -> int:
        """Read the subscriptions the relay passes on at connect (so early publications reach their subscribers)."""
        seen, deadline = 0, time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0 and self.sock.poll(int(left * 1000) if not seen else 50):
            seen += self.sock.recv()[:1] == b"\x01"
        return seen

    def publish(self, publications: list[Publication]) -> None:
        for topic, msg in publications:
            self.sock.send_multipart(codec.encode_pub(topic, msg))
        self.published += len(publications)
        while self.sock.poll(0):  # subscriptions arriving later: consumed so the socket's queue stays empty
            self.sock.recv()

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


class TriggerFeed:
    """CEP trigger registrations from Kafka (the relay made them durable there), read from the beginning."""

    def __init__(self, settings: Settings) -> None:
        self.topic = cep_topic(settings)
        self.consumer = Consumer(consumer_config(settings, f"{settings.kafka_topic_prefix}live.cep"))
        self.consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])

    def read(self, timeout: float) -> list[CEPTriggerRequest]:
        out = []
        for record in self.consumer.consume(500, timeout=timeout):
            if record.error() is not None:
                continue
            try:
                msg = codec.decode_record(record.value())
            except codec.FrameError as exc:
                log.warning("undecodable CEP registration skipped: %s", exc)
                continue
            if isinstance(msg, CEPTriggerRequest):
                out.append(msg)
        return out

    def read_existing(self) -> list[CEPTriggerRequest]:
        """Every registration made so far (up to the high watermark at call time)."""
        _low, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10)
        out: list[CEPTriggerRequest] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            position = self.consumer.position([TopicPartition(self.topic, 0)])[0].offset
            if position >= high:
                break
            out += self.read(1.0)
        return out

    def close(self) -> None:
        self.consumer.close()


class LiveProcess:
    def __init__(self, settings: Settings, config: SidecarConfig) -> None:
        self.settings, self.config = settings, config
        self.bus: EventBus[Any] = EventBus()
        self.processor = StreamProcessor(config.candle_periods, heatmap_buckets=config.heatmap_bucket)
        self.conns: dict[str, LiveConnection] = {}
        self.sink: KafkaSink | None = None
        self.publisher: RelayPublisher | None = None
        self.started = time.time()

    def health(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "uptime_s": round(time.time() - self.started, 1),
            "exchanges": {ex: c.stats.to_dict() for ex, c in self.conns.items()},
            "bus": {name: {"delivered": st.taken, "dropped": st.dropped, "backlog": st.queued - st.taken}
                    for name, st in self.bus.stats().items()},  # fmt: skip
            "stream": {k: v for k, v in vars(self.processor.stats).items() if k != "sequences"},
            "published": self.publisher.published if self.publisher else 0,
            "cep": {"triggers": len(self.processor.cep), "fired": self.processor.cep.fired},
        }
        if self.sink is not None:
            report["kafka"] = vars(self.sink.stats)
        return report

    async def _to_kafka(self, sub: Subscription[Any]) -> None:
        assert self.sink is not None
        while batch := await sub.get_batch(BATCH):
            await self.sink.write(batch)

    async def _to_stream(self, sub: Subscription[Any]) -> None:
        assert self.sink is not None and self.publisher is not None
        while batch := await sub.get_batch(BATCH):
            publications, closed = self.processor.process(batch)
            self.publisher.publish(publications)
            if closed:
                await self.sink.write(closed)  # tick-built candles are kept too (live.ohlc)

    def _register(self, requests: list[CEPTriggerRequest]) -> None:
        for req in requests:
            try:
                self.processor.cep.register(req)
            except RequestError as exc:  # the relay validated it; a different version may not have
                log.warning("CEP trigger %s not registered: %s", req.trigger_id, exc)

    async def _follow_triggers(self, feed: TriggerFeed, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._register(await asyncio.to_thread(feed.read, 0.5))

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        ensure_topics(s.kafka_bootstrap, all_topics(s))
        triggers = TriggerFeed(s)
        self._register(await asyncio.to_thread(triggers.read_existing))
        follow = asyncio.create_task(self._follow_triggers(triggers, stop))
        self.sink = KafkaSink(s)
        self.publisher = RelayPublisher(s)
        await asyncio.to_thread(self.publisher.await_subscriptions, SUBSCRIPTION_WAIT_S)
        readers = [asyncio.create_task(self._to_kafka(self.bus.subscribe("kafka", required=True, capacity=20_000))),
                   asyncio.create_task(self._to_stream(self.bus.subscribe("stream", required=True, capacity=20_000)))]
        for reader in readers:  # a required reader that dies (Kafka refused events for good) ends the process loudly
            reader.add_done_callback(lambda t: stop.set() if not t.cancelled() and t.exception() else None)
        health = HealthServer(s.live_health_port, self.health)
        await health.start()
        feeds = []
        for exchange, ex_config in self.config.exchanges.items():
            try:
                adapter = adapter_for(exchange, ex_config)
            except UnsupportedLiveExchangeError as exc:
                log.error("%s: not streamed: %s", exchange, exc)
                continue
            conn = self.conns[exchange] = LiveConnection(adapter, self.bus.publish_batch)
            feeds.append(asyncio.create_task(conn.run(), name=f"feed-{exchange}"))
        log.info("live: streaming %s", ", ".join(self.conns))
        await stop.wait()
        for conn in self.conns.values():
            conn.stop()
        await asyncio.gather(*feeds, return_exceptions=True)
        try:
            await self.bus.close(timeout=60)
        except BusDrainTimeout as exc:
            log.error("live: %s", exc)
        await asyncio.gather(*readers)  # re-raises a reader's failure: the process exits non-zero and is restarted
        await follow
        triggers.close()
        self.sink.close()
        self.publisher.close()
        await health.stop()
        log.info("live: stopped; %s", self.health())


def run_live(settings: Settings, config: SidecarConfig | None = None) -> int:
    """The `marketlake live` process: runs until SIGINT/SIGTERM."""
    config = config or load_sidecar_config(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await LiveProcess(settings, config).run(stop)

    asyncio.run(main())
    return 0
