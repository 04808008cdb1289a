"""What the in-stream-snapshot cases of bench.normalise share: recorded frames, book tops, StreamCase."""

from __future__ import annotations

import json
from collections.abc import Iterable
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

    # Exchanges that send a book checksum (Kraken, OKX): ours verifies every one, so the bench adds a depth row with
    # cryptofeed verifying them too (its checksum_validation, off by default), the like-for-like comparison.
    sends_checksums = False

    def cf_feed(self, checksum_validation: bool = False) -> Any:
        raise NotImplementedError

    def cf_conn(self, conn: str) -> Any:
        return SimpleNamespace(address=self.urls[conn], subscription={}, uuid=conn)

    async def cf_frames(self, feed: Any, frames: list[Frame]) -> int:
        conns = {c: self.cf_conn(c) for c in self.urls}
        for conn, text in frames:
            await feed.message_handler(text, conns[conn], 0.0)
        return len(frames)

    async def cf_books(self, checksum_validation: bool = False) -> Any:
        feed = self.cf_feed(checksum_validation)
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
