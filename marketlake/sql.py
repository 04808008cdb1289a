"""Analyst SQL: DuckDB over the Iceberg tables, one view per table of namespace `market`.

DuckDB reads Iceberg with its `iceberg` extension, installed OFFLINE from the pip wheels
duckdb-extension-iceberg / -avro into a fixed extension directory under settings.home; automatic
install and load are switched off so DuckDB never tries to download anything. Each view is
`iceberg_scan('<metadata.json>')` of the table's *current* metadata file: the SQL catalog writes
no version hint, so a view pins one snapshot and `connect()` (or `refresh_views`) picks up new
commits. Scans prune partitions on WHERE predicates (e.g. ticker) from the manifests.

The dbt marts (dbt_models/) live in their own DuckDB file under settings.home. Before each
`dbt build`, `prepare_dbt_database` writes the same `market` views into that file (dbt's sources).
Analyst connections copy the marts into schema `marts` (attach read-only, copy, detach): a DuckDB
file has one writer and a reader blocks it, so an open shell must not hold the file a build needs.
"""

from __future__ import annotations

import io
import logging
import shutil
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Literal

import duckdb
import duckdb_extensions
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
from pyiceberg.table import Table
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from marketlake.settings import Settings
from marketlake.storage.iceberg_tables import NAMESPACE, load_catalog

OutputFormat = Literal["table", "csv", "json"]
FORMATS: tuple[str, ...] = ("table", "csv", "json")
EXTENSIONS = ("avro", "iceberg")  # avro first: iceberg reads its manifests with it
MARTS_SCHEMA = "marts"  # the dbt models' schema for marts (dbt_models/dbt_project.yml)
_DBT_ALIAS = "marketlake_dbt"

log = logging.getLogger(__name__)


class QueryError(ValueError):
    """DuckDB rejected or failed to run an analyst query; the message carries DuckDB's error and the SQL."""

    def __init__(self, sql: str, cause: duckdb.Error) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}\n  in SQL: {sql.strip()}")
        self.sql = sql
        self.cause = cause


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def load_iceberg_extension(con: duckdb.DuckDBPyConnection) -> None:
    """Install (from the local wheels, once) and load avro + iceberg into `con`."""
    installed = {
        name for name, is_installed in con.sql(
            "SELECT extension_name, installed FROM duckdb_extensions()"
        ).fetchall() if is_installed
    }  # fmt: skip
    for name in EXTENSIONS:
        if name not in installed:
            duckdb_extensions.import_extension(name, con=con)
        con.sql(f"LOAD {name}")


def metadata_path(location: str) -> str:
    """What iceberg_scan wants: a plain path for file:// locations, the URI unchanged otherwise.

    Not URL-decoded: pyiceberg writes the path literally (a partition directory is named
    `ticker=BINANCE%3ABTC%2FUSDT` on disk).
    """
    for prefix in ("file://", "file:"):
        if location.startswith(prefix):
            return location.removeprefix(prefix)
    return location


def _empty_view_sql(con: duckdb.DuckDBPyConnection, table: Table) -> str:
    """A view with the table's columns and types and no rows (a table with no snapshot has no data files)."""
    arrow_schema = table.schema().as_arrow()
    relation = con.from_arrow(arrow_schema.empty_table())
    columns = ", ".join(
        f"CAST(NULL AS {duck_type}) AS {_quote_ident(name)}"
        for name, duck_type in zip(relation.columns, relation.types, strict=True)
    )
    return f"SELECT {columns} WHERE false"


def refresh_views(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """(Re)create schema `market` with one view per Iceberg table at its current snapshot; return view names."""
    catalog = load_catalog(settings)
    con.sql(f"CREATE SCHEMA IF NOT EXISTS {NAMESPACE}")
    names: list[str] = []
    for identifier in sorted(catalog.list_tables(NAMESPACE)):
        name = identifier[-1]
        table = catalog.load_table(identifier)
        if table.current_snapshot() is None:
            body = _empty_view_sql(con, table)
        else:
            body = f"SELECT * FROM iceberg_scan({_quote_literal(metadata_path(table.metadata_location))})"
        con.sql(f"CREATE OR REPLACE VIEW {NAMESPACE}.{_quote_ident(name)} AS {body}")
        names.append(name)
    stale = con.sql("SELECT view_name FROM duckdb_views() WHERE schema_name = ? AND NOT internal", params=[NAMESPACE]).fetchall()
    for (view_name,) in stale:
        if view_name not in names:  # the table was dropped from the catalog
            con.sql(f"DROP VIEW {NAMESPACE}.{_quote_ident(view_name)}")
    return names


def extension_directory(settings: Settings) -> Path:
    """Where DuckDB finds avro + iceberg, installed from the local wheels (shared with dbt's profile)."""
    return settings.home / "duckdb" / "extensions"


def dbt_database_path(settings: Settings) -> Path:
    """The DuckDB file dbt builds its staging views and marts in."""
    return settings.home / "dbt" / "analytics.duckdb"


def _open(database: str, settings: Settings) -> duckdb.DuckDBPyConnection:
    """A connection with the iceberg extension loaded offline (automatic install is off: never downloads), UTC session."""
    extension_dir = extension_directory(settings)
    extension_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(database, config={"extension_directory": str(extension_dir),
                                           "autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        con.sql("SET TimeZone = 'UTC'")  # an ICU setting (built in), so not accepted in the connect config
        load_iceberg_extension(con)
    except BaseException:
        con.close()
        raise
    return con


def prepare_dbt_database(settings: Settings) -> list[str]:
    """Point the dbt file's `market` views (dbt's sources) at the tables' current snapshots; return view names.

    Run just before `dbt build`, in the same process that then waits for dbt: the file has one writer.
    It also installs the extensions into the directory dbt's profile loads them from.
    """
    dbt_database_path(settings).parent.mkdir(parents=True, exist_ok=True)
    with _open(str(dbt_database_path(settings)), settings) as con:
        return refresh_views(con, settings)


def _table_names(con: duckdb.DuckDBPyConnection, database: str, schema: str) -> list[str]:
    return [name for (name,) in con.sql("SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
                                        "AND schema_name = ? ORDER BY 1", params=[database, schema]).fetchall()]  # fmt: skip


def attach_marts(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Copy every table of the dbt file's `marts` schema into schema `marts` of `con`; return their names.

    A dbt build holding the file leaves the marts as they were (logged): analysts can `.refresh` later.
    """
    con.sql(f"CREATE SCHEMA IF NOT EXISTS {MARTS_SCHEMA}")
    here = con.sql("SELECT current_database()").fetchone()[0]  # type: ignore[index]
    path = dbt_database_path(settings)
    if not path.exists():
        return []
    try:
        con.sql(f"ATTACH {_quote_literal(str(path))} AS {_DBT_ALIAS} (READ_ONLY)")
    except duckdb.IOException as exc:  # "Could not set lock on file": a dbt build is writing it
        log.warning("dbt marts not refreshed, %s is busy (a dbt build is running?): %s", path, exc)
        return _table_names(con, here, MARTS_SCHEMA)
    try:
        names = _table_names(con, _DBT_ALIAS, MARTS_SCHEMA)
        for name in names:
            con.sql(f"CREATE OR REPLACE TABLE {MARTS_SCHEMA}.{_quote_ident(name)} AS "
                    f"SELECT * FROM {_DBT_ALIAS}.{MARTS_SCHEMA}.{_quote_ident(name)}")  # fmt: skip
    finally:
        con.sql(f"DETACH {_DBT_ALIAS}")
    for stale in set(_table_names(con, here, MARTS_SCHEMA)) - set(names):  # the model left the dbt project
        con.sql(f"DROP TABLE {MARTS_SCHEMA}.{_quote_ident(stale)}")
    return names


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection, UTC session: a view per Iceberg table under `market`, the dbt marts under `marts`."""
    con = _open(":memory:", settings)
    try:
        refresh_views(con, settings)
        attach_marts(con, settings)
    except BaseException:
        con.close()
        raise
    return con


def execute(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run `sql` (the last statement's result is returned; an empty table for statements without rows)."""
    try:
        relation = con.sql(sql)
        return pa.table({}) if relation is None else relation.to_arrow_table()
    except duckdb.Error as exc:
        raise QueryError(sql, exc) from exc


def run_query(settings: Settings, sql: str) -> pa.Table:
    """One query on a fresh connection (so it sees every commit made before it)."""
    con = connect(settings)
    try:
        return execute(con, sql)
    finally:
        con.close()


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)  # a string keeps every digit; a JSON number would go through float
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} as JSON")


def format_result(table: pa.Table, fmt: OutputFormat | str = "table", width: int | None = None) -> str:
    """Render a result as a rich text table, CSV (with header) or a JSON array of row objects."""
    if fmt == "csv":
        buffer = io.BytesIO()
        pa_csv.write_csv(table, buffer)
        return buffer.getvalue().decode()
    if fmt == "json":
        return orjson.dumps(table.to_pylist(), default=_json_default, option=orjson.OPT_INDENT_2).decode()
    if fmt != "table":
        raise ValueError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")
    rich_table = RichTable(caption=f"{table.num_rows} row{'s' if table.num_rows != 1 else ''}")
    for field in table.schema:
        rich_table.add_column(field.name, overflow="fold")  # fold, never cut: prices must show every digit
    for row in table.to_pylist():
        rich_table.add_row(*(Text("NULL", style="dim") if value is None else Text(str(value)) for value in row.values()))
    console = Console(file=io.StringIO(), width=width or shutil.get_terminal_size().columns, color_system=None, soft_wrap=False)
    console.print(rich_table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _statements(read_line: Callable[[str], str | None]) -> Iterator[str]:
    """Statements from lines: SQL ends at ';' (or end of input); `.commands` are one line."""
    buffer: list[str] = []
    while (line := read_line("     ...> " if buffer else "marketlake> ")) is not None:
        stripped = line.strip()
        if not buffer and stripped.startswith("."):
            yield stripped
            continue
        if stripped:
            buffer.append(line)
        if stripped.endswith(";"):
            yield "\n".join(buffer)
            buffer = []
    if buffer:
        yield "\n".join(buffer)


_TABLES_SQL = (
    f"SELECT schema_name AS schema, view_name AS name FROM duckdb_views() WHERE schema_name = '{NAMESPACE}' "
    f"UNION ALL SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name = '{MARTS_SCHEMA}' ORDER BY 1, 2"
)


def shell(
    settings: Settings, fmt: OutputFormat | str = "table", stdin: IO[str] | None = None, stdout: IO[str] | None = None
) -> None:
    """Interactive SQL over the `market` views and dbt `marts`. `.tables` lists them, `.refresh` re-reads both, `.quit`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out = stdout or sys.stdout
    interactive = stdin is None and sys.stdin.isatty()
    source = stdin or sys.stdin

    def read_line(prompt: str) -> str | None:
        if interactive:
            try:
                return input(prompt)
            except EOFError:
                return None
        line = source.readline()
        return line.rstrip("\n") if line else None

    con = connect(settings)
    try:
        for statement in _statements(read_line):
            if statement in (".quit", ".exit"):
                break
            if statement == ".refresh":
                out.write(f"views: {', '.join(refresh_views(con, settings)) or '(none)'}\n")
                out.write(f"marts: {', '.join(attach_marts(con, settings)) or '(none)'}\n")
                continue
            if statement == ".tables":
                statement = _TABLES_SQL
            try:
                out.write(format_result(execute(con, statement), fmt) + "\n")
            except QueryError as exc:
                out.write(f"error: {exc}\n")
    finally:
        con.close()
