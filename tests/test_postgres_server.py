"""The project's own PostgreSQL server, and the two production users of it: the Iceberg SQL catalog and Dagster."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg2
import pyarrow as pa
import pytest
from dagster import DagsterInstance, DagsterRunStatus, job, op
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import DecimalType, LongType, NestedField, StringType

from marketlake.kafka_broker import free_port
from marketlake.postgres import PostgresServer, ensure_postgres
from marketlake.settings import Settings

pytestmark = pytest.mark.postgres


def _dsn_of(url: str) -> str:
    """libpq DSN of a postgresql+psycopg2://user@host:port/db URL."""
    return url.replace("postgresql+psycopg2://", "postgresql://")


def test_server_accepts_psycopg2_connection(postgres_server: PostgresServer) -> None:
    assert postgres_server.running()
    with psycopg2.connect(postgres_server.dsn()) as conn, conn.cursor() as cur:
        cur.execute("SELECT inet_server_addr()::text, current_setting('port')::int, version()")
        addr, port, version = cur.fetchone()
    conn.close()
    assert addr.startswith("127.0.0.1")
    assert port == postgres_server.port
    assert version.startswith("PostgreSQL ")


def test_create_database_is_idempotent(postgres_server: PostgresServer) -> None:
    postgres_server.create_database("idempotent_db")
    postgres_server.create_database("idempotent_db")
    with psycopg2.connect(postgres_server.dsn("idempotent_db")) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_database()")
        assert cur.fetchone() == ("idempotent_db",)
    conn.close()


def test_iceberg_sql_catalog_on_postgres_round_trips_rows(postgres_database: str, tmp_path: Path) -> None:
    catalog = SqlCatalog("marketlake", uri=postgres_database, warehouse=f"file://{tmp_path / 'warehouse'}")
    catalog.create_namespace("market")
    schema = Schema(
        NestedField(1, "ticker", StringType(), required=True),
        NestedField(2, "open_time", LongType(), required=True),
        NestedField(3, "close", DecimalType(38, 18), required=False),
    )
    table = catalog.create_table("market.pg_probe", schema=schema)
    rows = pa.table(
        {
            "ticker": ["BINANCE:BTC/USDT", "BINANCE:ETH/USDT"],
            "open_time": [1_700_000_000_000_000, 1_700_000_060_000_000],
            "close": pa.array(["42000.12345678", "2200.5"], pa.string()).cast(pa.decimal128(38, 18)),
        }
    ).cast(table.schema().as_arrow())
    table.append(rows)

    reloaded = SqlCatalog("marketlake", uri=postgres_database, warehouse=f"file://{tmp_path / 'warehouse'}")
    back = reloaded.load_table("market.pg_probe").scan().to_arrow().sort_by("open_time")
    assert back.to_pylist() == rows.to_pylist()
    with psycopg2.connect(_dsn_of(postgres_database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT catalog_name, table_namespace, table_name FROM iceberg_tables")
        assert cur.fetchall() == [("marketlake", "market", "pg_probe")]
    conn.close()


@op
def _say_hello() -> str:
    return "hello"


@job
def _hello_job() -> None:
    _say_hello()


def test_dagster_instance_with_postgres_storage_records_run(postgres_database: str, tmp_path: Path) -> None:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        f'storage:\n  postgres:\n    postgres_url: "{postgres_database}"\ntelemetry:\n  enabled: false\n'
    )
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = _hello_job.execute_in_process(instance=instance)
        assert result.success
        run_id = result.run_id
        recorded = instance.get_run_by_id(run_id)
        assert recorded is not None and recorded.status == DagsterRunStatus.SUCCESS

    with psycopg2.connect(_dsn_of(postgres_database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT pipeline_name, status FROM runs WHERE run_id = %s", (run_id,))
        assert cur.fetchall() == [("_hello_job", "SUCCESS")]
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run_id,))
        assert cur.fetchone()[0] > 0
    conn.close()


def test_ensure_postgres_starts_server_under_home_and_is_reentrant() -> None:
    # Not pytest's tmp_path: as root the server runs as the postgres OS user, which cannot enter it.
    home = Path(tempfile.mkdtemp(prefix="marketlake-home-"))
    home.chmod(0o755)
    settings = Settings(home=home, postgres_port=free_port())
    server = PostgresServer(home / "postgres", settings.postgres_port)
    try:
        url = ensure_postgres(settings)
        assert url == f"postgresql+psycopg2://postgres@127.0.0.1:{settings.postgres_port}/marketlake"
        assert server.running()
        assert ensure_postgres(settings) == url  # already running: same URL, no second server
        with psycopg2.connect(_dsn_of(url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            assert cur.fetchone() == ("marketlake",)
        conn.close()
    finally:
        server.stop()
        stopped = not server.running()
        shutil.rmtree(home, ignore_errors=True)
    assert stopped
