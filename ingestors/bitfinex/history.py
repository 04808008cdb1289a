"""Bitfinex history as a HistoryFetcher (ingestors/registry.py): candles and trades via rest.py."""

from __future__ import annotations

from ingestors.bitfinex.rest import BitfinexRest
from ingestors.rest_base import RestHistory
from marketlake.settings import Settings


class BitfinexHistory(RestHistory):
    def __init__(self, settings: Settings) -> None:
        super().__init__(BitfinexRest(settings.bitfinex_rest_url, max_retries=settings.http_max_retries))
