"""The historical loop with the production configuration: Dagster storage and Iceberg catalog in Postgres."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg2

from live_relay.messages import Status
from marketlake.client import MarketlakeClient
from marketlake.kafka_broker import KafkaBroker
from marketlake.postgres import PostgresServer
from marketlake.storage.iceberg_tables import kafka_coverage, load_catalog, ohlc_table

from .factories import make_settings
from .platform_fixtures import start_platform

JUL_1 = 1_719_792_000_000_000  # 2024-07-01T00:00:00Z
DAY_US = 86_400_000_000


def test_request_is_served_with_postgres_storage_and_catalog(
    tmp_path: Path, kafka_broker: KafkaBroker, postgres_server: PostgresServer
) -> None:
    db = f"ml_{uuid.uuid4().hex[:10]}"
    postgres_server.create_database(db)
    url = postgres_server.url(db)
    settings = make_settings(tmp_path / "home", kafka_broker.bootstrap, postgres_url=url)
    assert settings.catalog_uri == url
    sup = start_platform(settings)
    try:
        with MarketlakeClient(settings) as client:
            note = client.history("BINANCE:BTC/USDT", 60, JUL_1, JUL_1 + DAY_US, timeout=240)
    finally:
        sup.stop_all()
    assert note.status == Status.OK, note.error_message
    assert note.row_count == 1440
    table = ohlc_table(load_catalog(settings))
    assert table.scan().to_arrow().num_rows == 1440
    assert [c.request_id for c in kafka_coverage(table)] == [note.request_id]
    with psycopg2.connect(postgres_server.dsn(db)) as con, con.cursor() as cur:
        cur.execute("SELECT count(*) FROM iceberg_tables WHERE table_namespace = 'market' AND table_name = 'ohlc'")
        assert cur.fetchone() == (1,)
        cur.execute("SELECT status FROM runs")
        assert [row[0] for row in cur.fetchall()] == ["SUCCESS"]
