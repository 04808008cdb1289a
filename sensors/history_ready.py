"""Run-status sensors that tell the client its history is ready (or why it is not).

`history_ready_on_success` and `history_ready_on_failure` watch history_batch_job
runs and publish a HistoryReadyNotification to the notification topic in the
run's tags, through the relay. OK carries the table, snapshot id, row count and
covered range; ERROR carries the step failure's message (for an ERROR batch,
the exchange's reason). Building the notification is pure
(`ok_notification` / `error_notification`); sending is the resource's job.
"""

import time
from collections.abc import Mapping
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    SensorDefinition,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from live_relay.messages import HistoryReadyNotification, Status
from resources.relay import RelayNotifierResource
from sensors.history_batches import TAG_PREFIX


def _tag(tags: Mapping[str, str], name: str) -> str:
    return tags.get(f"{TAG_PREFIX}{name}", "")


def _int_tag(tags: Mapping[str, str], name: str) -> int:
    value = _tag(tags, name)
    return int(value) if value else 0


def _now_us() -> int:
    return time.time_ns() // 1000


def _base(tags: Mapping[str, str], status: Status) -> dict[str, Any]:
    return {
        "request_id": _tag(tags, "request_id"),
        "client_id": _tag(tags, "client_id"),
        "status": status,
        "ticker": _tag(tags, "ticker"),
        "period_seconds": _int_tag(tags, "period_seconds"),
        "start_time": _int_tag(tags, "start_time"),
        "end_time": _int_tag(tags, "end_time"),
        "completed_at": _now_us(),
    }


def ok_notification(tags: Mapping[str, str], materialization: Mapping[str, Any]) -> HistoryReadyNotification:
    """OK: the request from the run tags, the commit from the materialization metadata."""
    return HistoryReadyNotification(
        **_base(tags, Status.OK),
        row_count=int(materialization["row_count"]),
        table=str(materialization["table"]),
        snapshot_id=int(materialization["snapshot_id"]),
    )


def error_notification(tags: Mapping[str, str], error_message: str) -> HistoryReadyNotification:
    """ERROR: the request from the run tags and the reason it failed."""
    return HistoryReadyNotification(**_base(tags, Status.ERROR), error_message=error_message)


def materialization_metadata(instance: DagsterInstance, run_id: str) -> dict[str, Any]:
    """The plain values of the run's asset materialization metadata (empty if none)."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None:
            metadata = event.step_materialization_data.materialization.metadata
            return {key: value.value for key, value in metadata.items()}
    return {}


def failure_message(context: RunFailureSensorContext) -> str:
    """The step failure's description (dagster.Failure) or error message; else the run's failure message."""
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return data.user_failure_data.description
        if data.error is not None:
            return data.error.message.strip()
    return context.failure_event.message or f"run {context.dagster_run.run_id} failed"


def build_history_ready_sensors(job: UnresolvedAssetJobDefinition) -> list[SensorDefinition]:
    """The success and failure sensors for `job` (history_batch_job)."""

    @run_status_sensor(
        name="history_ready_on_success",
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[job],
        minimum_interval_seconds=1,
        default_status=DefaultSensorStatus.RUNNING,
        description="Publishes HistoryReady OK for each successful history_batch_job run.",
    )
    def history_ready_on_success(context: RunStatusSensorContext, relay: RelayNotifierResource) -> SkipReason | None:
        run = context.dagster_run
        topic = _tag(run.tags, "notification_topic")
        if not topic:
            return SkipReason(f"run {run.run_id} has no {TAG_PREFIX}notification_topic tag")
        metadata = materialization_metadata(context.instance, run.run_id)
        if metadata:
            msg = ok_notification(run.tags, metadata)
        else:
            msg = error_notification(run.tags, f"run {run.run_id} succeeded without materializing a table")
        seen = relay.send(topic, msg)
        context.log.info(f"HistoryReady {msg.status.name} for {msg.request_id} on {topic} (subscriber seen: {seen})")
        return None

    @run_failure_sensor(
        name="history_ready_on_failure",
        monitored_jobs=[job],
        minimum_interval_seconds=1,
        default_status=DefaultSensorStatus.RUNNING,
        description="Publishes HistoryReady ERROR, with the reason, for each failed history_batch_job run.",
    )
    def history_ready_on_failure(context: RunFailureSensorContext, relay: RelayNotifierResource) -> SkipReason | None:
        run = context.dagster_run
        topic = _tag(run.tags, "notification_topic")
        if not topic:
            return SkipReason(f"run {run.run_id} has no {TAG_PREFIX}notification_topic tag")
        msg = error_notification(run.tags, failure_message(context))
        seen = relay.send(topic, msg)
        context.log.info(f"HistoryReady ERROR for {msg.request_id} on {topic}: {msg.error_message} (seen: {seen})")
        return None

    return [history_ready_on_success, history_ready_on_failure]
