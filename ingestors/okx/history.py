"""OKX history as a HistoryFetcher (ingestors/registry.py): history candles and trades via rest.py."""

from __future__ import annotations

from ingestors.okx.rest import OkxRest
from ingestors.rest_base import RestHistory
from marketlake.settings import Settings


class OkxHistory(RestHistory):
    def __init__(self, settings: Settings) -> None:
        super().__init__(OkxRest(settings.okx_rest_url, max_retries=settings.http_max_retries))
