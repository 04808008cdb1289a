"""ccxt pointed at our replay server agrees with our own code: Kraken (REST; websocket v1 recorded, 2021-04-17).

The pattern and its reasons: tests/ccxt_fixtures.py and test_ccxt_binance.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest

from ingestors.kraken.rest import KrakenRest

from .ccxt_fixtures import (
    ccxt_trade_rows,
    our_trade_rows,
    pro_options,
    replay_server,
    window_us,
)
from .history_recorded import recorded_trades

KRAKEN = {"KRAKEN:XMR/USD": "XMR/USD", "KRAKEN:SC/EUR": "SC/EUR"}  # the recorded pairs that traded


@pytest.fixture(scope="module")
def kraken_base(data_dir: Path) -> Iterator[str]:
    with replay_server("KRAKEN", data_dir) as base:
        yield base


@pytest.fixture(scope="module")
def kraken_markets(kraken_base: str) -> list[dict[str, Any]]:
    """ccxt's own fetch_markets from the recorded /0/public/AssetPairs; load_markets would also ask /0/public/Assets,
    which the recording does not have."""
    exchange = kraken(ccxt.kraken, kraken_base, None)
    markets = exchange.fetch_markets()
    assert set(KRAKEN.values()) <= {m["symbol"] for m in markets}
    return markets


def kraken(cls: Any, base: str, markets: list[dict[str, Any]] | None) -> Any:
    exchange = cls(pro_options())
    exchange.urls["api"]["public"] = exchange.urls["api"]["private"] = base
    if markets is not None:
        exchange.set_markets(markets)
    return exchange


def test_kraken_ccxt_fetch_trades_and_ohlcv_equal_our_rest(data_dir: Path, kraken_base: str,
                                                           kraken_markets: list[dict[str, Any]]) -> None:
    exchange = kraken(ccxt.kraken, kraken_base, kraken_markets)
    for ticker, symbol in KRAKEN.items():
        recorded = recorded_trades(data_dir, "KRAKEN", symbol)
        start_us, end_us = window_us(recorded)
        trades = exchange.fetch_trades(symbol, since=start_us // 1000 - 1000, limit=1000)  # since: whole seconds
        first = start_us // 60_000_000 * 60_000
        candles = exchange.fetch_ohlcv(symbol, "1m", since=first)
        with KrakenRest(kraken_base) as rest:
            ours = [x for p in rest.iter_trades(ticker, start_us, end_us) for x in p]
            our_candles = [c for p in rest.iter_candles(ticker, 60, first * 1000, end_us + 60_000_000) for c in p]
        print(f"{symbol}: ccxt fetch_trades {len(trades)}, ours {len(ours)}, recorded {len(recorded)}; "
              f"ccxt fetch_ohlcv {len(candles)}, ours {len(our_candles)}")
        assert len(ours) == len(recorded) > 0 and our_candles
        assert ccxt_trade_rows(trades) == our_trade_rows(ours)
        assert candles == [[c.open_time // 1000, float(c.open), float(c.high), float(c.low), float(c.close),
                            float(c.volume)] for c in our_candles]
