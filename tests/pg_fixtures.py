"""Pytest plugin: the project's own PostgreSQL server for the session, and a fresh database per test.

Registered from tests/conftest.py: `pytest_plugins = [..., "tests.pg_fixtures"]`. The cluster lives in a
fresh directory under the system temp dir rather than in pytest's tmp_path, because when the tests
run as root the server runs as the `postgres` OS user, which cannot enter pytest's 0700 directories.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketlake.kafka_broker import free_port
from marketlake.postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server on a free 127.0.0.1 port, stopped and deleted after the session."""
    data_dir = Path(tempfile.mkdtemp(prefix="marketlake-pg-"))
    server = PostgresServer(data_dir=data_dir, port=free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL (postgresql+psycopg2://) of a new, empty database for one test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    return postgres_server.url(name)
