"""bench.normalise case: Coinbase Advanced Trade (see bench/normalise_cases/__init__.py)."""

from __future__ import annotations

from typing import Any

import orjson

from bench.normalise_cases.base import (
    StreamCase,
    Top,
    _cf_top,
    _noop,
    _ours_top,
)


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

    def cf_feed(self, checksum_validation: bool = False) -> Any:
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
