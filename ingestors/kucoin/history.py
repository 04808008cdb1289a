"""KuCoin history as a HistoryFetcher (ingestors/registry.py): klines and recent trades via rest.py."""

from __future__ import annotations

from ingestors.kucoin.rest import KucoinRest
from ingestors.rest_base import RestHistory
from marketlake.settings import Settings


class KucoinHistory(RestHistory):
    def __init__(self, settings: Settings) -> None:
        super().__init__(KucoinRest(settings.kucoin_rest_url, max_retries=settings.http_max_retries))
