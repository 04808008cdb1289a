"""Analyst SQL: DuckDB over the Iceberg tables, one view per table of namespace `market`.

DuckDB reads Iceberg with its `iceberg` extension, installed OFFLINE from the pip wheels
duckdb-extension-iceberg / -avro into a fixed extension directory under settings.home; automatic
install and load are switched off so DuckDB never tries to download anything. Each view is
`iceberg_scan('<metadata.json>')` of the table's *current* metadata file: the SQL catalog writes
no version hint, so a view pins one snapshot and `connect()` (or `refresh_views`) picks up new
commits. Scans prune partitions on WHERE predicates (e.g. ticker) from the manifests.
"""

from __future__ import annotations

import io
import shutil
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
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


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection, UTC session, with a view per Iceberg table under schema `market`."""
    extension_dir = settings.home / "duckdb" / "extensions"
    extension_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        ":memory:",
        config={
            "extension_directory": str(extension_dir),
            "autoinstall_known_extensions": False,  # never download
            "autoload_known_extensions": False,
        },
    )
    try:
        con.sql("SET TimeZone = 'UTC'")  # an ICU setting (built in), so not accepted in the connect config
        load_iceberg_extension(con)
        refresh_views(con, settings)
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


def shell(
    settings: Settings, fmt: OutputFormat | str = "table", stdin: IO[str] | None = None, stdout: IO[str] | None = None
) -> None:
    """Interactive SQL over the `market` views. `.tables` lists them, `.refresh` re-reads the catalog, `.quit`."""
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
                continue
            if statement == ".tables":
                statement = f"SELECT view_name FROM duckdb_views() WHERE schema_name = '{NAMESPACE}' ORDER BY 1"
            try:
                out.write(format_result(execute(con, statement), fmt) + "\n")
            except QueryError as exc:
                out.write(f"error: {exc}\n")
    finally:
        con.close()
