"""ccxt, a widely used independent implementation, pointed at our Binance replay server, agrees with our code.

REST: ccxt's fetch_trades / fetch_ohlcv over a range (several pages) get exactly the
trades and candles our BinanceRest gets. Websockets (ccxt.pro): watch_trades receives
the recorded trades as our parser reads them from the same frames, and
watch_order_book (ccxt's own snapshot + diff sync) converges to the book our
BinanceBooks builds from the recording: the proof that the replay server speaks
Binance's formats and that our book agrees with another implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest

from ingestors.binance.depth_sync import BinanceBooks
from ingestors.binance.parse import parse_combined_frame, parse_trade_event
from ingestors.binance.recording import Recording, load_recordings
from ingestors.binance.replay import ReplayServer
from ingestors.binance.rest import BinanceRest
from ingestors.book import OrderBook

SYMBOLS = {"BTCUSDT": "BTC/USDT", "ETHUSDT": "ETH/USDT"}
START_MS, END_MS = 1723160400000, 1723161600000  # 23:40 .. 24:00 UTC on 2024-08-08: synthesis, then the recording
TOP_N = 50  # levels a side compared; deeper levels are outside the 1000-level snapshots' reach for both books


@pytest.fixture(scope="module")
def base(data_dir: Path) -> Iterator[str]:
    with ReplayServer(data_dir).running() as url:  # deterministic: each connection replays from the first frame
        yield url


@pytest.fixture(scope="module")
def recordings(data_dir: Path) -> dict[str, Recording]:
    return load_recordings(data_dir)


def _options() -> dict[str, Any]:
    # spot only: the replay server has no futures exchangeInfo; a large trade cache keeps every replayed trade
    return {"options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "tradesLimit": 100_000}}


def _point(exchange: Any, base: str) -> Any:
    """Every Binance REST base that ccxt would use for spot market data, and the spot websocket, to the replay server."""
    for name, url in list(exchange.urls["api"].items()):
        if isinstance(url, str) and url.startswith("https://api.binance.com"):
            exchange.urls["api"][name] = url.replace("https://api.binance.com", base)
    if "ws" in exchange.urls["api"]:  # ccxt.pro
        exchange.urls["api"]["ws"]["spot"] = base.replace("http://", "ws://") + "/ws"
    return exchange


def test_ccxt_fetch_trades_over_a_range_gets_exactly_our_rest_trades(base: str) -> None:
    exchange = _point(ccxt.binance(_options()), base)
    # Paged by fromId, as Binance documents (and as our client does). ccxt's own `paginate` walks backwards with
    # until = first timestamp - 1 and so loses trades sharing a page's first millisecond (9 of 6039 here).
    trades = exchange.fetch_trades("BTC/USDT", since=START_MS, limit=1000, params={"until": START_MS + 3_599_999})
    pages = 1
    while trades and trades[-1]["timestamp"] < END_MS:
        page = exchange.fetch_trades("BTC/USDT", limit=1000, params={"fromId": int(trades[-1]["id"]) + 1})
        pages += 1
        if not page:
            break
        trades += page
    trades = [t for t in trades if t["timestamp"] < END_MS]
    with BinanceRest(base) as rest:
        ours = [x for p in rest.iter_agg_trades("BTC/USDT", START_MS * 1000, END_MS * 1000) for x in p]
    print(f"ccxt fetch_trades: {len(trades)} trades in {pages} pages; ours: {len(ours)}")
    assert len(ours) > 5000 and pages > 5
    assert [(t["id"], t["timestamp"], t["info"]["p"], t["info"]["q"], t["price"], t["amount"], t["side"])
            for t in trades] == [
        (x.trade_id, x.exchange_time_ns // 1_000_000, x.price, x.size, float(x.price), float(x.size),
         "sell" if x.buyer_is_maker else "buy") for x in ours]


def test_ccxt_fetch_ohlcv_over_a_range_gets_exactly_our_rest_candles(base: str) -> None:
    exchange = _point(ccxt.binance(_options()), base)
    since = START_MS - 2 * 86_400_000  # 2900 one-minute candles: three pages of ccxt's own pagination
    candles = exchange.fetch_ohlcv("BTC/USDT", "1m", since=since, params={"paginate": True, "until": END_MS - 1,
                                                                          "paginationCalls": 20})
    with BinanceRest(base) as rest:
        ours = [c for p in rest.iter_klines("BTC/USDT", 60, since * 1000, END_MS * 1000) for c in p]
    print(f"ccxt fetch_ohlcv: {len(candles)} candles; ours: {len(ours)}")
    assert len(ours) == 2900
    assert candles == [[c.open_time // 1000, float(c.open), float(c.high), float(c.low), float(c.close),
                        float(c.volume)] for c in ours]


async def _until(deadline_s: float, done: Any, step: Any) -> None:
    """Await `step()` (a ccxt.pro watch) until done() or the deadline; a quiet second is not an error."""
    deadline = time.monotonic() + deadline_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("ccxt.pro did not get the whole replay before the deadline")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(step(), timeout=1.0)


def test_ccxt_pro_watch_trades_receives_the_trades_our_parser_reads(base: str, recordings: dict[str, Recording]) -> None:
    ours = {s: [parse_trade_event(t, f"BINANCE:{u}") for t in recordings[s].trades] for s, u in SYMBOLS.items()}

    async def watch() -> dict[str, list[dict[str, Any]]]:
        exchange = _point(ccxt.pro.binance(_options()), base)
        try:
            batches = 0

            async def step() -> None:
                nonlocal batches
                got = await exchange.watch_trades_for_symbols(list(SYMBOLS.values()))
                batches += bool(got)

            def done() -> bool:
                cache = exchange.trades
                return all(u in cache and cache[u] and cache[u][-1]["id"] == ours[s][-1].trade_id
                           for s, u in SYMBOLS.items())

            await _until(60, done, step)
            print(f"ccxt.pro watch_trades: {batches} non-empty batches")
            return {u: list(exchange.trades[u]) for u in SYMBOLS.values()}  # everything ccxt parsed, in order
        finally:
            await exchange.close()

    theirs = asyncio.run(watch())
    for symbol, unified in SYMBOLS.items():
        print(f"{symbol}: ccxt.pro {len(theirs[unified])} trades, ours {len(ours[symbol])}")
        assert len(ours[symbol]) > 6000
        assert [(t["id"], t["timestamp"], t["info"]["p"], t["info"]["q"], t["price"], t["amount"], t["side"])
                for t in theirs[unified]] == [
            (x.trade_id, x.exchange_time_ns // 1_000_000, x.price, x.size, float(x.price), float(x.size),
             "sell" if x.buyer_is_maker else "buy") for x in ours[symbol]]


def _our_books(recordings: dict[str, Recording]) -> dict[str, OrderBook]:
    """BinanceBooks fed each recording's depth frames in order, with the recorded REST snapshot where it was taken."""
    books = BinanceBooks()
    for symbol in SYMBOLS:
        rec = recordings[symbol]
        for i, frame in enumerate(rec.frames):
            if i == rec.snapshot_position:
                books.sync_for(symbol).on_snapshot(rec.snapshot)
            if "@depth" in frame.stream:
                books.on_depth_event(parse_combined_frame(frame.text)[1], frame.recv_ns)
        sync = books.sync_for(symbol)
        assert sync.is_live and not sync.gaps, f"{symbol}: our book did not sync over the recording"
    return {s: books.sync_for(s).book for s in SYMBOLS}


def _top(book: OrderBook) -> tuple[list[list[float]], list[list[float]]]:
    bids, asks = book.top(TOP_N)
    return [[float(lv.price), float(lv.size)] for lv in bids], [[float(lv.price), float(lv.size)] for lv in asks]


def test_ccxt_pro_watch_order_book_converges_to_our_book(base: str, recordings: dict[str, Recording]) -> None:
    ours = _our_books(recordings)
    final_ids = {s: ours[s].update_id for s in SYMBOLS}

    async def watch() -> tuple[dict[str, Any], dict[str, int]]:
        exchange = _point(ccxt.pro.binance(_options()), base)
        first_nonce: dict[str, int] = {}
        try:
            async def step() -> None:
                await exchange.watch_order_book_for_symbols(list(SYMBOLS.values()))
                for s, u in SYMBOLS.items():
                    if u in exchange.orderbooks and exchange.orderbooks[u]["nonce"] is not None:
                        first_nonce.setdefault(s, exchange.orderbooks[u]["nonce"])

            def done() -> bool:
                return all(u in exchange.orderbooks and exchange.orderbooks[u]["nonce"] == final_ids[s]
                           for s, u in SYMBOLS.items())

            await _until(60, done, step)
            books = {s: exchange.orderbooks[u] for s, u in SYMBOLS.items()}
            return {s: (b["bids"][:TOP_N], b["asks"][:TOP_N], b["nonce"]) for s, b in books.items()}, first_nonce
        finally:
            await exchange.close()

    theirs, first_nonce = asyncio.run(watch())
    for symbol in SYMBOLS:
        bids, asks, nonce = theirs[symbol]
        diffs_after = sum(1 for f in recordings[symbol].frames if "@depth" in f.stream
                          and int(parse_combined_frame(f.text)[1]["u"]) > first_nonce[symbol])
        print(f"{symbol}: ccxt.pro book first seen at update id {first_nonce[symbol]}, then {diffs_after} diffs "
              f"to {nonce}; ours at {ours[symbol].update_id}; comparing top {TOP_N} levels a side")
        assert nonce == ours[symbol].update_id
        assert (bids, asks) == _top(ours[symbol])
