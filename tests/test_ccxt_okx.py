"""ccxt pointed at our replay server agrees with our own code: OKX (v5 public, 2022-05-13).

The pattern and its reasons: tests/ccxt_fixtures.py and test_ccxt_binance.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest

from ingestors.okx.live import OkxLive, inst_id
from ingestors.okx.rest import OkxRest
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
from .test_okx_live import Recorded as OkxRecorded

OKX = {"OKX:BTC/USDT": "BTC/USDT", "OKX:UNI/USDPERP": "UNI/USD:UNI", "OKX:BTC/USD220527": "BTC/USD:BTC-220527"}


def okx(cls: Any, base: str) -> Any:
    """ccxt okx on the replay: REST at base, websockets at ws://base/ws/v5 (+ /public); markets from the recorded
    /api/v5/public/instruments answers (SPOT, SWAP, FUTURES, OPTION of BTC-USD and ETH-USD, all served)."""
    exchange = cls(pro_options())
    exchange.urls["api"]["rest"] = base
    if "ws" in exchange.urls["api"]:
        exchange.urls["api"]["ws"] = ws(base) + "/ws/v5"
    return exchange


@pytest.fixture(scope="module")
def okx_base(data_dir: Path) -> Iterator[str]:
    with replay_server("OKX", data_dir) as base:
        yield base


@pytest.fixture(scope="module")
def okx_ours(data_dir: Path, okx_base: str) -> Collected:
    """Our OkxLive on its own connection to the replay, until every recorded trade, top and book push arrived."""
    rec = OkxRecorded(data_dir)
    adapter = OkxLive(list(OKX), ws(okx_base) + "/ws/v5/public", okx_base)

    def complete(c: Collected, _conn: object) -> bool:
        return all(c.counts[Tick, t] >= len(rec.trades[t]) and c.counts[TopOfBook, t] >= rec.tops[t]
                   and c.counts[BookUpdate, t] >= len(rec.books[t]) for t in OKX)

    collected, _ = run_feed(adapter, complete)
    assert not collected.of(StreamGap)
    return collected


def test_okx_ccxt_fetch_trades_paged_by_trade_id_equal_our_rest_trades(data_dir: Path, okx_base: str) -> None:
    exchange = okx(ccxt.okx, okx_base)
    page = 20
    for ticker, symbol in OKX.items():
        recorded = recorded_trades(data_dir, "OKX", inst_id(ticker))
        params = {"method": "publicGetMarketHistoryTrades"}  # /api/v5/market/history-trades, backwards by tradeId
        trades = exchange.fetch_trades(symbol, limit=page, params=params)
        pages = 1
        while True:
            older = exchange.fetch_trades(symbol, limit=page, params={**params, "after": min(int(t["id"]) for t in trades)})
            pages += 1
            if not older:
                break
            trades += older
        with OkxRest(okx_base) as rest:
            ours = [x for p in rest.iter_trades(ticker, *window_us(recorded), page_size=page) for x in p]
        print(f"{symbol}: ccxt fetch_trades {len(trades)} trades in {pages} pages; ours {len(ours)}; recorded {len(recorded)}")
        assert len(ours) == len(recorded) > 0
        assert ccxt_trade_rows(trades) == our_trade_rows(ours)
        assert [t["info"]["px"] for t in sorted(trades, key=lambda t: (t["timestamp"], int(t["id"])))] == \
            [x.price for x in ours]


def test_okx_ccxt_fetch_ohlcv_equals_our_rest_candles(data_dir: Path, okx_base: str) -> None:
    exchange = okx(ccxt.okx, okx_base)
    compared = 0
    for ticker, symbol in OKX.items():
        first = recorded_trades(data_dir, "OKX", inst_id(ticker))[0].ts_ns // 1_000_000 // 60_000 * 60_000
        candles = exchange.fetch_ohlcv(symbol, "1m", since=first, limit=100)  # history-candles, before/after
        with OkxRest(okx_base) as rest:
            ours = [c for p in rest.iter_candles(ticker, 60, first * 1000, (first + 100 * 60_000) * 1000) for c in p]
        spot = exchange.market(symbol)["spot"]  # ccxt's volume: vol on spot, volCcy on derivatives
        print(f"{symbol}: ccxt fetch_ohlcv {len(candles)} candles; ours {len(ours)}")
        assert len(ours) > 0
        assert candles == [[c.open_time // 1000, float(c.open), float(c.high), float(c.low), float(c.close),
                            float(c.volume if spot else c.quote_volume)] for c in ours]
        compared += len(ours)
    print(f"okx: {compared} candles compared")


def test_okx_ccxt_pro_watch_trades_receives_our_adapters_trades(okx_base: str, okx_ours: Collected) -> None:
    ours = {t: our_trade_rows(okx_ours.of(Tick, t)) for t in OKX}

    async def watch() -> dict[str, list[dict[str, Any]]]:
        exchange = okx(ccxt.pro.okx, okx_base)
        try:
            def done() -> bool:
                return all(s in exchange.trades and len(exchange.trades[s]) >= len(ours[t]) for t, s in OKX.items())

            await until(60, done, lambda: exchange.watch_trades_for_symbols(list(OKX.values())))
            return {s: list(exchange.trades[s]) for s in OKX.values()}
        finally:
            await exchange.close()

    theirs = asyncio.run(watch())
    for ticker, symbol in OKX.items():
        print(f"{symbol}: ccxt.pro {len(theirs[symbol])} trades, our OkxLive {len(ours[ticker])}")
        assert ccxt_trade_rows(theirs[symbol]) == ours[ticker] and ours[ticker]


def test_okx_ccxt_pro_watch_order_book_converges_to_our_book(data_dir: Path, okx_base: str, okx_ours: Collected) -> None:
    rec = OkxRecorded(data_dir)
    last_ts = {OKX[t]: int(rec.books[t][-1]["ts"]) for t in OKX}  # the time of each instrument's last book push

    async def watch() -> dict[str, Any]:
        exchange = okx(ccxt.pro.okx, okx_base)  # (ccxt 4.5's okx does not verify the checksums; ours does)
        try:
            def done() -> bool:
                return all(s in exchange.orderbooks and exchange.orderbooks[s]["timestamp"] == ts
                           for s, ts in last_ts.items())

            await until(60, done, lambda: exchange.watch_order_book_for_symbols(list(OKX.values())))
            return {s: exchange.orderbooks[s].limit() for s in OKX.values()}
        finally:
            await exchange.close()

    theirs = asyncio.run(watch())
    for ticker, symbol in OKX.items():
        print(f"{symbol}: {len(rec.books[ticker])} book pushes")
        assert_books_equal(symbol, theirs[symbol], published_book(okx_ours.of(BookUpdate, ticker)))
