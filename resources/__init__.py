"""Dagster resources: typed ConfigurableResource classes, each a thin seam over the project's own modules.

Nothing here imports pyzmq or the sidecar at import time; the relay notifier is
imported inside the method that sends.
"""

from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from resources.relay import RelayNotifierResource

__all__ = ["IcebergResource", "KafkaResource", "RelayNotifierResource"]
