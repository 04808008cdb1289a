"""bench.normalise case: Kraken websocket v1 (see bench/normalise_cases/__init__.py)."""

from __future__ import annotations

from typing import Any

from bench.normalise_cases.base import (
    StreamCase,
    Top,
    _cf_top,
    _noop,
    _ours_top,
)


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

    sends_checksums = True

    def cf_feed(self, checksum_validation: bool = False) -> Any:
        from cryptofeed.defines import L2_BOOK, TRADES
        from cryptofeed.exchanges import Kraken
        from cryptofeed.symbols import Symbols

        syms, extra = Kraken._parse_symbol_data(next(a for u, a in self.http.items() if "AssetPairs" in u))
        Symbols.set(Kraken.id, syms, extra)
        self._cf_std = {v: k for k, v in syms.items()}
        return Kraken(symbols=[self._cf_std[p] for p in self.pairs()], channels=[TRADES, L2_BOOK],
                      callbacks={TRADES: _noop, L2_BOOK: _noop}, checksum_validation=checksum_validation)

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
