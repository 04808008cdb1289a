"""Which exchanges have a recorded-session replay server, and where their ExchangeReplay lives."""

from __future__ import annotations

import importlib

from ingestors.replay.spec import ExchangeReplay

MODULES: dict[str, str] = {
    "COINBASE": "ingestors.coinbase.replay",
    "KRAKEN": "ingestors.kraken.replay",
    "OKX": "ingestors.okx.replay",
    "BYBIT": "ingestors.bybit.replay",
    "GATEIO": "ingestors.replay.gateio",  # these four live in ingestors/replay/ until their packages take them
    "KUCOIN": "ingestors.replay.kucoin",
    "BITFINEX": "ingestors.replay.bitfinex",
    "HUOBI": "ingestors.replay.huobi",
}


def replay_for(exchange: str) -> ExchangeReplay:
    """The ExchangeReplay of an exchange (ticker name, any case); KeyError naming the available ones."""
    name = exchange.upper()
    if name not in MODULES:
        raise KeyError(f"no recorded-session replay server for {exchange}; available: {', '.join(sorted(MODULES))}")
    spec = importlib.import_module(MODULES[name]).REPLAY
    assert isinstance(spec, ExchangeReplay)
    return spec
