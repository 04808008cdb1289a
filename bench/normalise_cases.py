"""The in-stream-snapshot exchanges of bench.normalise: OKX (v5), Kraken (websocket v1), Bybit (v5), Coinbase
(Advanced Trade), each read from its cryptofeed recording (/work/shared/data/cryptofeed/<EXCHANGE>.jsonl.zst).

A case holds the recorded frames (connection, text) in file order: the trade frames, and the book frames of every
book from its first snapshot on; the same frames decoded (the snapshots apart from the diffs); and each
implementation set up to read them:

- ours: the live adapter (`ingestors/<x>/live.py`, `on_frame(text, recv_ns)`), one per recorded connection; the
  decoded rows feed the exchange's book class (`ingestors/<x>/book.py`) directly;
- cryptofeed 2.4.1: the exchange's feed, `message_handler(text, conn, timestamp)` (its own JSON decoding), callbacks
  async no-ops, its symbol table set from the recorded instruments answer; decoded rows call its `_book`;
- ccxt.pro: `json.loads` + `handle_message(client, msg)` (one never-connected client per recorded URL), markets
  loaded from the recorded REST answers; decoded rows call its `handle_order_book`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import orjson

from ingestors.book import OrderBook
from ingestors.replay.session import read_records

Frame = tuple[str, str]  # (recorded connection, text)
Top = tuple[list[list[float]], list[list[float]]]  # best 20 bids, best 20 asks as [price, size]


def _top(bids: Iterable[Any], asks: Iterable[Any]) -> Top:
    return ([[float(p), float(q)] for p, q, *_ in list(bids)[:20]], [[float(p), float(q)] for p, q, *_ in list(asks)[:20]])


def _ours_top(book: OrderBook) -> Top:
    return _top(*book.top(20))


def _cf_top(cf_book: Any) -> Top:
    return _top(cf_book.book.bids.to_list(), cf_book.book.asks.to_list())


def _ccxt_top(ob: Any) -> Top:
    return _top(ob["bids"], ob["asks"])


async def _noop(*_a: Any, **_k: Any) -> None:
    return None


class StreamCase:
    """One recording; the subclass says which frames are trades and books, and drives each implementation."""

    exchange = ""
    ccxt_id = ""
    ccxt_options: dict[str, Any] = {}
    notes: list[str]  # footnotes of the markdown (n/a reasons)

    def __init__(self, data_dir: Path) -> None:
        self.urls: dict[str, str] = {}  # recorded connection -> its URL
        self.http: dict[str, Any] = {}  # recorded REST URL -> decoded answer (last one kept)
        frames: list[Frame] = []
        for r in read_records(data_dir / "cryptofeed" / f"{self.exchange}.jsonl.zst"):
            if r["t"] == "connect":
                self.urls[str(r["conn"])] = str(r["addr"])
            elif r["t"] == "recv" and "data" in r:
                frames.append((str(r["conn"]), r["data"] if isinstance(r["data"], str) else orjson.dumps(r["data"]).decode()))
            elif r["t"] == "http":
                self.http[str(r["url"])] = orjson.loads(r["data"]) if isinstance(r["data"], str) else r["data"]
        self.notes = []
        self.trades = [f for f in frames if self.is_trade(orjson.loads(f[1]))]
        started: set[Any] = set()
        self.depth: list[Frame] = []
        self.snapshots: list[tuple[str, Any]] = []  # (connection, decoded snapshot message) in order
        self.diffs: list[tuple[str, Any]] = []  # (connection, decoded diff message) after its book's snapshot
        for conn, text in frames:
            msg = orjson.loads(text)
            book = self.book_of(conn, msg)
            if book is None:
                if started and self.rides_with_books(msg):
                    self.depth.append((conn, text))
                continue
            key, is_snapshot = book
            if is_snapshot:
                started.add(key)
            if key in started:
                self.depth.append((conn, text))
                (self.snapshots if is_snapshot else self.diffs).append((conn, msg))
        self.levels = sum(self.levels_of(m) for _c, m in self.diffs)
        self.n_diffs = sum(self.count_of(m) for _c, m in self.diffs)

    # what the subclass says about the recorded frames
    def is_trade(self, msg: Any) -> bool:
        raise NotImplementedError

    def book_of(self, conn: str, msg: Any) -> tuple[Any, bool] | None:
        """(which book, is a snapshot) of a book frame; None for the others."""
        raise NotImplementedError

    def levels_of(self, msg: Any) -> int:
        raise NotImplementedError

    def rides_with_books(self, msg: Any) -> bool:
        """A frame that is no book frame but belongs to the depth frames once a book started (Coinbase)."""
        return False

    def count_of(self, msg: Any) -> int:
        return 1  # diffs in one decoded message (Coinbase: its update events)

    # ours: the live adapter per connection; the book class fed decoded messages
    def ours_live(self, conn: str) -> Any:
        raise NotImplementedError

    def ours_adapters(self) -> dict[str, Any]:
        return {conn: self.ours_live(conn) for conn in self.urls}

    @staticmethod
    def ours_frames(adapters: dict[str, Any], frames: list[Frame]) -> int:
        for conn, text in frames:
            adapters[conn].on_frame(text, 0)
        return len(frames)

    def ours_books(self) -> Any:
        """The book class with every snapshot applied (setup of the decoded rows)."""
        raise NotImplementedError

    def ours_book(self, books: Any, bbo: bool = False) -> int:
        raise NotImplementedError

    def ours_tops(self, adapters: dict[str, Any]) -> dict[str, Top]:
        raise NotImplementedError

    # cryptofeed 2.4.1
    cf_unreadable = ""  # why cryptofeed cannot read the recording at all ("" if it can)
    cf_books_differ = ""  # why its books cannot equal the others (set by check_books)

    def cf_feed(self) -> Any:
        raise NotImplementedError

    def cf_conn(self, conn: str) -> Any:
        return SimpleNamespace(address=self.urls[conn], subscription={}, uuid=conn)

    async def cf_frames(self, feed: Any, frames: list[Frame]) -> int:
        conns = {c: self.cf_conn(c) for c in self.urls}
        for conn, text in frames:
            await feed.message_handler(text, conns[conn], 0.0)
        return len(frames)

    async def cf_books(self) -> Any:
        feed = self.cf_feed()
        await self.cf_frames(feed, [(c, orjson.dumps(m).decode()) for c, m in self.snapshots])
        self._cf_decoded = [(c, json.loads(orjson.dumps(m), parse_float=Decimal), self.cf_symbol(c, m)) for c, m in self.diffs]
        return feed

    def cf_symbol(self, conn: str, msg: Any) -> str:
        """cryptofeed's symbol of a decoded book message."""
        raise NotImplementedError

    async def cf_book(self, feed: Any, bbo: bool = False) -> int:
        raise NotImplementedError

    def cf_tops(self, feed: Any) -> dict[str, Top]:
        raise NotImplementedError

    # ccxt.pro
    ccxt_unreadable = ""  # why ccxt.pro cannot read the recording at all ("" if it can)

    async def ccxt_markets(self) -> dict[str, Any]:
        """ccxt's load_markets, its REST calls answered from the recording (the recorded answer whose query
        shares most parameters with the call's)."""
        import ccxt.pro

        ex = getattr(ccxt.pro, self.ccxt_id)({"options": self.ccxt_options})
        ex.has["fetchCurrencies"] = False  # no recorded answer (and some need a key): markets only
        answers = [(urlsplit(u), a) for u, a in self.http.items()]

        async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
            u = urlsplit(url)
            want = set(filter(None, u.query.split("&")))
            same = [(len(want & set(filter(None, r.query.split("&")))), a) for r, a in answers if r.path == u.path]
            if not same:
                raise ccxt.pro.NetworkError(f"not in the recording: {url}")
            return max(same, key=lambda s: s[0])[1]

        ex.fetch = fetch
        try:
            return dict(await ex.load_markets())
        finally:
            await ex.close()

    async def ccxt_ex(self) -> tuple[Any, dict[str, Any]]:
        import ccxt.pro

        ex = getattr(ccxt.pro, self.ccxt_id)({"options": {**self.ccxt_options, "tradesLimit": 1_000_000}})
        ex.set_markets(self.markets)
        clients = {c: ex.client(u) for c, u in self.urls.items()}  # never connected: handle_message reads the url
        await ex.close()
        return ex, clients

    @staticmethod
    def ccxt_frames(state: tuple[Any, dict[str, Any]], frames: list[Frame]) -> int:
        ex, clients = state
        for conn, text in frames:
            ex.handle_message(clients[conn], json.loads(text))
        return len(frames)

    async def ccxt_books(self) -> tuple[Any, dict[str, Any]]:
        state = await self.ccxt_ex()
        self.ccxt_frames(state, [(c, orjson.dumps(m).decode()) for c, m in self.snapshots])
        self._ccxt_decoded = [(state[1][c], json.loads(orjson.dumps(m)), self.ccxt_symbol(c, m)) for c, m in self.diffs]
        return state

    def ccxt_book(self, state: tuple[Any, dict[str, Any]], bbo: bool = False) -> int:
        ex = state[0]
        for client, msg, symbol in self._ccxt_decoded:
            ex.handle_order_book(client, msg)
            if bbo:
                ob = ex.orderbooks[symbol]
                ob["bids"][0], ob["asks"][0]
        return self.n_diffs

    def ccxt_symbol(self, conn: str, msg: Any) -> str:
        raise NotImplementedError

    def ccxt_tops(self, state: tuple[Any, dict[str, Any]]) -> dict[str, Top]:
        return {self.key_of_ccxt(s): _ccxt_top(ob) for s, ob in state[0].orderbooks.items()}

    def key_of_ccxt(self, symbol: str) -> str:
        return symbol

    # before timing
    async def prepare(self) -> None:
        self.markets = await self.ccxt_markets()

    async def check_books(self) -> tuple[bool, bool]:
        """Replay the depth frames through all three; (cryptofeed's books equal ours, ccxt's equal ours) over the top
        20 levels of every book. A difference leaves that implementation's book rows n/a, with the reason noted."""
        adapters = self.ours_adapters()
        self.ours_frames(adapters, self.depth)
        mine = self.ours_tops(adapters)
        if not mine or any(not b or not a for b, a in mine.values()):
            raise AssertionError(f"{self.exchange}: our books are empty after the replay")
        same = []
        for name, theirs in (("cryptofeed", await self._cf_tops()), ("ccxt.pro", await self._ccxt_tops())):
            if theirs is None:
                same.append(False)
                continue
            bad = sorted(k for k in mine if theirs.get(k) != mine[k])
            if bad:
                self.notes.append(f"{self.exchange} {name}: its books end different from ours on {', '.join(bad)} "
                                  f"(top 20 levels){self.why_differ(name)}: book rows n/a.")
            same.append(not bad)
        return same[0], same[1]

    def why_differ(self, name: str) -> str:
        return ""

    async def _cf_tops(self) -> dict[str, Top] | None:
        if self.cf_unreadable:
            return None
        feed = self.cf_feed()
        await self.cf_frames(feed, self.depth)
        return self.cf_tops(feed)

    async def _ccxt_tops(self) -> dict[str, Top] | None:
        if self.ccxt_unreadable:
            return None
        state = await self.ccxt_ex()
        self.ccxt_frames(state, self.depth)
        return self.ccxt_tops(state)


# OKX v5 ------------------------------------------------------------------------------------------------------


class OkxCase(StreamCase):
    exchange, ccxt_id = "OKX", "okx"

    def is_trade(self, msg: Any) -> bool:
        return isinstance(msg, dict) and msg.get("arg", {}).get("channel") == "trades" and "data" in msg

    def book_of(self, conn: str, msg: Any) -> tuple[Any, bool] | None:
        if isinstance(msg, dict) and msg.get("arg", {}).get("channel") == "books" and "data" in msg:
            return msg["arg"]["instId"], msg["action"] == "snapshot"
        return None

    def levels_of(self, msg: Any) -> int:
        return sum(len(d["bids"]) + len(d["asks"]) for d in msg["data"])

    def inst_ids(self) -> list[str]:
        return sorted({m["arg"]["instId"] for _c, m in self.snapshots})

    def ours_live(self, conn: str) -> Any:
        from ingestors.okx.config import ticker_for
        from ingestors.okx.live import OkxLive

        return OkxLive([ticker_for(i) for i in self.inst_ids()], self.urls[conn], "")

    def ours_tops(self, adapters: dict[str, Any]) -> dict[str, Top]:
        return {inst: _ours_top(b.book) for a in adapters.values() for (_ch, inst), b in a.books.books.items()}

    def ours_books(self) -> Any:
        from ingestors.okx.book import OkxBook

        books = {i: OkxBook(i, "books") for i in self.inst_ids()}
        for _c, m in self.snapshots:
            books[m["arg"]["instId"]].on_snapshot(m["data"][0], 0)
        return books

    def ours_book(self, books: Any, bbo: bool = False) -> int:
        for _c, m in self.diffs:
            b = books[m["arg"]["instId"]]
            b.on_update(m["data"][0], 0)
            if bbo:
                b.book.best_bid(), b.book.best_ask()
        return self.n_diffs

    def cf_feed(self) -> Any:
        from cryptofeed.defines import L2_BOOK, TRADES
        from cryptofeed.exchanges import OKX
        from cryptofeed.symbols import Symbols

        syms, extra = OKX._parse_symbol_data([a for u, a in self.http.items() if "/public/instruments" in u])
        Symbols.set(OKX.id, syms, extra)
        self._cf_std = {v: k for k, v in syms.items()}
        return OKX(symbols=[self._cf_std[i] for i in self.inst_ids()], channels=[TRADES, L2_BOOK],
                   callbacks={TRADES: _noop, L2_BOOK: _noop})

    async def cf_book(self, feed: Any, bbo: bool = False) -> int:
        for _c, m, std in self._cf_decoded:
            await feed._book(m, 0.0)
            if bbo:
                b = feed._l2_book[std].book
                b.bids.index(0), b.asks.index(0)
        return self.n_diffs

    def cf_symbol(self, conn: str, msg: Any) -> str:
        return self._cf_std[msg["arg"]["instId"]]

    def cf_tops(self, feed: Any) -> dict[str, Top]:
        return {i: _cf_top(feed._l2_book[self._cf_std[i]]) for i in self.inst_ids()}

    def ccxt_symbol(self, conn: str, msg: Any) -> str:
        return str(self.markets_by_id(msg["arg"]["instId"]))

    def markets_by_id(self, market_id: str) -> str:
        return next(s for s, m in self.markets.items() if m["id"] == market_id)

    def key_of_ccxt(self, symbol: str) -> str:
        return str(self.markets[symbol]["id"])


# Kraken websocket v1 -----------------------------------------------------------------------------------------


class KrakenCase(StreamCase):
    exchange, ccxt_id = "KRAKEN", "kraken"
    ccxt_unreadable = ("ccxt.pro 4.5.90's `kraken` speaks websocket v2 only: its `handle_message` routes on a "
                       "dict's \"channel\" (`{\"channel\": \"book\", \"type\": ..., \"data\": [...]}`), and the "
                       "recorded v1 array frames (`[channelID, {...}, \"book-1000\", \"XBT/CHF\"]`) are ignored: "
                       "fed every recorded frame, it holds no trade and no book.")

    def is_trade(self, msg: Any) -> bool:
        return isinstance(msg, list) and len(msg) >= 4 and msg[-2] == "trade"

    def book_of(self, conn: str, msg: Any) -> tuple[Any, bool] | None:
        if isinstance(msg, list) and len(msg) >= 4 and str(msg[-2]).startswith("book"):
            return msg[-1], "as" in msg[1] or "bs" in msg[1]
        return None

    def levels_of(self, msg: Any) -> int:
        return sum(len(p.get("a", ())) + len(p.get("b", ())) for p in msg[1:-2])

    def pairs(self) -> list[str]:
        return sorted({m[-1] for _c, m in self.snapshots})

    def ours_live(self, conn: str) -> Any:
        from ingestors.kraken.config import ticker_for
        from ingestors.kraken.live import KrakenLive

        return KrakenLive([ticker_for(p) for p in self.pairs()], self.urls[conn], "")

    def ours_tops(self, adapters: dict[str, Any]) -> dict[str, Top]:
        return {pair: _ours_top(b.book) for a in adapters.values() for (_ch, pair), b in a.books.books.items()}

    def ours_books(self) -> Any:
        from ingestors.kraken.book import KrakenBook
        from ingestors.kraken.config import book_depth

        books = {m[-1]: KrakenBook(m[-1], book_depth(m[-2])) for _c, m in self.snapshots}
        for _c, m in self.snapshots:
            books[m[-1]].on_snapshot(m[1])
        return books

    def ours_book(self, books: Any, bbo: bool = False) -> int:
        for _c, m in self.diffs:
            b = books[m[-1]]
            b.on_update(m[1:-2], 0)
            if bbo:
                b.book.best_bid(), b.book.best_ask()
        return self.n_diffs

    def cf_feed(self) -> Any:
        from cryptofeed.defines import L2_BOOK, TRADES
        from cryptofeed.exchanges import Kraken
        from cryptofeed.symbols import Symbols

        syms, extra = Kraken._parse_symbol_data(next(a for u, a in self.http.items() if "AssetPairs" in u))
        Symbols.set(Kraken.id, syms, extra)
        self._cf_std = {v: k for k, v in syms.items()}
        return Kraken(symbols=[self._cf_std[p] for p in self.pairs()], channels=[TRADES, L2_BOOK],
                      callbacks={TRADES: _noop, L2_BOOK: _noop})

    async def cf_book(self, feed: Any, bbo: bool = False) -> int:
        for _c, m, std in self._cf_decoded:
            await feed._book(m, std, 0.0)
            if bbo:
                b = feed._l2_book[std].book
                b.bids.index(0), b.asks.index(0)
        return self.n_diffs

    def cf_symbol(self, conn: str, msg: Any) -> str:
        return self._cf_std[msg[-1]]

    def cf_tops(self, feed: Any) -> dict[str, Top]:
        return {p: _cf_top(feed._l2_book[self._cf_std[p]]) for p in self.pairs()}

    def ccxt_symbol(self, conn: str, msg: Any) -> str:
        return next(s for s, m in self.markets.items() if m["info"].get("wsname") == msg[-1])

    def key_of_ccxt(self, symbol: str) -> str:
        return str(self.markets[symbol]["info"]["wsname"])


# Bybit v5 ----------------------------------------------------------------------------------------------------


class BybitCase(StreamCase):
    exchange, ccxt_id = "BYBIT", "bybit"
    ccxt_options = {"fetchMarkets": {"types": ["spot", "linear"]}}

    def category(self, conn: str) -> str:
        return self.urls[conn].rstrip("/").rsplit("/", 1)[-1]

    def is_trade(self, msg: Any) -> bool:
        return isinstance(msg, dict) and str(msg.get("topic", "")).startswith("publicTrade.")

    def book_of(self, conn: str, msg: Any) -> tuple[Any, bool] | None:
        if isinstance(msg, dict) and str(msg.get("topic", "")).startswith("orderbook."):
            return (self.category(conn), msg["data"]["s"]), msg["type"] == "snapshot"
        return None

    def levels_of(self, msg: Any) -> int:
        return len(msg["data"]["b"]) + len(msg["data"]["a"])

    def books_key(self, conn: str, symbol: str) -> str:
        return f"{self.category(conn)}:{symbol}"

    def ours_live(self, conn: str) -> Any:
        from ingestors.bybit.live import BybitLive

        suffix = "" if self.category(conn) == "spot" else "PERP"
        symbols = sorted({m["data"]["s"] for c, m in self.snapshots if c == conn})
        tickers = [f"BYBIT:{s.removesuffix('USDT')}/USDT{suffix}" for s in symbols]
        return BybitLive(tickers, self.urls[conn], "")

    def ours_tops(self, adapters: dict[str, Any]) -> dict[str, Top]:
        return {self.books_key(c, b.symbol): _ours_top(b.book) for c, a in adapters.items() for b in a.books.books.values()}

    def ours_books(self) -> Any:
        from ingestors.bybit.book import BybitBook

        books = {}
        for c, m in self.snapshots:
            live = self.ours_live(c)
            key = self.books_key(c, m["data"]["s"])
            books[key] = BybitBook(m["data"]["s"], live.depth, live.books.ticker_of(m["data"]["s"]))
            books[key].on_message(m["type"], m["data"], 0)
        self._ours_keys = [self.books_key(c, m["data"]["s"]) for c, m in self.diffs]
        return books

    def ours_book(self, books: Any, bbo: bool = False) -> int:
        for key, (_c, m) in zip(self._ours_keys, self.diffs, strict=True):
            b = books[key]
            b.on_message(m["type"], m["data"], 0)
            if bbo:
                b.book.best_bid(), b.book.best_ask()
        return self.n_diffs

    def cf_feed(self) -> Any:
        from cryptofeed.defines import L2_BOOK, TRADES
        from cryptofeed.exchanges import Bybit
        from cryptofeed.symbols import Symbols

        syms, extra = Bybit._parse_symbol_data([a for u, a in self.http.items() if "instruments-info" in u])
        Symbols.set(Bybit.id, syms, extra)
        std = {v: k for k, v in syms.items()}
        self._cf_std = {self.books_key(c, m["data"]["s"]): std[self._cf_name(c, m["data"]["s"])] for c, m in self.snapshots}
        return Bybit(symbols=sorted(set(self._cf_std.values())), channels=[TRADES, L2_BOOK],
                     callbacks={TRADES: _noop, L2_BOOK: _noop})

    def _cf_name(self, conn: str, symbol: str) -> str:
        return f"{symbol.removesuffix('USDT')}/USDT" if self.category(conn) == "spot" else symbol

    async def cf_book(self, feed: Any, bbo: bool = False) -> int:
        for market, m, std in self._cf_decoded:
            await feed._book(m, 0.0, market)
            if bbo:
                b = feed._l2_book[std].book
                b.bids.index(0), b.asks.index(0)
        return self.n_diffs

    async def cf_books(self) -> Any:
        feed = await super().cf_books()
        self._cf_decoded = [(self.category(c), m, std) for c, m, std in self._cf_decoded]  # its `market` argument
        return feed

    def cf_symbol(self, conn: str, msg: Any) -> str:
        return self._cf_std[self.books_key(conn, msg["data"]["s"])]

    def cf_tops(self, feed: Any) -> dict[str, Top]:
        return {k: _cf_top(feed._l2_book[s]) for k, s in self._cf_std.items()}

    def ccxt_symbol(self, conn: str, msg: Any) -> str:
        spot = self.category(conn) == "spot"
        return next(s for s, m in self.markets.items() if m["id"] == msg["data"]["s"] and m["spot"] == spot)

    def key_of_ccxt(self, symbol: str) -> str:
        m = self.markets[symbol]
        return f"{'spot' if m['spot'] else 'linear'}:{m['id']}"


# Coinbase Advanced Trade ---------------------------------------------------------------------------------------


class CoinbaseCase(StreamCase):
    exchange, ccxt_id = "COINBASE", "coinbase"

    def is_trade(self, msg: Any) -> bool:
        return isinstance(msg, dict) and msg.get("channel") == "market_trades"

    def book_of(self, conn: str, msg: Any) -> tuple[Any, bool] | None:
        if isinstance(msg, dict) and msg.get("channel") == "l2_data":
            events = msg["events"]
            if len({e["product_id"] for e in events}) != 1:  # not in this recording: one product a message
                raise ValueError(f"COINBASE: an l2_data message of several products: {str(msg)[:200]}")
            return events[0]["product_id"], events[0]["type"] == "snapshot"
        return None

    def levels_of(self, msg: Any) -> int:
        return sum(len(e["updates"]) for e in msg["events"])

    async def prepare(self) -> None:
        await super().prepare()
        past = sum(len(e["trades"]) for _c, t in self.trades for e in orjson.loads(t)["events"] if e["type"] == "snapshot")
        self.notes.append(f"COINBASE trades: the first market_trades frame is a snapshot of {past} past trades; ours "
                          "and cryptofeed skip it (history, left to REST), ccxt.pro parses it too.")

    def rides_with_books(self, msg: Any) -> bool:
        # Advanced Trade numbers every message of a connection together (sequence_num), and our adapter checks
        # that sequence: the depth frames keep the other channels' frames between the level2 ones
        return isinstance(msg, dict) and "sequence_num" in msg

    def count_of(self, msg: Any) -> int:
        return len(msg["events"])

    def products(self) -> list[str]:
        return sorted({m["events"][0]["product_id"] for _c, m in self.snapshots})

    def ours_live(self, conn: str) -> Any:
        from ingestors.coinbase.config import ticker_for
        from ingestors.coinbase.live import CoinbaseLive

        return CoinbaseLive([ticker_for(p) for p in self.products()], self.urls[conn], "")

    def ours_tops(self, adapters: dict[str, Any]) -> dict[str, Top]:
        return {p: _ours_top(b.book) for a in adapters.values() for p, b in a.books.books.items()}

    def ours_books(self) -> Any:
        from ingestors.coinbase.book import CoinbaseBook

        books = {p: CoinbaseBook(p) for p in self.products()}
        for _c, m in self.snapshots:
            for e in m["events"]:
                books[e["product_id"]].on_event(e, int(m["sequence_num"]))
        return books

    def ours_book(self, books: Any, bbo: bool = False) -> int:
        for _c, m in self.diffs:
            seq = int(m["sequence_num"])
            for e in m["events"]:
                b = books[e["product_id"]]
                b.on_event(e, seq)
            if bbo:
                b.book.best_bid(), b.book.best_ask()
        return self.n_diffs

    def cf_feed(self) -> Any:
        from cryptofeed.defines import L2_BOOK, TRADES
        from cryptofeed.exchanges import Coinbase
        from cryptofeed.symbols import Symbols

        syms, extra = Coinbase._parse_symbol_data(next(a for u, a in self.http.items() if u.endswith("/market/products")))
        Symbols.set(Coinbase.id, syms, extra)
        self._cf_std = {v: k for k, v in syms.items()}
        return Coinbase(symbols=[self._cf_std[p] for p in self.products()], channels=[TRADES, L2_BOOK],
                        callbacks={TRADES: _noop, L2_BOOK: _noop})

    async def cf_book(self, feed: Any, bbo: bool = False) -> int:
        for _c, m, std in self._cf_decoded:
            for e in m["events"]:
                await feed._pair_level2_update(e, 0.0, m["timestamp"])
            if bbo:
                b = feed._l2_book[std].book
                b.bids.index(0), b.asks.index(0)
        return self.n_diffs

    def cf_symbol(self, conn: str, msg: Any) -> str:
        return self._cf_std[msg["events"][0]["product_id"]]

    def cf_tops(self, feed: Any) -> dict[str, Top]:
        return {p: _cf_top(feed._l2_book[self._cf_std[p]]) for p in self.products()}

    def why_differ(self, name: str) -> str:
        if name != "cryptofeed":
            return ""
        return (" — cryptofeed 2.4.1's Coinbase is the Advanced Trade feed, but its `_pair_level2_snapshot` keeps "
                "asks whose side is \"ask\" while Advanced Trade sends \"offer\": every snapshot ask is dropped, its "
                "ask book holds only levels set by later updates")

    def ccxt_symbol(self, conn: str, msg: Any) -> str:
        return next(s for s, m in self.markets.items() if m["id"] == msg["events"][0]["product_id"])

    def key_of_ccxt(self, symbol: str) -> str:
        return str(self.markets[symbol]["id"])


CASES: list[Callable[[Path], StreamCase]] = [OkxCase, KrakenCase, BybitCase, CoinbaseCase]
