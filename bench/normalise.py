"""Normalisation throughput on recorded frames: ours against cryptofeed 2.4.x and ccxt.pro, in the same run.

For each exchange and each implementation, the same recorded websocket frames (raw JSON text) go through:

- trade frames/s: text -> decoded -> the implementation's normalised trade (ours: live_relay.messages.Tick;
  cryptofeed: its exchange's message_handler -> Trade -> an async no-op callback; ccxt.pro: json.loads ->
  exchange.handle_message -> its trade dict in the ArrayCache);
- depth frames/s: text -> decoded -> applied to the implementation's own local book (sync rules included);
- book updates/s: already-decoded diff events applied to the book (no JSON decoding): diffs/s and levels/s;
- the same with the best bid and ask read after every diff (what a consumer of the top pays: cryptofeed's
  order_book sorts lazily, on access).

Binance: books start from the recorded REST snapshot; cryptofeed's and ccxt's symbol tables come from the replay
server's exchangeInfo (loaded before timing), cryptofeed's snapshot is set directly where its _snapshot would have
fetched it. OKX, Kraken, Bybit, Coinbase (bench/normalise_cases/): books start from their in-stream snapshot,
symbol tables from the recorded instruments answers. Every implementation sees the frames in recorded order, and
the books of all three must end equal (top 20 levels) before their book rows are timed. No network.

Run: .venv/bin/python -m bench.normalise [--repeat 5] [--write bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson

from bench.common import write_section
from bench.normalise_cases import CASES, StreamCase
from ingestors.binance.depth_sync import BinanceBooks, parse_depth_event
from ingestors.binance.parse import AGG_TRADE, agg_trade_tick, decode_event, decode_frame
from ingestors.binance.recording import Recording, load_recordings
from ingestors.binance.replay import ReplayServer
from marketlake.settings import get_settings

HEADING = "## Normalisation throughput vs cryptofeed and ccxt (issue 3)"


TRADES, DEPTH, BOOK, BBO = ("trade frames/s", "depth frames/s (text to book)", "book diffs/s (decoded events)",
                           "book diffs/s + best bid/ask read each diff")
DEPTH_CHECKED, BOOK_CHECKED = ("depth frames/s, cryptofeed verifying checksums too",
                               "book diffs/s, cryptofeed verifying checksums too")
COINBASE_DEPTH = ("COINBASE depth frames: every frame of the connection from the first level2 snapshot on — the "
                  "l2_data frames and the ticker, market_trades, heartbeats and candles frames between them, as "
                  "Advanced Trade numbers all channels of a connection together (sequence_num) and our adapter "
                  "checks that sequence (fed the l2_data frames alone it would see gaps and resync).")
Impl = tuple[Callable[[], Any], Callable[[Any], Any]]  # (setup, timed run(state) -> items)


@dataclass
class Row:
    exchange: str
    measure: str  # TRADES, DEPTH, BOOK, BBO
    items: int
    ours: float  # items per second
    cryptofeed: float | None
    ccxt: float | None
    levels: int = 0  # price levels in the diffs (book rows)


async def _best(setup: Callable[[], Any], run: Callable[[Any], Any], repeat: int) -> tuple[int, float]:
    """setup() then time run(state) (a function or a coroutine function), `repeat` times: (items, best seconds)."""
    best, n = float("inf"), 0
    for _ in range(repeat):
        state = await _maybe(setup())
        t0 = time.perf_counter()
        n = await _maybe(run(state))
        best = min(best, time.perf_counter() - t0)
    return n, best


async def _maybe(x: Any) -> Any:
    return await x if asyncio.iscoroutine(x) else x


async def timed_rows(exchange: str, measures: list[tuple[str, list[Impl | None], int]], repeat: int) -> list[Row]:
    """Each measure's (ours, cryptofeed, ccxt) implementations timed (None: n/a); all must count the same items."""
    rows = []
    for measure, impls, levels in measures:
        timed = [None if impl is None else await _best(*impl, repeat) for impl in impls]
        counts = {t[0] for t in timed if t is not None}
        assert len(counts) == 1, (exchange, measure, timed)
        n = counts.pop()
        ours, cf, cx = (None if t is None else n / t[1] for t in timed)
        assert ours is not None
        rows.append(Row(exchange, measure, n, ours, cf, cx, levels))
    return rows


# Binance ------------------------------------------------------------------------------------------------


class _BinanceCase:
    """The recorded frames of both Binance recordings, and each implementation set up to read them."""

    def __init__(self, recs: dict[str, Recording], info: dict[str, Any], markets: dict[str, Any]) -> None:
        from cryptofeed.exchanges import Binance
        from cryptofeed.symbols import Symbols

        self.recs, self.markets = recs, markets
        self.trades = [f.text for r in recs.values() for f in r.frames if f.stream.endswith("@aggTrade")]
        self.depth = [f.text for r in recs.values() for f in r.frames if "@depth" in f.stream]
        self.depth_data = [orjson.loads(t)["data"] for t in self.depth]
        self.levels = sum(len(d["b"]) + len(d["a"]) for d in self.depth_data)
        syms, extra = Binance._parse_symbol_data(info)  # what cryptofeed would read from exchangeInfo
        Symbols.set(Binance.id, syms, extra)

    # ours: ingestors.binance.parse (typed msgspec decoding) + depth_sync.BinanceBooks (the live adapter's code path)
    @staticmethod
    def ours_trades(texts: list[str]) -> int:
        for text in texts:
            agg_trade_tick(decode_event(AGG_TRADE, decode_frame(text)), "BINANCE:BTC/USDT")
        return len(texts)

    def our_books(self) -> BinanceBooks:
        books = BinanceBooks()
        for s, r in self.recs.items():
            sync = books.sync_for(s)
            sync.on_diff(_first_diff(r))
            sync.on_snapshot(r.snapshot)
        return books

    def ours_depth(self, books: BinanceBooks) -> int:
        for text in self.depth:
            books.on_depth_event(msgspec.json.decode(decode_frame(text).data), 0)
        return len(self.depth)

    def ours_book(self, books: BinanceBooks, bbo: bool = False) -> int:
        for d in self.depth_data:
            books.on_depth_event(d, 0)
            if bbo:
                book = books.sync_for(d["s"]).book
                book.best_bid(), book.best_ask()
        return len(self.depth_data)

    # cryptofeed 2.4.x: Binance.message_handler (yapic json, Decimal) -> _trade / _book -> callbacks
    def cf_feed(self, with_books: bool = False) -> Any:
        from decimal import Decimal

        from cryptofeed.defines import L2_BOOK, TRADES
        from cryptofeed.exchanges import Binance
        from cryptofeed.types import OrderBook as CfBook

        async def noop(*_a: Any, **_k: Any) -> None:
            return None

        feed = Binance(symbols=["BTC-USDT", "ETH-USDT"], channels=[TRADES, L2_BOOK], callbacks={TRADES: noop, L2_BOOK: noop})
        feed._reset()
        if with_books:
            for s, r in self.recs.items():  # what Binance._snapshot does with the REST answer
                std = feed.exchange_symbol_to_std_symbol(s)
                feed.last_update_id[std] = r.snapshot["lastUpdateId"]
                feed._l2_book[std] = CfBook(feed.id, std, max_depth=feed.max_depth,
                                            bids={Decimal(p): Decimal(q) for p, q in r.snapshot["bids"]},
                                            asks={Decimal(p): Decimal(q) for p, q in r.snapshot["asks"]})
        return feed

    @staticmethod
    async def cf_frames(feed: Any, texts: list[str]) -> int:
        for text in texts:
            await feed.message_handler(text, None, 0.0)
        return len(texts)

    async def cf_book(self, feed: Any, bbo: bool = False) -> int:
        std = {s: feed.exchange_symbol_to_std_symbol(s) for s in self.recs}
        for d in self.depth_data:
            await feed._book(d, d["s"], 0.0)
            if bbo:
                book = feed._l2_book[std[d["s"]]].book
                book.bids.index(0), book.asks.index(0)
        return len(self.depth_data)

    # ccxt.pro: json.loads -> binance.handle_message -> handle_trade / handle_order_book (its sync rules)
    async def ccxt_ex(self, with_books: bool = False) -> tuple[Any, Any]:
        import ccxt.pro

        ex = ccxt.pro.binance({"options": {"defaultType": "spot", "tradesLimit": 1_000_000}})
        ex.set_markets(self.markets)
        client = ex.client("ws://127.0.0.1/stream")  # never connected: handle_message only reads its url
        if with_books:
            for s, r in self.recs.items():  # what fetch_order_book_snapshot does with the REST answer
                symbol = ex.safe_market(s, None, None, "spot")["symbol"]
                book = ex.order_book({})
                book.reset(ex.parse_order_book(r.snapshot, symbol))
                book["nonce"] = r.snapshot["lastUpdateId"]
                ex.orderbooks[symbol] = book
        await ex.close()
        return ex, client

    @staticmethod
    def ccxt_frames(state: tuple[Any, Any], texts: list[str]) -> int:
        ex, client = state
        for text in texts:
            ex.handle_message(client, json.loads(text))
        return len(texts)

    def ccxt_book(self, state: tuple[Any, Any], bbo: bool = False) -> int:
        ex, client = state
        symbols = {s: ex.safe_market(s, None, None, "spot")["symbol"] for s in self.recs}
        for d in self.depth_data:
            ex.handle_order_book(client, d)
            if bbo:
                ob = ex.orderbooks[symbols[d["s"]]]
                ob["bids"][0], ob["asks"][0]
        return len(self.depth_data)


def _first_diff(r: Recording) -> Any:
    """The first depth diff after the snapshot: our sync applies a snapshot once an event is buffered."""
    for f in r.frames:
        if "@depth" in f.stream:
            return parse_depth_event(orjson.loads(f.text)["data"])
    raise ValueError(f"{r.symbol}: no depth diff after the snapshot")


async def _ccxt_markets(base: str) -> dict[str, Any]:
    import ccxt.pro

    ex = ccxt.pro.binance({"options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}}})
    for name, url in list(ex.urls["api"].items()):
        if isinstance(url, str) and url.startswith("https://api.binance.com"):
            ex.urls["api"][name] = url.replace("https://api.binance.com", base)
    try:
        return dict(await ex.load_markets())
    finally:
        await ex.close()


async def _check_same_books(c: _BinanceCase) -> None:
    """Before timing: the three implementations end the replay with the same top 20 levels (else the race is moot)."""
    ours = c.our_books()
    c.ours_depth(ours)
    feed = c.cf_feed(True)
    await c.cf_frames(feed, c.depth)
    state = await c.ccxt_ex(True)
    c.ccxt_frames(state, c.depth)
    for s in c.recs:
        bids, asks = ours.sync_for(s).book.top(20)
        mine = ([[float(x.price), float(x.size)] for x in bids], [[float(x.price), float(x.size)] for x in asks])
        cfb = feed._l2_book[feed.exchange_symbol_to_std_symbol(s)].book
        cf = ([[float(p), float(q)] for p, q in list(cfb.bids.to_list())[:20]],
              [[float(p), float(q)] for p, q in list(cfb.asks.to_list())[:20]])
        cxb = state[0].orderbooks[state[0].safe_market(s, None, None, "spot")["symbol"]]
        cx = (cxb["bids"][:20], cxb["asks"][:20])
        if not mine == cf == cx:
            raise AssertionError(f"{s}: the three books differ at the end of the replay")


async def bench_binance(data_dir: Path, repeat: int) -> list[Row]:
    import httpx

    recs = load_recordings(data_dir)
    with ReplayServer(data_dir).running() as base:  # exchangeInfo for cryptofeed's and ccxt's symbol tables
        info = httpx.get(f"{base}/api/v3/exchangeInfo", timeout=30).json()
        markets = await _ccxt_markets(base)
    c = _BinanceCase(recs, info, markets)
    measures: list[tuple[str, list[Impl | None], int]] = [
        (TRADES, [(lambda: c.trades, c.ours_trades), (c.cf_feed, lambda f: c.cf_frames(f, c.trades)),
                  (c.ccxt_ex, lambda x: c.ccxt_frames(x, c.trades))], 0),
        (DEPTH, [(c.our_books, c.ours_depth), (lambda: c.cf_feed(True), lambda f: c.cf_frames(f, c.depth)),
                 (lambda: c.ccxt_ex(True), lambda x: c.ccxt_frames(x, c.depth))], c.levels),
        (BOOK, [(c.our_books, c.ours_book), (lambda: c.cf_feed(True), c.cf_book),
                (lambda: c.ccxt_ex(True), c.ccxt_book)], c.levels),
        (BBO, [(c.our_books, lambda b: c.ours_book(b, True)), (lambda: c.cf_feed(True), lambda f: c.cf_book(f, True)),
               (lambda: c.ccxt_ex(True), lambda x: c.ccxt_book(x, True))], c.levels),
    ]
    await _check_same_books(c)
    return await timed_rows("BINANCE", measures, repeat)


# OKX, Kraken, Bybit, Coinbase (bench/normalise_cases/) --------------------------------------------------------


async def bench_stream(c: StreamCase, repeat: int) -> list[Row]:
    """The four rows of one in-stream-snapshot exchange; an implementation that cannot read the recording, or whose
    books do not end equal to ours, is n/a (for every row, or for the book rows), with the reason in c.notes."""
    await c.prepare()
    cf_same, ccxt_same = await c.check_books()
    cf_ok, ccxt_ok = not c.cf_unreadable, not c.ccxt_unreadable
    for name, why in (("cryptofeed 2.4.1", c.cf_unreadable), ("ccxt.pro 4.5.90", c.ccxt_unreadable)):
        if why:
            c.notes.append(f"{c.exchange} {name}: n/a — {why}")

    def pick(ok: bool, impl: Impl) -> Impl | None:
        return impl if ok else None

    depth_n = len(c.depth)
    measures: list[tuple[str, list[Impl | None], int]] = [
        (TRADES, [(c.ours_adapters, lambda a: c.ours_frames(a, c.trades)),
                  pick(cf_ok, (c.cf_feed, lambda f: c.cf_frames(f, c.trades))),
                  pick(ccxt_ok, (c.ccxt_ex, lambda x: c.ccxt_frames(x, c.trades)))], 0),
        (DEPTH, [(c.ours_adapters, lambda a: c.ours_frames(a, c.depth)),
                 pick(cf_same, (c.cf_feed, lambda f: c.cf_frames(f, c.depth))),
                 pick(ccxt_same, (c.ccxt_ex, lambda x: c.ccxt_frames(x, c.depth)))], c.levels),
        (BOOK, [(c.ours_books, c.ours_book), pick(cf_same, (c.cf_books, c.cf_book)),
                pick(ccxt_same, (c.ccxt_books, c.ccxt_book))], c.levels),
        (BBO, [(c.ours_books, lambda b: c.ours_book(b, True)), pick(cf_same, (c.cf_books, lambda f: c.cf_book(f, True))),
               pick(ccxt_same, (c.ccxt_books, lambda x: c.ccxt_book(x, True)))], c.levels),
    ]
    if c.sends_checksums and cf_same:  # like for like: cryptofeed's checksum_validation on, as ours always is
        feed = c.cf_feed(checksum_validation=True)
        await c.cf_frames(feed, c.depth)  # raises cryptofeed's BadChecksum if its checksum disagrees with the exchange
        measures.insert(2, (DEPTH_CHECKED, [(c.ours_adapters, lambda a: c.ours_frames(a, c.depth)),
                                            (lambda: c.cf_feed(checksum_validation=True), lambda f: c.cf_frames(f, c.depth)),
                                            None], c.levels))
        measures.insert(4, (BOOK_CHECKED, [(c.ours_books, c.ours_book), (lambda: c.cf_books(True), c.cf_book), None],
                            c.levels))
    assert depth_n and c.trades and c.diffs, (c.exchange, depth_n, len(c.trades), len(c.diffs))
    return await timed_rows(c.exchange, measures, repeat)


# Report ---------------------------------------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _ratio(a: float, b: float | None) -> str:
    return "n/a" if not b else f"**{a / b:.2f}×**"


def markdown(rows: list[Row], repeat: int, command: str, notes: list[str] = ()) -> str:  # type: ignore[assignment]
    lines = [
        HEADING, "",
        f"Command: `{command}` (best of {repeat} runs each; Python {platform.python_version()}, "
        "one process, 2-core machine). Same recorded frames for all three; Binance books start from the recorded "
        "REST snapshot, the others' from their in-stream snapshot (depth frames: every book frame from its book's "
        "first snapshot on). Ours: Binance's parse + depth_sync, the others' live adapter `on_frame` (decoded rows: "
        "`ingestors/<x>/book.py`). cryptofeed 2.4.1 (its exchange's `message_handler` / `_book`, callbacks are async "
        "no-ops), ccxt.pro 4.5.90 (`json.loads` + `handle_message` / `handle_order_book`). Each implementation "
        "keeps its own checks on: ours verifies OKX's and Kraken's CRC32 on every update, cryptofeed's "
        "checksum_validation is off by default; the rows 'cryptofeed verifying checksums too' turn it on (like for "
        "like). Ours: OrderBook compiled (native/), messages msgspec Structs, Binance frames and OKX/Bybit trades "
        "decoded typed by msgspec.", "",
        "| exchange | measure | items | ours /s | cryptofeed /s | ccxt.pro /s | ours ÷ cryptofeed | ours ÷ ccxt |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        items = f"{r.items}" + (f" ({r.levels} levels)" if r.levels else "")
        lines.append(f"| {r.exchange} | {r.measure} | {items} | {_fmt(r.ours)} | {_fmt(r.cryptofeed)} | "
                     f"{_fmt(r.ccxt)} | {_ratio(r.ours, r.cryptofeed)} | {_ratio(r.ours, r.ccxt)} |")
    lines += [""] + [f"- {n}" for n in notes] if notes else []
    return "\n".join(lines) + "\n"


async def bench_all(data_dir: Path, repeat: int) -> tuple[list[Row], list[str]]:
    logging.disable(logging.WARNING)  # cryptofeed warns on every frame of a channel it does not handle (Coinbase)
    rows, notes = await bench_binance(data_dir, repeat), [COINBASE_DEPTH]
    for case in CASES:
        c = case(data_dir)
        rows += await bench_stream(c, repeat)
        notes += c.notes
    return rows, notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--write", type=Path, default=None, help="replace this benchmark's section of that file")
    args = ap.parse_args()
    data_dir = Path(get_settings().data_dir)
    rows, notes = asyncio.run(bench_all(data_dir, args.repeat))
    command = ".venv/bin/python -m bench.normalise" + (f" --repeat {args.repeat}" if args.repeat != 5 else "")
    text = markdown(rows, args.repeat, command, notes)
    print(text)
    if args.write:
        write_section(args.write, HEADING, text)


if __name__ == "__main__":
    main()
