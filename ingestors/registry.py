"""Which exchanges have a historical fetcher, and how to build one from settings.

A fetcher turns a ticker, a period (0 = trades) and a half-open µs range into
pages of protocol messages, using the exchange's own pagination and limits.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from live_relay.messages import OHLC, Tick
from live_relay.topics import parse_ticker
from marketlake.settings import Settings


class UnsupportedExchangeError(ValueError):
    """No historical fetcher exists for this exchange yet."""


class HistoryFetcher(Protocol):
    def pages(self, ticker: str, period_seconds: int, start_us: int, end_us: int) -> Iterator[Sequence[OHLC | Tick]]:
        """Pages of candles (period > 0) or trades (period 0), in time order, inside [start_us, end_us)."""
        ...


class BinanceHistory:
    """Binance spot klines and aggTrades through ingestors.binance.rest."""

    def __init__(self, settings: Settings) -> None:
        from ingestors.binance.rest import BinanceRest

        self.rest = BinanceRest(settings.binance_rest_url, max_retries=settings.http_max_retries)

    def pages(self, ticker: str, period_seconds: int, start_us: int, end_us: int) -> Iterator[Sequence[OHLC | Tick]]:
        t = parse_ticker(ticker)
        symbol = f"{t.base}{t.quote}"
        if period_seconds == 0:
            yield from self.rest.iter_agg_trades(symbol, start_us, end_us)
        else:
            yield from self.rest.iter_klines(symbol, period_seconds, start_us, end_us)


# Every other exchange: ingestors/<x>/history.py, a RestHistory over ingestors/<x>/rest.py (imported when first used).
REST_HISTORIES: dict[str, str] = {
    "COINBASE": "ingestors.coinbase.history:CoinbaseHistory",
    "KRAKEN": "ingestors.kraken.history:KrakenHistory",
    "OKX": "ingestors.okx.history:OkxHistory",
    "BYBIT": "ingestors.bybit.history:BybitHistory",
    "HUOBI": "ingestors.huobi.history:HuobiHistory",
    "KUCOIN": "ingestors.kucoin.history:KucoinHistory",
    "GATEIO": "ingestors.gateio.history:GateioHistory",
    "BITFINEX": "ingestors.bitfinex.history:BitfinexHistory",
    "MEXC": "ingestors.mexc.history:MexcHistory",
}


def _lazy(target: str) -> Callable[[Settings], HistoryFetcher]:
    def build(settings: Settings) -> HistoryFetcher:
        module, _, name = target.partition(":")
        fetcher: HistoryFetcher = getattr(importlib.import_module(module), name)(settings)
        return fetcher

    return build


FETCHERS: dict[str, Callable[[Settings], HistoryFetcher]] = {
    "BINANCE": BinanceHistory, **{name: _lazy(target) for name, target in REST_HISTORIES.items()}}


def fetcher_for(exchange: str, settings: Settings) -> HistoryFetcher:
    try:
        return FETCHERS[exchange](settings)
    except KeyError:
        raise UnsupportedExchangeError(
            f"no historical ingestor for {exchange}; available: {', '.join(sorted(FETCHERS))}"
        ) from None
