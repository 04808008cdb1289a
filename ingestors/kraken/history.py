"""Kraken history as a HistoryFetcher (ingestors/registry.py): OHLC and trades via rest.py."""

from __future__ import annotations

from ingestors.kraken.rest import KrakenRest
from ingestors.rest_base import RestHistory
from marketlake.settings import Settings


class KrakenHistory(RestHistory):
    def __init__(self, settings: Settings) -> None:
        super().__init__(KrakenRest(settings.kraken_rest_url, max_retries=settings.http_max_retries))
