"""RelayNotifierResource: sends HistoryReady notifications through the relay's XSUB port.

`live_relay.notifier` imports pyzmq; it is imported inside `send` so that
loading the Dagster code location never imports pyzmq (tests/test_dagster_imports.py).
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from live_relay.messages import HistoryReadyNotification
from marketlake.settings import Settings


class RelayNotifierResource(ConfigurableResource):
    """Where the relay is, and how long a short-lived publisher waits for the subscriber."""

    relay_host: str = Field(description="Host of the relay (MARKETLAKE_RELAY_HOST).")
    xsub_port: int = Field(description="The relay's XSUB port that publishers connect to.")
    subscriber_wait_seconds: float = Field(
        default=3.0, description="How long to wait to see the client's subscription before sending anyway."
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> RelayNotifierResource:
        return cls(
            relay_host=settings.relay_host,
            xsub_port=settings.xsub_port,
            subscriber_wait_seconds=settings.notify_subscriber_wait_seconds,
        )

    def send(self, topic: str, msg: HistoryReadyNotification, wait_for_subscriber: bool = True) -> bool:
        """Publish `msg` on `topic`; returns whether the subscriber was seen before sending."""
        from live_relay.notifier import notify  # lazy: keeps pyzmq out of the code location's imports

        settings = Settings(  # type: ignore[call-arg]  # the other fields have defaults
            relay_host=self.relay_host,
            xsub_port=self.xsub_port,
            notify_subscriber_wait_seconds=self.subscriber_wait_seconds,
        )
        return bool(notify(settings, topic, msg, wait_for_subscriber=wait_for_subscriber))
