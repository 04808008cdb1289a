"""ccxt pointed at our replay server agrees with our own code: Bybit v5 (spot and linear).

The pattern and its reasons: tests/ccxt_fixtures.py and test_ccxt_binance.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import orjson
import pytest

from ingestors.bybit.live import BybitLive, ws_symbol
from ingestors.bybit.rest import BybitRest
from live_relay.messages import BookUpdate, StreamGap, Tick, TopOfBook

from .ccxt_fixtures import (
    assert_books_equal,
    ccxt_trade_rows,
    our_trade_rows,
    pro_options,
    published_book,
    replay_server,
    until,
    window_us,
    ws,
)
from .history_recorded import recorded_trades
from .live_fixtures import Collected, run_feed
from .replay_fixtures import load
from .test_bybit_live import recorded as bybit_recorded

BYBIT = {"spot": {"BYBIT:BTC/USDT": "BTC/USDT", "BYBIT:ETH/USDT": "ETH/USDT"},
         "linear": {"BYBIT:BTC/USDTPERP": "BTC/USDT:USDT", "BYBIT:ETH/USDTPERP": "ETH/USDT:USDT",
                    "BYBIT:SOL/USDTPERP": "SOL/USDT:USDT", "BYBIT:DOGE/USDTPERP": "DOGE/USDT:USDT"}}


def bybit_point(exchange: Any, base: str) -> Any:
    for name in ("spot", "futures", "v2", "public", "private"):
        exchange.urls["api"][name] = base
    if "ws" in exchange.urls["api"]:
        for category in ("spot", "linear"):
            exchange.urls["api"]["ws"]["public"][category] = ws(base) + f"/v5/public/{category}"
    return exchange


@pytest.fixture(scope="module")
def bybit_base(data_dir: Path) -> Iterator[str]:
    with replay_server("BYBIT", data_dir) as base:
        yield base


@pytest.fixture(scope="module")
def bybit_markets(bybit_base: str) -> list[dict[str, Any]]:
    """ccxt's own fetch_markets of spot and linear from the recorded /v5/market/instruments-info answers. ccxt also
    asks linear's status=PreLaunch list, which the recorder did not fetch: answered here as an empty list."""
    exchange = bybit_point(ccxt.bybit({"options": {"fetchMarkets": {"types": ["spot", "linear"]}}}), bybit_base)
    real = exchange.publicGetV5MarketInstrumentsInfo

    def instruments(params: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> Any:
        params = params or {}
        if params.get("status") == "PreLaunch":
            return {"retCode": 0, "retMsg": "OK", "result": {"category": params.get("category"), "list": []}}
        return real(params)

    exchange.publicGetV5MarketInstrumentsInfo = instruments
    markets = exchange.fetch_markets()
    assert {s for c in BYBIT.values() for s in c.values()} <= {m["symbol"] for m in markets}
    return markets


def bybit(cls: Any, base: str, markets: list[dict[str, Any]]) -> Any:
    exchange = bybit_point(cls(pro_options()), base)
    exchange.set_markets(markets)
    return exchange


@pytest.mark.parametrize("category", ["spot", "linear"])
def test_bybit_ccxt_fetch_trades_and_ohlcv_equal_our_rest(data_dir: Path, bybit_base: str,
                                                          bybit_markets: list[dict[str, Any]], category: str) -> None:
    exchange = bybit(ccxt.bybit, bybit_base, bybit_markets)
    limit = 60 if category == "spot" else 1000  # /v5/market/recent-trade: the newest trades only, no paging
    trades_n = candles_n = 0
    for ticker, symbol in BYBIT[category].items():
        recorded = recorded_trades(data_dir, "BYBIT", f"{category}:{ws_symbol(ticker)}")
        trades = exchange.fetch_trades(symbol, limit=limit)
        first = recorded[0].ts_ns // 1_000_000 // 60_000 * 60_000
        candles = exchange.fetch_ohlcv(symbol, "1m", since=first, limit=10)
        with BybitRest(bybit_base) as rest:
            ours = [x for p in rest.iter_trades(ticker, *window_us(recorded), page_size=limit) for x in p]
            our_candles = [c for p in rest.iter_candles(ticker, 60, first * 1000, (first + 10 * 60_000) * 1000) for c in p]
        print(f"{symbol}: ccxt fetch_trades {len(trades)}, ours {len(ours)}, recorded {len(recorded)}; "
              f"ccxt fetch_ohlcv {len(candles)}, ours {len(our_candles)}")
        assert len(ours) == len(recorded) > 0 and len(our_candles) > 0
        assert ccxt_trade_rows(trades) == our_trade_rows(ours)
        assert candles == [[c.open_time // 1000, float(c.open), float(c.high), float(c.low), float(c.close),
                            float(c.volume)] for c in our_candles]
        trades_n, candles_n = trades_n + len(ours), candles_n + len(our_candles)
    print(f"bybit {category}: {trades_n} trades and {candles_n} candles compared")


def bybit_last_book_ts(data_dir: Path, category: str) -> dict[str, int]:
    """Symbol -> ts of its last recorded orderbook.200 push on the category's connection."""
    out = {}
    conn = next(c for c in load(data_dir, "BYBIT").conns if c.path == f"/v5/public/{category}")
    for frame in conn.recvs:
        msg = orjson.loads(frame)
        if str(msg.get("topic", "")).startswith("orderbook.200."):
            out[msg["data"]["s"]] = int(msg["ts"])
    return out


@pytest.fixture(scope="module")
def bybit_ours(data_dir: Path, bybit_base: str) -> dict[str, Collected]:
    out = {}
    for category, symbols in BYBIT.items():
        tickers = list(symbols)
        rec = bybit_recorded(data_dir, category, tickers)
        adapter = BybitLive(tickers, ws(bybit_base) + f"/v5/public/{category}", bybit_base)

        def complete(c: Collected, _conn: object, tickers: list[str] = tickers, rec: dict = rec) -> bool:
            return all(c.counts[Tick, t] >= len(r.trades) and c.counts[TopOfBook, t] >= len(r.tops)
                       and c.counts[BookUpdate, t] >= 1 + len(r.deltas) for t in tickers for r in [rec[ws_symbol(t)]])

        out[category], _ = run_feed(adapter, complete)
        assert not out[category].of(StreamGap)
    return out


@pytest.mark.parametrize("category", ["spot", "linear"])
def test_bybit_ccxt_pro_watch_trades_receives_our_adapters_trades(bybit_base: str, bybit_markets: list[dict[str, Any]],
                                                                  bybit_ours: dict[str, Collected], category: str) -> None:
    symbols = BYBIT[category]
    ours = {t: our_trade_rows(bybit_ours[category].of(Tick, t)) for t in symbols}

    async def watch() -> dict[str, list[dict[str, Any]]]:
        exchange = bybit(ccxt.pro.bybit, bybit_base, bybit_markets)
        try:
            def done() -> bool:
                return all(s in exchange.trades and len(exchange.trades[s]) >= len(ours[t]) for t, s in symbols.items())

            await until(60, done, lambda: exchange.watch_trades_for_symbols(list(symbols.values())))
            return {s: list(exchange.trades[s]) for s in symbols.values()}
        finally:
            await exchange.close()

    theirs = asyncio.run(watch())
    for ticker, symbol in symbols.items():
        print(f"{symbol}: ccxt.pro {len(theirs[symbol])} trades, our BybitLive {len(ours[ticker])}")
        assert ccxt_trade_rows(theirs[symbol]) == ours[ticker] and ours[ticker]


@pytest.mark.parametrize("category", ["spot", "linear"])
def test_bybit_ccxt_pro_watch_order_book_converges_to_our_book(data_dir: Path, bybit_base: str,
                                                               bybit_markets: list[dict[str, Any]],
                                                               bybit_ours: dict[str, Collected], category: str) -> None:
    symbols = BYBIT[category]
    rec = bybit_recorded(data_dir, category, list(symbols))
    last_ts = bybit_last_book_ts(data_dir, category)
    final_ts = {s: last_ts[ws_symbol(t)] for t, s in symbols.items()}  # ccxt keeps the push time ts, not u

    async def watch() -> dict[str, Any]:
        exchange = bybit(ccxt.pro.bybit, bybit_base, bybit_markets)
        try:
            def done() -> bool:
                return all(s in exchange.orderbooks and exchange.orderbooks[s]["timestamp"] == ts
                           for s, ts in final_ts.items())

            # limit 200: the recorded orderbook.200 topic
            await until(60, done, lambda: exchange.watch_order_book_for_symbols(list(symbols.values()), 200))
            return {s: exchange.orderbooks[s].limit() for s in symbols.values()}
        finally:
            await exchange.close()

    theirs = asyncio.run(watch())
    for ticker, symbol in symbols.items():
        updates = bybit_ours[category].of(BookUpdate, ticker)
        r = rec[ws_symbol(ticker)]
        print(f"{symbol}: ccxt.pro book at ts {theirs[symbol]['timestamp']} (the last recorded push); ours at u "
              f"{updates[-1].update_id} after {len(updates)} updates (snapshot u {r.snapshot_u[0]} + {len(r.deltas)} deltas)")
        assert updates[-1].update_id == r.deltas[-1]
        assert_books_equal(symbol, theirs[symbol], published_book(updates))
