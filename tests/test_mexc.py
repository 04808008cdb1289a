"""MEXC spot end to end: our live adapter and ccxt.pro's mexc against the MEXC replay server.

The replay server re-encodes the real Binance recordings (BTCUSDT and ETHUSDT of 2024-08-08) into
MEXC's documented protobuf push frames; real websocket and REST on loopback. Ours: every recorded
trade arrives with its exact strings, the books equal the book the Binance code builds from the same
recording, no gaps; a dropped depth push is one gap and only that symbol resyncs. The independent
proof: ccxt.pro's mexc, a widely used implementation of MEXC's format, decodes the same trades and
converges to the same book; REST history pages equal the recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import ccxt.pro
import orjson
import pytest

from ingestors.binance.depth_sync import BinanceBooks
from ingestors.binance.parse import parse_combined_frame
from ingestors.binance.recording import Recording, load_recordings
from ingestors.binance.schemas import fmt_e8, summarize
from ingestors.book import OrderBook
from ingestors.live.adapter import FrameParseError
from ingestors.live.connection import LiveConnection
from ingestors.mexc import codec
from ingestors.mexc.live import MexcLive
from ingestors.mexc.replay import MexcReplayServer, reencode
from ingestors.mexc.rest import MexcRest
from live_relay.messages import BookUpdate, StreamGap, Tick, TopOfBook
from marketlake.kafka_broker import free_port

from .live_fixtures import Collected
from .live_fixtures import run_feed as run_live_feed

SYMBOLS = {"BTCUSDT": "MEXC:BTC/USDT", "ETHUSDT": "MEXC:ETH/USDT"}
TOP_N = 50


@pytest.fixture(scope="module")
def recordings(data_dir: Path) -> dict[str, Recording]:
    return load_recordings(data_dir)


@pytest.fixture(scope="module")
def binance_books(recordings: dict[str, Recording]) -> dict[str, OrderBook]:
    """The Binance code's books: BinanceBooks fed each recording's depth frames, the recorded snapshot where taken."""
    books = BinanceBooks()
    for symbol, rec in recordings.items():
        for i, frame in enumerate(rec.frames):
            if i == rec.snapshot_position:
                books.sync_for(symbol).on_snapshot(rec.snapshot)
            if "@depth" in frame.stream:
                books.on_depth_event(parse_combined_frame(frame.text)[1], frame.recv_ns)
        assert books.sync_for(symbol).is_live and not books.sync_for(symbol).gaps
    return {s: books.sync_for(s).book for s in recordings}


@pytest.fixture
def server(data_dir: Path) -> Iterator[tuple[MexcReplayServer, str]]:
    srv = MexcReplayServer(data_dir, deterministic=True)
    with srv.running(port=free_port()) as base:
        yield srv, base


def _ws(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws"


def run_feed(base: str, until: Callable[[Collected, LiveConnection], bool]) -> tuple[Collected, LiveConnection]:
    return run_live_feed(MexcLive(list(SYMBOLS.values()), _ws(base), base), until, timeout=120.0)


def replay_complete(recs: dict[str, Recording], books: dict[str, OrderBook]) -> Callable[[Collected, LiveConnection], bool]:
    """Every recorded trade and top of book has arrived, and each book reached the recording's last update id."""
    want = {(kind, SYMBOLS[s]): n for s, r in recs.items()
            for kind, n in ((Tick, len(r.trades)), (TopOfBook, sum(f.stream.endswith("@bookTicker") for f in r.frames)))}
    last_book: dict[str, int] = {}

    def done(c: Collected, _conn: LiveConnection) -> bool:
        if c.events and isinstance(c.events[-1], BookUpdate):
            last_book[c.events[-1].ticker] = c.events[-1].update_id
        return (all(c.counts[key] >= n for key, n in want.items())
                and all(last_book.get(SYMBOLS[s]) == b.update_id for s, b in books.items()))

    return done


def book_from(updates: list[BookUpdate], ticker: str) -> OrderBook:
    book = OrderBook(ticker)
    for u in updates:
        levels = ([(lv.price, lv.size) for lv in u.bids], [(lv.price, lv.size) for lv in u.asks])
        if u.snapshot:
            book.apply_snapshot(*levels, u.update_id)
        else:
            book.apply_delta(*levels)
            book.update_id = u.update_id
    return book


def _top(book: OrderBook) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    bids, asks = book.top(TOP_N)
    return [(lv.price, lv.size) for lv in bids], [(lv.price, lv.size) for lv in asks]


def test_reencoded_frames_decode_to_the_recorded_values(recordings: dict[str, Recording]) -> None:
    rec = recordings["BTCUSDT"]
    trade = next(f for f in rec.frames if f.stream.endswith("@trade"))
    push = codec.decode_push(reencode(trade, "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"))
    d = orjson.loads(trade.data_text())
    assert isinstance(push, codec.DealsPush) and push.symbol == "BTCUSDT"
    assert push.deals == (codec.Deal(d["p"], d["q"], 2 if d["m"] else 1, d["T"]),)
    diff = next(f for f in rec.frames if f.stream.endswith("@depth@100ms"))
    push2 = codec.decode_push(reencode(diff, "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"))
    d = orjson.loads(diff.data_text())
    assert isinstance(push2, codec.DepthPush)
    assert (push2.from_version, push2.to_version, push2.bids, push2.asks) == (d["U"], d["u"], d["b"], d["a"])


def test_answers_pong_and_errors_are_read_as_documented() -> None:
    adapter = MexcLive(list(SYMBOLS.values()), "ws://unused/ws", "http://unused")
    [sub] = adapter.subscribe_frames()
    assert orjson.loads(sub) == {"method": "SUBSCRIPTION", "params": [
        f"spot@public.aggre.{k}.v3.api.pb@100ms@{s}" for s in SYMBOLS for k in ("deals", "depth", "bookTicker")]}
    assert adapter.keepalive.ping_frame == '{"method":"PING"}'
    assert adapter.is_pong('{"id":0,"code":0,"msg":"PONG"}') and not adapter.is_pong(b"\x0a")
    assert adapter.on_frame('{"id":0,"code":0,"msg":"spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"}', 1) == []
    with pytest.raises(FrameParseError) as err:
        adapter.on_frame('{"id":0,"code":1,"msg":"Not Subscribed successfully!"}', 1)
    assert err.value.cause == "subscription_error"
    with pytest.raises(FrameParseError) as err:
        adapter.on_frame(b"\x0a\xff\xffbroken", 1)
    assert err.value.cause == "protobuf"
    with pytest.raises(ValueError, match="30"):
        MexcLive([f"MEXC:X{i}/USDT" for i in range(11)], "ws://unused/ws", "http://unused")


def test_every_recorded_trade_arrives_exactly_and_the_books_equal_the_binance_codes(
    server: tuple[MexcReplayServer, str], recordings: dict[str, Recording], binance_books: dict[str, OrderBook]
) -> None:
    _srv, base = server
    collected, conn = run_feed(base, replay_complete(recordings, binance_books))
    for symbol, rec in recordings.items():
        ticker = SYMBOLS[symbol]
        ticks = collected.of(Tick, ticker)
        assert [(t.price, t.size, t.buyer_is_maker, t.exchange_time_ns // 1_000_000) for t in ticks] == [
            (d["p"], d["q"], d["m"], d["T"]) for d in rec.trades]
        assert len({t.trade_id for t in ticks}) == len(ticks)
        updates = collected.of(BookUpdate, ticker)
        assert updates and updates[0].snapshot and sum(u.snapshot for u in updates) == 1
        ours, theirs = book_from(updates, ticker), binance_books[symbol]
        assert ours.update_id == theirs.update_id
        assert _top(ours) == _top(theirs)
        tops = collected.of(TopOfBook, ticker)
        assert len(tops) == sum(f.stream.endswith("@bookTicker") for f in rec.frames)
        print(f"{ticker}: {len(ticks)} trades, {len(updates)} book updates, {len(tops)} tops, final book id "
              f"{ours.update_id} (top {TOP_N} equal to the Binance code's book)")
    assert not collected.of(StreamGap) and conn.stats.gaps == 0
    assert sum(conn.stats.malformed.values()) == 0 and conn.stats.snapshots == 2


def test_a_dropped_depth_push_is_one_gap_and_only_its_symbol_resyncs(
    server: tuple[MexcReplayServer, str], recordings: dict[str, Recording], binance_books: dict[str, OrderBook]
) -> None:
    srv, base = server
    srv.state.set_faults(drop_depth_after=2000, drop_depth_count=1, fault_symbol="BTCUSDT", malformed_frames=2)
    complete = replay_complete(recordings, binance_books)
    collected, conn = run_feed(base, lambda c, conn: complete(c, conn) and "MEXC:BTC/USDT" in c.resynced)
    [gap] = collected.of(StreamGap)
    assert (gap.ticker, gap.how) == ("MEXC:BTC/USDT", "sequence_jump")
    assert gap.next_received > gap.first_missing == gap.last_seen + 1
    btc, eth = collected.of(BookUpdate, "MEXC:BTC/USDT"), collected.of(BookUpdate, "MEXC:ETH/USDT")
    assert sum(u.snapshot for u in btc) == 2 and sum(u.snapshot for u in eth) == 1
    assert conn.stats.snapshots == 3 and conn.stats.gaps == 1
    assert conn.stats.malformed == {"protobuf": 2}
    ours = book_from(btc, "MEXC:BTC/USDT")
    assert ours.update_id == binance_books["BTCUSDT"].update_id and _top(ours) == _top(binance_books["BTCUSDT"])
    eth_after_gap = [u for u in eth if u.receive_time_ns > gap.detected_at_ns]
    assert eth_after_gap, "ETH stopped streaming while BTC resynced"
    print(f"gap {gap.first_missing}..{gap.next_received - 1} on BTC; ETH kept {len(eth_after_gap)} updates meanwhile; "
          f"malformed {dict(conn.stats.malformed)} skipped; BTC book equal again after the resync")


def _ccxt(base: str) -> Any:
    exchange = ccxt.pro.mexc({"options": {"tradesLimit": 100_000}})
    for api in exchange.urls["api"].values():
        for name, url in list(api.items()) if isinstance(api, dict) else ():
            if isinstance(url, str) and url.startswith("https://api.mexc.com"):
                api[name] = url.replace("https://api.mexc.com", base)
    exchange.urls["api"]["ws"]["spot"] = _ws(base)
    return exchange


async def _until(deadline_s: float, done: Callable[[], bool], step: Callable[[], Awaitable[Any]]) -> None:
    """Await `step()` (a ccxt.pro watch) until done() or the deadline; a quiet second is not an error (a watch
    can miss the resolve of the frame that completed the replay)."""
    deadline = time.monotonic() + deadline_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("ccxt.pro did not get the whole replay before the deadline")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(step(), timeout=1.0)


def test_ccxt_pro_mexc_watch_trades_gets_every_recorded_trade(
    server: tuple[MexcReplayServer, str], recordings: dict[str, Recording]
) -> None:
    _srv, base = server
    for symbol, rec in recordings.items():
        unified = SYMBOLS[symbol].split(":")[1]

        async def watch(unified: str = unified, rec: Recording = rec) -> list[Any]:
            exchange = _ccxt(base)  # one connection a symbol: a deterministic replay starts at its first subscription
            try:
                await exchange.load_markets()
                await _until(60, lambda: len(exchange.trades.get(unified, ())) >= len(rec.trades),
                             lambda: exchange.watch_trades(unified))
                return list(exchange.trades[unified])
            finally:
                await exchange.close()

        theirs = asyncio.run(watch())
        assert [(t["timestamp"], t["info"]["price"], t["info"]["quantity"], t["price"], t["amount"], t["side"])
                for t in theirs] == [(d["T"], d["p"], d["q"], float(d["p"]), float(d["q"]), "sell" if d["m"] else "buy")
                                     for d in rec.trades]
        print(f"{symbol}: ccxt.pro mexc watch_trades {len(theirs)} trades, recorded {len(rec.trades)}: all equal")


PACED_SPEED = 25.0  # recorded seconds per second


def test_ccxt_pro_mexc_watch_order_book_converges_to_our_book(
    data_dir: Path, recordings: dict[str, Recording], binance_books: dict[str, OrderBook]
) -> None:
    """Paced replay (a live market at 25x): ccxt joins mid-recording, takes its REST snapshot after its 25 buffered
    pushes (its own snapshotDelay) and applies every push after it; its book must end equal to ours."""
    last_from = {s: max(int(parse_combined_frame(f.text)[1]["U"]) for f in rec.frames if "@depth" in f.stream)
                 for s, rec in recordings.items()}
    unified = {s: SYMBOLS[s].split(":")[1] for s in recordings}

    async def watch(base: str) -> tuple[dict[str, Any], dict[str, int]]:
        exchange = _ccxt(base)
        first_nonce: dict[str, int] = {}
        try:
            await exchange.load_markets()

            async def follow(symbol: str) -> None:
                u = unified[symbol]

                async def step() -> None:
                    await exchange.watch_order_book(u)
                    first_nonce.setdefault(symbol, exchange.orderbooks[u]["nonce"])

                await _until(180, lambda: exchange.orderbooks.get(u, {}).get("nonce") == last_from[symbol], step)

            await asyncio.gather(*(follow(s) for s in recordings))
            books = {s: exchange.orderbooks[unified[s]] for s in recordings}
            return {s: (b["bids"][:TOP_N], b["asks"][:TOP_N], b["nonce"]) for s, b in books.items()}, first_nonce
        finally:
            await exchange.close()

    with MexcReplayServer(data_dir, deterministic=False, speed=PACED_SPEED).running(port=free_port()) as base:
        theirs, first_nonce = asyncio.run(watch(base))
    for symbol, rec in recordings.items():
        bids, asks, nonce = theirs[symbol]
        pushes_after = sum(1 for f in rec.frames if "@depth" in f.stream
                           and int(parse_combined_frame(f.text)[1]["U"]) > first_nonce[symbol])
        our_bids, our_asks = _top(binance_books[symbol])
        print(f"{symbol}: ccxt.pro mexc book first at {first_nonce[symbol]}, then {pushes_after} depth pushes to "
              f"fromVersion {nonce}; top {TOP_N} a side compared with the Binance code's book")
        assert pushes_after > 1000
        assert (bids, asks) == ([[float(p), float(q)] for p, q in our_bids], [[float(p), float(q)] for p, q in our_asks])


def test_rest_history_pages_equal_the_recording(server: tuple[MexcReplayServer, str], recordings: dict[str, Recording]) -> None:
    _srv, base = server
    rec = recordings["BTCUSDT"]
    first_ms, last_ms = rec.aggs[0].time_ms, rec.aggs[-1].time_ms
    with MexcRest(base) as rest:
        pages = list(rest.iter_trades("MEXC:BTC/USDT", first_ms * 1000, (last_ms + 1) * 1000, page_size=500))
        candle_pages = list(rest.iter_candles("MEXC:BTC/USDT", 60, rec.first_minute * 60_000_000,
                                              (rec.last_minute + 1) * 60_000_000, page_size=2))
    ticks = [t for p in pages for t in p]
    assert len(pages) > 10 and len({t.trade_id for t in ticks}) == len(ticks)
    assert [(t.price, t.size, t.buyer_is_maker, t.exchange_time_ns // 1_000_000) for t in ticks] == [
        (fmt_e8(a.price_e8), fmt_e8(a.qty_e8), a.buyer_maker, a.time_ms) for a in rec.aggs]
    candles = [c for p in candle_pages for c in p]
    want = []
    for m in range(rec.first_minute, rec.last_minute + 1):
        s = summarize(rec.aggs_by_minute[m])
        assert s is not None
        want.append((m * 60_000_000, fmt_e8(s.open_e8), fmt_e8(s.high_e8), fmt_e8(s.low_e8), fmt_e8(s.close_e8),
                     fmt_e8(s.volume_e8)))
    assert [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in candles] == want
    print(f"REST history: {len(ticks)} aggregate trades in {len(pages)} pages, {len(candles)} 1m candles in "
          f"{len(candle_pages)} pages: equal to the recording")
