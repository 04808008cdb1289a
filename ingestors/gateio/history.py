"""Gate.io history as a HistoryFetcher (ingestors/registry.py): candlesticks and trades via rest.py."""

from __future__ import annotations

from ingestors.gateio.rest import GateioRest
from ingestors.rest_base import RestHistory
from marketlake.settings import Settings


class GateioHistory(RestHistory):
    def __init__(self, settings: Settings) -> None:
        super().__init__(GateioRest(settings.gateio_rest_url, max_retries=settings.http_max_retries))
