"""HTX (Huobi) history as a HistoryFetcher (ingestors/registry.py): candles and trades via rest.py."""

from __future__ import annotations

from ingestors.huobi.rest import HuobiRest
from ingestors.rest_base import RestHistory
from marketlake.settings import Settings


class HuobiHistory(RestHistory):
    def __init__(self, settings: Settings) -> None:
        super().__init__(HuobiRest(settings.huobi_rest_url, max_retries=settings.http_max_retries))
