"""ccxt pointed at our replay server agrees with our own code: Coinbase Advanced Trade (2026-08-09).

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

from ingestors.coinbase.live import CoinbaseLive
from ingestors.coinbase.rest import CoinbaseRest
from live_relay.messages import BookUpdate, StreamGap, Tick, TopOfBook

from .ccxt_fixtures import (
    assert_books_equal,
    book_rows,
    ccxt_trade_rows,
    in_order,
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
from .test_coinbase_live import recorded as coinbase_recorded

COINBASE = {"COINBASE:BTC/USD": "BTC/USD", "COINBASE:ETH/USD": "ETH/USD"}


@pytest.fixture(scope="module")
def coinbase_base(data_dir: Path) -> Iterator[str]:
    with replay_server("COINBASE", data_dir) as base:
        yield base


@pytest.fixture(scope="module")
def coinbase_markets(coinbase_base: str) -> list[dict[str, Any]]:
    """ccxt's own fetch_markets (v3 /api/v3/brokerage/market/products, recorded); load_markets would also ask
    /v2/currencies and /v2/exchange-rates, which the recording does not have."""
    exchange = ccxt.coinbase()
    exchange.urls["api"]["rest"] = coinbase_base
    markets = exchange.fetch_markets()
    assert {"BTC/USD", "ETH/USD"} <= {m["symbol"] for m in markets}
    return markets


def coinbase(cls: Any, base: str, markets: list[dict[str, Any]]) -> Any:
    exchange = cls(pro_options())
    exchange.urls["api"]["rest"] = base
    if "ws" in exchange.urls["api"]:
        exchange.urls["api"]["ws"] = ws(base) + "/"
    exchange.set_markets(markets)
    return exchange


@pytest.fixture(scope="module")
def coinbase_ours(data_dir: Path, coinbase_base: str) -> Collected:
    trades, tops, _ = coinbase_recorded(data_dir)
    adapter = CoinbaseLive(list(COINBASE), ws(coinbase_base) + "/", coinbase_base)

    def complete(c: Collected, _conn: object) -> bool:
        return all(c.counts[Tick, t] >= len(trades[t]) and c.counts[TopOfBook, t] >= tops[f"top:{t}"]
                   and c.counts[BookUpdate, t] >= tops[f"l2:{t}"] for t in COINBASE)

    collected, _ = run_feed(adapter, complete)
    assert not collected.of(StreamGap)
    return collected


def test_coinbase_ccxt_fetch_trades_equal_our_rest_trades(data_dir: Path, coinbase_base: str,
                                                          coinbase_markets: list[dict[str, Any]]) -> None:
    exchange = coinbase(ccxt.coinbase, coinbase_base, coinbase_markets)
    page = 50
    for ticker, symbol in COINBASE.items():
        recorded = recorded_trades(data_dir, "COINBASE", symbol.replace("/", "-"))
        start_us, end_us = window_us(recorded)
        since, until_ms = start_us // 1_000_000 * 1000, -(-end_us // 1_000_000) * 1000
        # /market/products/{id}/ticker: the newest `limit` trades in [start, end) whole seconds, no cursor: walk `end` back
        trades: dict[str, dict[str, Any]] = {}
        pages, upper = 0, until_ms
        while True:
            got = exchange.fetch_trades(symbol, since=since, limit=page, params={"until": upper})
            pages += 1
            trades.update((t["id"], t) for t in got)
            if len(got) < page:
                break
            upper = min(t["timestamp"] for t in got) // 1000 * 1000 + 1000
        with CoinbaseRest(coinbase_base) as rest:
            ours = [x for p in rest.iter_trades(ticker, since * 1000, until_ms * 1000, page_size=page) for x in p]
        print(f"{symbol}: ccxt fetch_trades {len(trades)} trades in {pages} pages; ours {len(ours)}; "
              f"recorded {len(recorded)}")
        assert len(ours) == len(recorded) > page
        assert ccxt_trade_rows(list(trades.values())) == our_trade_rows(ours)


def test_coinbase_ccxt_fetch_ohlcv_equals_our_rest_candles(data_dir: Path, coinbase_base: str,
                                                           coinbase_markets: list[dict[str, Any]]) -> None:
    exchange = coinbase(ccxt.coinbase, coinbase_base, coinbase_markets)
    for ticker, symbol in COINBASE.items():
        recorded = recorded_trades(data_dir, "COINBASE", symbol.replace("/", "-"))
        first = recorded[0].ts_ns // 1_000_000 // 60_000 * 60_000
        candles = exchange.fetch_ohlcv(symbol, "1m", since=first, params={"until": first + 300 * 60_000})
        with CoinbaseRest(coinbase_base) as rest:
            ours = [c for p in rest.iter_candles(ticker, 60, first * 1000, (first + 300 * 60_000) * 1000) for c in p]
        print(f"{symbol}: ccxt fetch_ohlcv {len(candles)} candles; ours {len(ours)}")
        assert len(ours) > 1
        assert candles == [[c.open_time // 1000, float(c.open), float(c.high), float(c.low), float(c.close),
                            float(c.volume)] for c in ours]


def test_coinbase_ccxt_pro_watch_trades_receives_our_adapters_trades(data_dir: Path, coinbase_base: str,
                                                                     coinbase_markets: list[dict[str, Any]],
                                                                     coinbase_ours: Collected) -> None:
    ours = {t: our_trade_rows(coinbase_ours.of(Tick, t)) for t in COINBASE}
    ids = {t: {r[0] for r in rows} for t, rows in ours.items()}

    async def watch() -> dict[str, list[dict[str, Any]]]:
        exchange = coinbase(ccxt.pro.coinbase, coinbase_base, coinbase_markets)
        try:
            def done() -> bool:
                return all(s in exchange.trades and ids[t] <= {x["id"] for x in exchange.trades[s]}
                           for t, s in COINBASE.items())

            await until(60, done, lambda: exchange.watch_trades_for_symbols(list(COINBASE.values())))
            return {s: list(exchange.trades[s]) for s in COINBASE.values()}
        finally:
            await exchange.close()

    theirs = asyncio.run(watch())
    for ticker, symbol in COINBASE.items():
        # ccxt also keeps the trades of the market_trades "snapshot" event (the recent trades Coinbase sends on
        # subscribing); our adapter publishes the live "update" trades only
        live = [t for t in theirs[symbol] if t["id"] in ids[ticker]]
        print(f"{symbol}: ccxt.pro {len(theirs[symbol])} trades ({len(theirs[symbol]) - len(live)} from the subscribe "
              f"snapshot), our CoinbaseLive {len(ours[ticker])}; {len(live)} compared with ours, all with the recording")
        assert ccxt_trade_rows(live) == ours[ticker] and ours[ticker]
        recorded = recorded_trades(data_dir, "COINBASE", symbol.replace("/", "-"))  # snapshot + live, from the frames
        assert ccxt_trade_rows(theirs[symbol]) == in_order([(t.trade_id, t.ts_ns // 1_000_000, float(t.price), float(t.size),
                                                             "sell" if t.buyer_is_maker else "buy") for t in recorded])


def test_coinbase_ccxt_pro_watch_order_book_converges_to_our_book(data_dir: Path, coinbase_base: str,
                                                                  coinbase_markets: list[dict[str, Any]],
                                                                  coinbase_ours: Collected) -> None:
    _, _, recorded_books = coinbase_recorded(data_dir)
    ours = {t: published_book(coinbase_ours.of(BookUpdate, t)) for t in COINBASE}
    assert all(book_rows(ours[t]) == book_rows(recorded_books[t]) for t in COINBASE)
    last = {}  # product -> "timestamp" of its last recorded l2_data frame (ccxt keeps it as the book's datetime)
    for conn in load(data_dir, "COINBASE").conns:
        for frame in conn.recvs:
            msg = orjson.loads(frame)
            if msg.get("channel") == "l2_data":
                last.update((e["product_id"], msg["timestamp"]) for e in msg["events"])
    final = {s: last[s.replace("/", "-")] for s in COINBASE.values()}

    async def watch() -> dict[str, Any]:
        exchange = coinbase(ccxt.pro.coinbase, coinbase_base, coinbase_markets)
        try:
            def done() -> bool:
                return all(s in exchange.orderbooks and exchange.orderbooks[s]["datetime"] == t for s, t in final.items())

            await until(60, done, lambda: exchange.watch_order_book_for_symbols(list(COINBASE.values())))
            return {s: exchange.orderbooks[s].limit() for s in COINBASE.values()}
        finally:
            await exchange.close()

    theirs = asyncio.run(watch())
    for ticker, symbol in COINBASE.items():
        print(f"{symbol}: ccxt.pro book at {theirs[symbol]['datetime']} (the last recorded l2_data frame); "
              f"{coinbase_ours.counts[BookUpdate, ticker]} book updates from our adapter")
        assert_books_equal(symbol, theirs[symbol], ours[ticker])
