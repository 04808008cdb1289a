"""Analytics part of the code location: the dbt models and the table maintenance job, with their schedules.

dagster-dbt builds its assets from dbt_models/target/manifest.json, which `dbt parse` writes
(scripts/setup.sh does). Without it the code location still loads, without the dbt assets, and
says how to fix it; the maintenance job does not need it.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from dagster import AssetSelection, DefaultScheduleStatus, Definitions, ScheduleDefinition, define_asset_job
from dagster_dbt import DbtCliResource, DbtProject

from assets.dbt import DBT_PROJECT_DIR, build_dbt_assets, dbt_vars
from assets.maintenance import table_maintenance_job
from marketlake.settings import Settings

log = logging.getLogger(__name__)

ANALYTICS_JOB = "analytics_dbt_job"
# UTC: maintenance first, then the marts are rebuilt from the compacted tables.
MAINTENANCE_CRON = "15 3 * * *"
ANALYTICS_CRON = "45 3 * * *"


def dbt_project(target_path: Path | str = "target") -> DbtProject:
    """The dbt project; `target_path` (relative to dbt_models/ or absolute) holds its manifest."""
    return DbtProject(project_dir=DBT_PROJECT_DIR, target_path=target_path)


def dbt_resource(project: DbtProject) -> DbtCliResource:
    """dbt from this interpreter's environment (the Dagster process may not have .venv/bin on PATH)."""
    return DbtCliResource(project_dir=project, dbt_executable=str(Path(sys.executable).parent / "dbt"))


def parse_manifest(project: DbtProject, settings: Settings) -> Path:
    """`dbt parse` into the project's target path (offline, ~7 s); returns the manifest path.

    With the same --vars as the builds of `settings`, so a build can reuse dbt's partial parse.
    """
    args = ["parse", "--quiet", "--vars", json.dumps(dbt_vars(settings))]
    dbt_resource(project).cli(args, target_path=project.target_path).wait()
    return project.manifest_path


def build_analytics_definitions(settings: Settings, project: DbtProject | None = None) -> Definitions:
    """dbt assets + their daily job, and the daily maintenance job; schedules run when settings.schedules_enabled."""
    status = DefaultScheduleStatus.RUNNING if settings.schedules_enabled else DefaultScheduleStatus.STOPPED
    maintenance = ScheduleDefinition(
        name="table_maintenance_daily", job=table_maintenance_job, cron_schedule=MAINTENANCE_CRON, execution_timezone="UTC",
        default_status=status, description="Daily: compact small files, expire snapshots older than the retention.",
    )  # fmt: skip
    project = project or dbt_project()
    if not project.manifest_path.is_file():
        log.warning(
            "dbt manifest not found at %s: the dbt assets are left out of the code location. "
            "Run scripts/setup.sh (or `cd dbt_models && dbt parse`) and reload.", project.manifest_path
        )  # fmt: skip
        return Definitions(jobs=[table_maintenance_job], schedules=[maintenance])
    models = build_dbt_assets(settings, project)
    analytics_job = define_asset_job(
        ANALYTICS_JOB, selection=AssetSelection.assets(models), description="dbt build: every model and its tests."
    )
    analytics = ScheduleDefinition(
        name="analytics_dbt_daily", job=analytics_job, cron_schedule=ANALYTICS_CRON, execution_timezone="UTC",
        default_status=status, description="Daily: rebuild the dbt marts.",
    )  # fmt: skip
    return Definitions(
        assets=[models],
        jobs=[table_maintenance_job, analytics_job],
        schedules=[maintenance, analytics],
        resources={"dbt": dbt_resource(project)},
    )
