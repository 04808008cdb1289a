"""MEXC history as a HistoryFetcher (ingestors/registry.py): klines and aggregate trades via rest.py."""

from __future__ import annotations

from ingestors.mexc.rest import MexcRest
from ingestors.rest_base import RestHistory
from marketlake.settings import Settings


class MexcHistory(RestHistory):
    def __init__(self, settings: Settings) -> None:
        super().__init__(MexcRest(settings.mexc_rest_url, max_retries=settings.http_max_retries))
