"""The project's own PostgreSQL server: initialised, started and stopped in its own directory and port.

Production configuration points Dagster storage (dagster-postgres) and the Iceberg SQL catalog at
Postgres. On one machine the project runs its own server from Debian's postgresql binaries rather
than sharing the system cluster: its data directory is ours, it listens on 127.0.0.1 only and its
unix socket lives in the data directory. Authentication is `trust` for local connections: this is
a local development/test server that nothing outside this machine can reach; a real deployment
sets MARKETLAKE_POSTGRES_URL to its own server with real credentials instead.

Postgres refuses to run as root, so as root every server command runs as the `postgres` OS user
(`runuser -u postgres --`), which is given ownership of the data directory.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

from marketlake.settings import Settings

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
OS_USER = "postgres"
DEFAULT_DATABASE = "marketlake"


class PostgresError(RuntimeError):
    """The PostgreSQL server binaries are missing, or the server did not initialise, start or stop."""


def postgres_bin_dir() -> Path:
    """Directory of initdb/pg_ctl: the newest /usr/lib/postgresql/<version>/bin, else the one on PATH."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    if candidates:
        return candidates[0].parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise PostgresError("PostgreSQL server binaries (pg_ctl, initdb) not found; run scripts/setup.sh")


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in data_dir, listening on 127.0.0.1:port (trust auth, local use)."""

    data_dir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL with the psycopg2 driver (SQLAlchemy 2.1 would pick psycopg 3 for plain postgresql://)."""
        return f"postgresql+psycopg2://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq connection string for psycopg2.connect."""
        return f"host={self.host} port={self.port} user={SUPERUSER} dbname={dbname}"

    def _command(self, program: str, *args: str) -> list[str]:
        cmd = [str(postgres_bin_dir() / program), *args]
        if os.geteuid() == 0:
            return ["runuser", "-u", OS_USER, "--", *cmd]
        return cmd

    def _run(self, program: str, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        cmd = self._command(program, *args)
        # cwd: the postgres user may not be allowed into the caller's working directory.
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.data_dir)

    def _prepare_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # postgres refuses a group/world-accessible data directory
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, OS_USER, OS_USER)
            probe = subprocess.run(["runuser", "-u", OS_USER, "--", "test", "-w", str(self.data_dir)], check=False)
            if probe.returncode != 0:
                raise PostgresError(
                    f"the {OS_USER!r} OS user cannot reach {self.data_dir}: a parent directory is not "
                    "traversable by it (chmod o+x the parents, or choose a data directory elsewhere)"
                )

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb once (trust auth, UTF-8, C locale), then include our own settings file."""
        self._prepare_dir()
        if self.initialised():
            return
        result = self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C")
        if result.returncode != 0:
            raise PostgresError(f"initdb in {self.data_dir} failed: {result.stderr.strip() or result.stdout}")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'marketlake.conf'\n")

    def _write_conf(self) -> None:
        """Port, interface and socket directory are rewritten at every start, so the port can change."""
        socket_dir = str(self.data_dir).replace("'", "''")
        conf = self.data_dir / "marketlake.conf"
        conf.write_text(
            f"port = {self.port}\n"
            f"listen_addresses = '{self.host}'\n"
            f"unix_socket_directories = '{socket_dir}'\n"
            "max_connections = 200\n"  # Dagster opens a pool per storage and per process
            "shared_buffers = 64MB\n"
        )
        if os.geteuid() == 0:
            shutil.chown(conf, OS_USER, OS_USER)

    def running(self) -> bool:
        """True when pg_ctl sees a live postmaster for this data directory."""
        if not self.initialised():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir)).returncode == 0

    def start(self, timeout: float = 60.0) -> PostgresServer:
        """Initialise if needed, start, and return once a real connection succeeds."""
        self.init()
        if not self.running():
            self._write_conf()
            result = self._run(
                "pg_ctl", "start", "-w", "-t", str(int(timeout)), "-D", str(self.data_dir), "-l", str(self.log_file),
                timeout=timeout + 10,
            )  # fmt: skip
            if result.returncode != 0:
                raise PostgresError(
                    f"pg_ctl start on port {self.port} failed: {result.stderr.strip() or result.stdout.strip()}; "
                    f"see {self.log_file}"
                )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Ready when pg_isready says so and a psycopg2 connection runs a query."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            ping = subprocess.run(
                [str(postgres_bin_dir() / "pg_isready"), "-h", self.host, "-p", str(self.port), "-U", SUPERUSER],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if ping.returncode == 0:
                try:
                    with psycopg2.connect(self.dsn(), connect_timeout=5) as conn, conn.cursor() as cur:
                        cur.execute("SELECT 1")
                    conn.close()
                    return
                except psycopg2.OperationalError as exc:
                    last_error = str(exc).strip()
            else:
                last_error = ping.stdout.strip()
            time.sleep(0.2)  # polling a starting server; not test synchronisation
        raise PostgresError(f"PostgreSQL not ready on {self.host}:{self.port} after {timeout}s: {last_error}")

    def stop(self, timeout: float = 60.0) -> None:
        """Fast shutdown: roll back open transactions, disconnect clients, checkpoint."""
        if not self.running():
            return
        result = self._run(
            "pg_ctl", "stop", "-w", "-t", str(int(timeout)), "-m", "fast", "-D", str(self.data_dir),
            timeout=timeout + 10,
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresError(f"pg_ctl stop in {self.data_dir} failed: {result.stderr.strip()}")

    def create_database(self, name: str) -> None:
        """Create database `name` unless it exists (idempotent)."""
        conn = psycopg2.connect(self.dsn(), connect_timeout=10)
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    log.info("created database %s on port %s", name, self.port)
        finally:
            conn.close()


def ensure_postgres(settings: Settings, dbname: str = DEFAULT_DATABASE) -> str:
    """Start the project's server under settings.home/postgres if it is not running; return the database URL.

    The server keeps running after this returns (pg_ctl daemonises it); `PostgresServer.stop` stops it.
    """
    server = PostgresServer(settings.home / "postgres", settings.postgres_port)
    server.start()
    server.create_database(dbname)
    return server.url(dbname)
