"""The only `Definitions` of the code location, built from the one Settings object.

`workspace.yaml` loads this module. It imports the Dagster assets, sensors and
resources, and nothing of the sidecar: pyzmq is imported only when a
notification is sent (tests/test_dagster_imports.py proves it).
"""

from dagster import Definitions

from assets.history import history_batch, history_batch_job
from marketlake.settings import Settings, get_settings
from orchestration.analytics import build_analytics_definitions
from orchestration.platform import build_platform_definitions
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from resources.relay import RelayNotifierResource
from sensors.history_batches import build_history_batches_sensor
from sensors.history_ready import build_history_ready_sensors


def build_resources(settings: Settings) -> dict[str, object]:
    """The resources every asset and sensor of the code location shares, from settings."""
    return {
        "kafka": KafkaResource(bootstrap=settings.kafka_bootstrap, topic_prefix=settings.kafka_topic_prefix),
        "iceberg": IcebergResource.from_settings(settings),
        "relay": RelayNotifierResource.from_settings(settings),
    }


def build_history_definitions(settings: Settings) -> Definitions:
    """Client-requested history: Kafka batches -> Iceberg -> HistoryReady."""
    return Definitions(
        assets=[history_batch],
        jobs=[history_batch_job],
        sensors=[
            build_history_batches_sensor(settings, history_batch_job),
            *build_history_ready_sensors(history_batch_job),
        ],
    )


def _parts(settings: Settings) -> list[Definitions]:
    """Each part of the platform contributes its own Definitions (one line each)."""
    parts = [build_history_definitions(settings)]
    # -- backfills, schedules, checks, gap repair (one line below) --
    parts.append(build_platform_definitions(settings))
    # -- dbt models and table maintenance (one line below) --
    parts.append(build_analytics_definitions(settings))
    return parts


def build_definitions(settings: Settings) -> Definitions:
    """The one Definitions of the code location: every part, with the shared resources."""
    return Definitions.merge(*_parts(settings), Definitions(resources=build_resources(settings)))


defs = build_definitions(get_settings())
