"""The dbt project (dbt_models/) as Dagster assets, downstream of market/ohlc and market/trades.

dbt-duckdb reads the Iceberg tables through views in its own DuckDB file: the SQL catalog writes no
version hint, so right before `dbt build` the op points schema `market` of that file at each
table's current metadata.json (marketlake.sql.prepare_dbt_database, the same views the analyst
shell uses), then runs dbt, which loads the iceberg extension offline from the directory those
views were built with. The sources carry `meta.dagster.asset_key`, so the staging models depend
on the history assets. dbt's tests run inside `dbt build` and show as asset checks.

No `from __future__ import annotations` here: Dagster reads the resource annotations at definition time.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
from dagster import AssetExecutionContext, AssetsDefinition
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from marketlake import sql
from marketlake.settings import REPO_ROOT, Settings
from marketlake.storage import iceberg_tables

DBT_PROJECT_DIR = REPO_ROOT / "dbt_models"
DBT_OP = "analytics_dbt_models"


def dbt_vars(settings: Settings) -> dict[str, str]:
    """The --vars dbt_models/profiles.yml reads: where the DuckDB file and the extensions are."""
    return {
        "marketlake_duckdb_path": str(sql.dbt_database_path(settings)),
        "marketlake_extension_dir": str(sql.extension_directory(settings)),
    }


def dbt_target_path(settings: Settings) -> Path:
    """dbt's artifacts of the last build (run_results.json, logs), kept out of the repository.

    One fixed directory: dbt's partial parse file is reused from build to build, and two builds
    cannot run at once anyway (the DuckDB file has one writer).
    """
    return settings.home / "dbt" / "target"


def prepare_sources(settings: Settings, lock_wait_seconds: float = 30.0) -> list[str]:
    """Create the tables dbt reads if they are missing (empty), then refresh its `market` views.

    An analyst connection copying the marts holds the file for a moment: wait for it, a bounded time.
    """
    catalog = iceberg_tables.load_catalog(settings)
    iceberg_tables.ohlc_table(catalog)
    iceberg_tables.trades_table(catalog)
    deadline = time.monotonic() + lock_wait_seconds
    while True:
        try:
            return sql.prepare_dbt_database(settings)
        except duckdb.IOException:  # "Could not set lock on file"
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # waiting out another writer's DuckDB lock, with a deadline


def build_dbt_assets(settings: Settings, project: DbtProject) -> AssetsDefinition:
    """Every dbt model as an asset (tests as checks), from the project's parsed manifest."""

    @dbt_assets(manifest=project.manifest_path, project=project, name=DBT_OP)
    def analytics_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        views = prepare_sources(settings)
        context.log.info(f"dbt sources: views {', '.join(views)} at the current Iceberg snapshots")
        build = dbt.cli(["build", "--vars", json.dumps(dbt_vars(settings))], context=context,
                        target_path=dbt_target_path(settings))  # fmt: skip
        yield from build.stream()

    return analytics_dbt_models
