"""Coinbase Advanced Trade history as a HistoryFetcher (ingestors/registry.py): candles and trades via rest.py."""

from __future__ import annotations

from ingestors.coinbase.rest import CoinbaseRest
from ingestors.rest_base import RestHistory
from marketlake.settings import Settings


class CoinbaseHistory(RestHistory):
    def __init__(self, settings: Settings) -> None:
        super().__init__(CoinbaseRest(settings.coinbase_rest_url, max_retries=settings.http_max_retries))
