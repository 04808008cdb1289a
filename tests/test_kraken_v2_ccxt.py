"""ccxt.pro kraken (websocket v2) against our Kraken replay server's /v2, transcoded from the v1 recording.

The recording (KRAKEN.jsonl.zst, 2021-04-17) is websocket v1; ccxt.pro 4.5 speaks only v2
(tests/test_ccxt_kraken.py). ingestors/kraken/replay_v2.py serves /v2 by re-encoding the
recorded v1 frames (ingestors/kraken/v2.py). ccxt.pro kraken connects there (its
urls["api"]["ws"]["publicV2"]), with the markets ccxt's own fetch_markets parses from the recorded
/0/public/AssetPairs answer (set_markets: the recording has no /0/public/Assets for load_markets):

- watch_trades receives the recorded trades: ids, times, sides, prices and sizes equal as decimals;
- watch_order_book (ccxt's own snapshot + delta handling and truncation to the subscribed depth)
  ends, for all 10 recorded pairs, at the book our v1 code (ingestors/kraken/book.KrakenBooks,
  checking the recorded v1 checksums) builds from the recorded v1 frames: every level equal as decimals;
- every v2 book push's checksum is recomputed on ccxt's own book right after ccxt applied the push,
  with ccxt's own checksum pieces (Exchange.format_number, Exchange.crc32) over its top 10 asks then
  bids, each formatted at the precision of ccxt's parsed market (decimal_to_precision, zero padded).

ccxt's own switch (options["watchOrderBook"]["checksum"] = True) cannot be used in ccxt 4.5.90's
Python: its check calls format_number(level[0]), i.e. str.split on the float it stores, and raises
AttributeError on the first book push from any server (the last test pins this); and that formula,
were it given str(float), would write 3.00000000 as "30" where Kraken's checksum has "300000000".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import orjson
import pytest
from ccxt.base.decimal_to_precision import PAD_WITH_ZERO, ROUND

from ingestors.kraken.book import KrakenBooks
from ingestors.kraken.replay import REPLAY
from ingestors.kraken.v2 import KrakenV2Parser, V1ToV2, precisions_from_asset_pairs, v2_symbol
from ingestors.replay.exchanges import replay_for
from ingestors.replay.server import ReplayServer, recording_path
from ingestors.replay.session import ReplaySession, load_session
from ingestors.replay.spec import Kind

from .history_recorded import recorded_trades

DEPTH = 10  # ccxt's default book subscription (and the checksum's levels)


# ---------------------------------------------------------------- the recording, read without the v2 code


@pytest.fixture(scope="module")
def session(data_dir: Path) -> ReplaySession:
    return load_session(recording_path(data_dir, REPLAY), REPLAY)


@pytest.fixture(scope="module")
def v1_books(session: ReplaySession) -> KrakenBooks:
    """Our v1 books after every recorded frame (the recorded v1 checksums all verified)."""
    books = KrakenBooks()
    for frame in session.streams["/"].frames:
        if frame.tag.kind is Kind.DATA:
            books.on_frame(frame.text, frame.recv_ns)
    assert not books.gaps and all(b.stats.checksum_failures == 0 for b in books.books.values())
    return books


@pytest.fixture(scope="module")
def precisions(session: ReplaySession) -> dict[str, Any]:
    (answer,) = [a for a in session.http if a.path == "/0/public/AssetPairs"]
    return precisions_from_asset_pairs(answer.body)


# ---------------------------------------------------------------- server and ccxt


@pytest.fixture(scope="module")
def base(data_dir: Path) -> Iterator[str]:
    with ReplayServer(replay_for("KRAKEN"), data_dir, deterministic=True).running() as url:
        yield url


@pytest.fixture(scope="module")
def markets(base: str) -> list[dict[str, Any]]:
    """ccxt's own fetch_markets from the recorded /0/public/AssetPairs."""
    exchange = ccxt.kraken()
    exchange.urls["api"]["public"] = exchange.urls["api"]["private"] = base
    return exchange.fetch_markets()


def pro(base: str, markets: list[dict[str, Any]], **options: Any) -> Any:
    exchange = ccxt.pro.kraken({"options": {"tradesLimit": 100_000, **options}})
    exchange.urls["api"]["public"] = exchange.urls["api"]["private"] = base
    ws = base.replace("http://", "ws://")
    exchange.urls["api"]["ws"]["public"] = ws + "/"
    exchange.urls["api"]["ws"]["publicV2"] = ws + "/v2"
    exchange.set_markets(markets)
    return exchange


async def until(deadline_s: float, done: Callable[[], bool], step: Callable[[], Any]) -> None:
    """Await `step()` (a ccxt.pro watch) until done() or the deadline; a quiet second is not an error."""
    deadline = time.monotonic() + deadline_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("ccxt.pro did not get the whole replay before the deadline")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(step(), timeout=1.0)


def dec(x: Any) -> Decimal:
    return Decimal(str(x))


# ---------------------------------------------------------------- trades


def test_ccxt_pro_watch_trades_v2_equals_the_recorded_trades(data_dir: Path, base: str, markets: list[dict[str, Any]],
                                                             session: ReplaySession) -> None:
    symbols = sorted({v2_symbol(pair) for _, pair in session.streams["/"].key_conn})
    expected = {s: recorded_trades(data_dir, "KRAKEN", s) for s in ("XMR/USD", "SC/EUR")}  # the pairs that traded
    total = sum(map(len, expected.values()))

    async def watch() -> dict[str, list[dict[str, Any]]]:
        exchange = pro(base, markets)
        try:
            await until(60, lambda: sum(len(exchange.trades.get(s, ())) for s in symbols) >= total,
                        lambda: exchange.watch_trades_for_symbols(symbols))
            return {s: list(exchange.trades.get(s, ())) for s in symbols}
        finally:
            await exchange.close()

    theirs = asyncio.run(watch())
    for symbol in symbols:
        got = [(t["id"], t["timestamp"], dec(t["price"]), dec(t["amount"]), t["side"]) for t in theirs[symbol]]
        want = [(r.trade_id, r.ts_ns // 1_000_000, Decimal(r.price), Decimal(r.size), "sell" if r.buyer_is_maker else "buy")
                for r in expected.get(symbol, [])]
        if want or got:
            print(f"{symbol}: ccxt.pro watch_trades got {len(got)} trades over v2, recorded {len(want)}")
        assert got == want
    assert total == 10  # 3 XMR/USD + 7 SC/EUR recorded


# ---------------------------------------------------------------- books


def ccxt_checksum(exchange: Any, symbol: str) -> int:
    """Kraken's v2 checksum of ccxt's book, with ccxt's own pieces: the top 10 asks then bids, each price and amount
    written at ccxt's market precision (zero padded), format_number ('.' and leading zeros gone), crc32."""
    market = exchange.market(symbol)
    book = exchange.orderbooks[symbol]

    def text(value: float, tick: Any) -> str:
        return exchange.format_number(exchange.decimal_to_precision(exchange.number_to_string(value), ROUND, tick,
                                                                   exchange.precisionMode, PAD_WITH_ZERO))

    levels = list(book["asks"][:10]) + list(book["bids"][:10])
    payload = "".join(text(p, market["precision"]["price"]) + text(q, market["precision"]["amount"]) for p, q in levels)
    return int(exchange.crc32(payload, False))


def test_ccxt_pro_watch_order_book_v2_converges_to_our_v1_books_with_every_checksum_verified(
        base: str, markets: list[dict[str, Any]], session: ReplaySession, v1_books: KrakenBooks,
        precisions: dict[str, Any]) -> None:
    stream = session.streams["/"]
    pairs = sorted(pair for name, pair in stream.key_conn if name == "book")
    symbols = [v2_symbol(p) for p in pairs]

    # When is the replay over: the pushes the server sends a depth-10 subscriber (its own transcoder run here), also
    # read by our v2 parser, which must end at the v1 books too.
    transcoder, parser = V1ToV2(precisions), KrakenV2Parser(precisions)
    for s in symbols:
        transcoder.set_depth(s, DEPTH)
        parser.subscribe(s, DEPTH)
    pushes: dict[str, int] = dict.fromkeys(symbols, 0)
    for frame in stream.frames:
        if frame.tag.kind is Kind.DATA and frame.tag.keys <= {("book", p) for p in pairs}:
            for text in transcoder.frame(frame.text):
                pushes[orjson.loads(text)["data"][0]["symbol"]] += 1
                parser.on_frame(text, frame.recv_ns)
    assert parser.stats.checksum_failures == 0 and parser.stats.checksum_checked == sum(pushes.values())

    seen: dict[str, int] = dict.fromkeys(symbols, 0)
    checked, mismatched, float_formula_agrees = [0], [], [0]

    async def watch() -> dict[str, dict[str, Any]]:
        exchange = pro(base, markets)
        assert exchange.handle_option("watchOrderBook", "checksum", None) is False  # ccxt's own check: see module doc
        handle = exchange.handle_order_book

        def checked_handle(client: Any, message: dict[str, Any]) -> None:
            handle(client, message)
            (data,) = message["data"]
            symbol = data["symbol"]
            seen[symbol] += 1
            checked[0] += 1
            if ccxt_checksum(exchange, symbol) != data["checksum"]:
                mismatched.append((symbol, seen[symbol], data["checksum"]))
            book = exchange.orderbooks[symbol]  # ccxt's formula as written, were format_number given str(float)
            as_written = "".join(exchange.format_number(str(p)) + exchange.format_number(str(q))
                                 for p, q in [*book["asks"][:10], *book["bids"][:10]])
            float_formula_agrees[0] += exchange.crc32(as_written, False) == data["checksum"]

        exchange.handle_order_book = checked_handle
        try:
            await until(120, lambda: seen == pushes, lambda: exchange.watch_order_book_for_symbols(symbols))
            return {s: exchange.orderbooks[s] for s in symbols}
        finally:
            await exchange.close()

    theirs = asyncio.run(watch())
    for pair, symbol in zip(pairs, symbols, strict=True):
        ours = v1_books.books[("book-1000", pair)].book
        want_bids = [[Decimal(lv.price), Decimal(lv.size)] for lv in ours.bids(DEPTH)]
        want_asks = [[Decimal(lv.price), Decimal(lv.size)] for lv in ours.asks(DEPTH)]
        got_bids = [[dec(p), dec(q)] for p, q in theirs[symbol]["bids"]]
        got_asks = [[dec(p), dec(q)] for p, q in theirs[symbol]["asks"]]
        parsed = parser.books[symbol]
        print(f"{symbol}: ccxt.pro got {seen[symbol]} v2 pushes; book {len(got_bids)} bids + {len(got_asks)} asks, "
              f"our v1 book's top {DEPTH}: {len(want_bids)} + {len(want_asks)}")
        assert len(want_bids) == len(want_asks) == DEPTH
        assert (got_bids, got_asks) == (want_bids, want_asks)
        assert ([[Decimal(lv.price), Decimal(lv.size)] for lv in parsed.bids()],
                [[Decimal(lv.price), Decimal(lv.size)] for lv in parsed.asks()]) == (want_bids, want_asks)
    print(f"v2 checksums verified on ccxt's book after each push: {checked[0]} pushes, {len(mismatched)} mismatches "
          f"(transcoder: {transcoder.stats}); ccxt's checksum formula on str(float) would accept "
          f"{float_formula_agrees[0]} of them")
    assert checked[0] == sum(pushes.values()) > 3000 and not mismatched
    assert float_formula_agrees[0] < checked[0]


def test_ccxt_pro_kraken_own_checksum_option_cannot_run_in_python(markets: list[dict[str, Any]],
                                                                   precisions: dict[str, Any],
                                                                   session: ReplaySession) -> None:
    """ccxt 4.5.90's options["watchOrderBook"]["checksum"] = True: its check calls format_number(level[0]), str.split
    on the float ccxt stored, so the first book push raises AttributeError (on any server, Kraken's own included)."""
    transcoder = V1ToV2(precisions)
    first = next(t for f in session.streams["/"].frames if f.tag.kind is Kind.DATA for t in transcoder.frame(f.text)
                 if t.startswith('{"channel":"book"'))

    async def feed() -> None:
        exchange = pro("http://127.0.0.1:9", markets, watchOrderBook={"checksum": True})
        try:
            exchange.handle_order_book(type("Client", (), {"subscriptions": {}})(), orjson.loads(first))
        finally:
            await exchange.close()

    with pytest.raises(AttributeError, match="'float' object has no attribute 'split'"):
        asyncio.run(feed())
