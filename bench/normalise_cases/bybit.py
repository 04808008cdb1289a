"""bench.normalise case: Bybit v5 (see bench/normalise_cases/__init__.py)."""

from __future__ import annotations

from typing import Any

from bench.normalise_cases.base import (
    StreamCase,
    Top,
    _cf_top,
    _noop,
    _ours_top,
)


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

    def cf_feed(self, checksum_validation: bool = False) -> Any:
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

    async def cf_books(self, checksum_validation: bool = False) -> Any:
        feed = await super().cf_books(checksum_validation)
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
