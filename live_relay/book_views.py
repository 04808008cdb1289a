"""Views of the live books for subscribers: imbalance, heatmap, and the consolidated top-N book of a pair.

The processor keeps every ticker's book from its BookUpdates (snapshot replaces,
delta sets/removes) and derives, throttled per ticker by receive time so a busy
book does not flood subscribers:

  {ticker}|imbalance     BookImbalance over the top IMBALANCE_DEPTH levels:
                         (bid volume - ask volume) / (bid volume + ask volume), in [-1, 1]
  {ticker}|heatmap       Heatmap: the top HEATMAP_LEVELS levels of each side summed into price
                         buckets (bucket = floor(price / size) * size; size per ticker from the
                         sidecar config, else about 0.05% of the mid price rounded down to 1, 2 or 5 × 10^k);
                         intensity = bucket volume / the largest bucket volume of the frame, in [0, 1]
  {BASE}/{QUOTE}|book    the consolidated top-N book of the pair: every exchange's levels, sizes summed
                         per price (BookUpdate snapshot, ticker = the pair)
"""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import Decimal

from ingestors.book import BookError, OrderBook
from live_relay.messages import BookImbalance, BookLevel, BookUpdate, Heatmap, HeatmapBucket
from live_relay.topics import market_topic, parse_ticker

__all__ = ["BookViews"]

IMBALANCE_DEPTH = 10
HEATMAP_LEVELS = 50
CONSOLIDATED_LEVELS = 20
THROTTLE_NS = 1_000_000_000  # at most one heatmap / consolidated book per ticker / pair per second
IMBALANCE_THROTTLE_NS = 100_000_000


def nice_bucket(mid: Decimal) -> Decimal:
    """About 0.05% of the price, rounded down to 1, 2 or 5 × 10^k (61830 -> 20, 2683.8 -> 1, 0.3512 -> 0.0001)."""
    raw = float(mid) * 0.0005
    if raw <= 0:
        return Decimal(1)
    exp = math.floor(math.log10(raw))
    base = raw / 10**exp
    step = 1 if base < 2 else 2 if base < 5 else 5
    return Decimal(step).scaleb(exp)


def _fmt(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


class BookViews:
    def __init__(self, bucket_sizes: dict[str, str] | None = None) -> None:
        self.books: dict[str, OrderBook] = {}
        self.bucket_sizes = {t: Decimal(s) for t, s in (bucket_sizes or {}).items()}
        self._last: dict[tuple[str, str], int] = defaultdict(lambda: -(10**30))
        self._pairs: dict[str, list[str]] = defaultdict(list)
        self.sequence = 0

    def on_update(self, u: BookUpdate) -> list[tuple[str, object]]:
        book = self.books.get(u.ticker)
        if book is None:
            book = self.books[u.ticker] = OrderBook(u.ticker)
            t = parse_ticker(u.ticker)
            self._pairs[f"{t.base}/{t.quote}"].append(u.ticker)
        levels = ([(x.price, x.size) for x in u.bids], [(x.price, x.size) for x in u.asks])
        try:
            if u.snapshot:
                book.apply_snapshot(*levels, u.update_id)
            else:
                book.apply_delta(*levels)
        except BookError:
            book.clear()  # unreadable: the adapter's own checks resync it; say nothing about this book meanwhile
            return []
        out: list[tuple[str, object]] = []
        now = u.receive_time_ns
        if self._due(u.ticker, "imbalance", now, IMBALANCE_THROTTLE_NS):
            out.append((market_topic(u.ticker, "imbalance"), self.imbalance(u.ticker, now)))
        if self._due(u.ticker, "heatmap", now, THROTTLE_NS):
            heat = self.heatmap(u.ticker, now)
            if heat is not None:
                out.append((market_topic(u.ticker, "heatmap"), heat))
        t = parse_ticker(u.ticker)
        pair = f"{t.base}/{t.quote}"
        if self._due(pair, "book", now, THROTTLE_NS):
            out.append((f"{pair}|book", self.consolidated(pair, now)))
        return out

    def _due(self, key: str, kind: str, now: int, every: int) -> bool:
        if now - self._last[key, kind] < every:
            return False
        self._last[key, kind] = now
        return True

    def imbalance(self, ticker: str, now: int) -> BookImbalance:
        bids, asks = self.books[ticker].top(IMBALANCE_DEPTH)
        bid_vol = sum((Decimal(x.size) for x in bids), Decimal(0))
        ask_vol = sum((Decimal(x.size) for x in asks), Decimal(0))
        total = bid_vol + ask_vol
        self.sequence += 1
        return BookImbalance(ticker=ticker, depth=IMBALANCE_DEPTH, bid_volume=_fmt(bid_vol), ask_volume=_fmt(ask_vol),
                             imbalance=float((bid_vol - ask_vol) / total) if total else 0.0, event_time_ns=now,
                             sequence=self.sequence)  # fmt: skip

    def heatmap(self, ticker: str, now: int) -> Heatmap | None:
        book = self.books[ticker]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return None
        size = self.bucket_sizes.get(ticker) or nice_bucket((Decimal(bid.price) + Decimal(ask.price)) / 2)
        buckets: dict[Decimal, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        bids, asks = book.top(HEATMAP_LEVELS)
        for side, levels in ((0, bids), (1, asks)):
            for lv in levels:
                buckets[(Decimal(lv.price) / size).to_integral_value(rounding="ROUND_FLOOR") * size][side] += Decimal(lv.size)
        peak = max((b + a for b, a in buckets.values()), default=Decimal(0))
        self.sequence += 1
        return Heatmap(ticker=ticker, bucket_size=_fmt(size), event_time_ns=now, sequence=self.sequence, buckets=tuple(
            HeatmapBucket(price=_fmt(p), bid_size=_fmt(b), ask_size=_fmt(a), intensity=float((b + a) / peak) if peak else 0.0)
            for p, (b, a) in sorted(buckets.items())))  # fmt: skip

    def consolidated(self, pair: str, now: int) -> BookUpdate:
        sides: tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]] = (defaultdict(Decimal), defaultdict(Decimal))
        for ticker in self._pairs[pair]:
            bids, asks = self.books[ticker].top(CONSOLIDATED_LEVELS)
            for side, levels in ((0, bids), (1, asks)):
                for lv in levels:
                    sides[side][Decimal(lv.price)] += Decimal(lv.size)
        top_bids = sorted(sides[0].items(), reverse=True)[:CONSOLIDATED_LEVELS]
        top_asks = sorted(sides[1].items())[:CONSOLIDATED_LEVELS]
        self.sequence += 1
        return BookUpdate(ticker=pair, snapshot=True, bids=tuple(BookLevel(_fmt(p), _fmt(s)) for p, s in top_bids),
                          asks=tuple(BookLevel(_fmt(p), _fmt(s)) for p, s in top_asks), receive_time_ns=now,
                          sequence=self.sequence)  # fmt: skip
