"""bench.normalise case: OKX v5 (see bench/normalise_cases/__init__.py)."""

from __future__ import annotations

from typing import Any

from bench.normalise_cases.base import (
    StreamCase,
    Top,
    _cf_top,
    _noop,
    _ours_top,
)


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

    sends_checksums = True

    def cf_feed(self, checksum_validation: bool = False) -> Any:
        from cryptofeed.defines import L2_BOOK, TRADES
        from cryptofeed.exchanges import OKX
        from cryptofeed.symbols import Symbols

        syms, extra = OKX._parse_symbol_data([a for u, a in self.http.items() if "/public/instruments" in u])
        Symbols.set(OKX.id, syms, extra)
        self._cf_std = {v: k for k, v in syms.items()}
        return OKX(symbols=[self._cf_std[i] for i in self.inst_ids()], channels=[TRADES, L2_BOOK],
                   callbacks={TRADES: _noop, L2_BOOK: _noop}, checksum_validation=checksum_validation)

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
