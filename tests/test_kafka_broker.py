"""The project's own Kafka broker: a real KRaft node that keeps what it acknowledged."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer, TopicPartition

from marketlake.kafka_broker import KafkaBroker, ensure_topics, new_cluster_id
from marketlake.kafka_topics import consumer_config, history_topic, producer_config, request_topic
from marketlake.settings import Settings


def test_topics_are_created_with_their_partitions(settings: Settings, kafka_broker: KafkaBroker) -> None:
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": kafka_broker.bootstrap}).list_topics(timeout=10)
    assert len(md.topics[history_topic(settings)].partitions) == settings.kafka_history_partitions
    assert len(md.topics[request_topic(settings, "BINANCE")].partitions) == 4


def test_acked_records_survive_a_broker_restart(tmp_path, kafka_broker: KafkaBroker) -> None:
    broker = KafkaBroker(home=kafka_broker.home, data_dir=tmp_path / "k2", port=0)
    from marketlake.kafka_broker import free_port

    broker.port = free_port()
    broker.start()
    try:
        s = Settings(kafka_bootstrap=broker.bootstrap, home=tmp_path)
        ensure_topics(s.kafka_bootstrap, {"durable": 1})
        producer = Producer(producer_config(s))
        for i in range(100):
            producer.produce("durable", value=str(i).encode())
        assert producer.flush(30) == 0
        broker.stop()
        broker.start()
        consumer = Consumer(consumer_config(s, "restart-check"))
        consumer.assign([TopicPartition("durable", 0, 0)])
        seen: list[bytes] = []
        while len(seen) < 100:
            batch = consumer.consume(100, timeout=10)
            assert batch, f"only {len(seen)} of 100 records came back after the restart"
            seen += [msg.value() for msg in batch if not msg.error()]
        consumer.close()
        assert seen == [str(i).encode() for i in range(100)]
    finally:
        broker.stop()


def test_cluster_ids_never_start_with_a_dash() -> None:
    # One KRaft storage format in 64 failed before: an id starting with "-" reads as an option to kafka-storage.
    ids = [new_cluster_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 for i in ids) and len(set(ids)) == len(ids)
