"""A normalised L2 order book: price levels keyed by Decimal price, exact exchange strings kept.

Every exchange adapter builds its books with this class, so best bid/ask, top-N
and crossed-book checks mean the same thing everywhere. Keys are Decimal so that
"0.35" and "0.35000000" are one level; the strings the exchange sent are kept
as they were, because checksums (Kraken) and storage need them byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from sortedcontainers import SortedDict

__all__ = ["BookError", "Level", "OrderBook", "to_decimal"]


class BookError(ValueError):
    """A price or size that is not a decimal number, or a negative size."""


class Level(NamedTuple):
    """One price level as the exchange sent it: price and size are its decimal strings."""

    price: str
    size: str


def to_decimal(text: str) -> Decimal:
    """Exact Decimal of an exchange decimal string; BookError names the text if it is not a finite number."""
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError):
        raise BookError(f"not a decimal number: {text!r}") from None
    if not value.is_finite():
        raise BookError(f"not a finite decimal number: {text!r}")
    return value


_DECIMALS: dict[str, Decimal] = {}  # exchange decimal string -> its finite Decimal (prices and sizes repeat)
_DECIMALS_MAX = 500_000  # entries before the cache starts over (bounds its memory at ~100 MB)


def _cached_decimal(text: str) -> Decimal:
    value = to_decimal(text)
    if len(_DECIMALS) >= _DECIMALS_MAX:
        _DECIMALS.clear()
    _DECIMALS[text] = value
    return value


_Change = tuple["SortedDict[Decimal, Level]", Decimal, "Level | None"]


def _sorted_side(changes: list[_Change]) -> SortedDict[Decimal, Level]:
    levels: dict[Decimal, Level] = {}
    for _side, key, level in changes:
        if level is None:
            levels.pop(key, None)
        else:
            levels[key] = level
    return SortedDict(levels)


class OrderBook:
    """Bids and asks of one instrument; `update_id` is the exchange sequence the book reflects (0 if none)."""

    __slots__ = ("_asks", "_bids", "depth_limit", "ticker", "update_id")

    def __init__(self, ticker: str, depth_limit: int | None = None) -> None:
        self.ticker = ticker
        self.depth_limit = depth_limit  # keep at most this many levels a side (the subscribed depth), None: all
        self.update_id = 0
        self._bids: SortedDict[Decimal, Level] = SortedDict()  # ascending: best bid is the last key
        self._asks: SortedDict[Decimal, Level] = SortedDict()  # ascending: best ask is the first key

    def clear(self) -> None:
        """Forget every level (before a resync) and the update id."""
        self._bids.clear()
        self._asks.clear()
        self.update_id = 0

    def apply_snapshot(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]], update_id: int = 0) -> None:
        """Replace the whole book with the snapshot's levels ([price, size, ...] each) at update_id.

        All or nothing: a malformed level (BookError) leaves the book as it was.
        """
        bid_changes, ask_changes = self._read_side(self._bids, bids), self._read_side(self._asks, asks)
        # Each side built in one go (one sort) rather than level by level: a whole-book snapshot can have tens of
        # thousands of levels (Coinbase). Levels apply in order, as deltas would: the last size of a price wins.
        self._bids, self._asks = _sorted_side(bid_changes), _sorted_side(ask_changes)
        if self.depth_limit is not None:
            self.truncate(self.depth_limit)
        self.update_id = update_id

    def apply_delta(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> int:
        """Set each level's size (size 0 removes the level), in order; returns how many levels were touched.

        All or nothing: every level is read first, so a malformed one (BookError) leaves the book as it was.
        """
        changes = self._read_side(self._bids, bids)
        changes += self._read_side(self._asks, asks)
        self._apply(changes)
        return len(changes)

    def _apply(self, changes: list[_Change]) -> None:
        for side, key, level in changes:
            if level is None:
                if key in side:
                    side.pop(key)
            elif key in side:  # an existing level: only its value changes, the sorted keys stay as they are
                dict.__setitem__(side, key, level)
            else:
                side[key] = level
        if self.depth_limit is not None:
            self.truncate(self.depth_limit)

    def set_level(self, is_bid: bool, price: str, size: str) -> None:
        """Set one level to the exchange's size string; a zero size deletes it (absent is fine)."""
        self.apply_delta([(price, size)] if is_bid else (), () if is_bid else [(price, size)])

    def _read_side(self, side: SortedDict[Decimal, Level], levels: Iterable[Sequence[str]]) -> list[_Change]:
        """[price, size, ...] levels -> (side, price key, Level of the exchange's strings or None for size 0).

        The hot path of every book: Decimals of price strings come from a shared cache (books see the same
        prices again and again), sizes are parsed once; a level that is not two finite decimals, or has a
        negative size, is a BookError naming it.
        """
        out: list[_Change] = []
        cache = _DECIMALS
        for level in levels:
            try:
                price, size = level[0], level[1]
                key = cache.get(price)
                if key is None:
                    key = _cached_decimal(price)
                amount = cache.get(size)
                if amount is None:
                    amount = _cached_decimal(size)
            except (IndexError, KeyError, TypeError):
                raise BookError(f"{self.ticker}: malformed level {level!r}") from None
            except BookError as exc:
                raise BookError(f"{self.ticker}: {exc} in level {level!r}") from None
            if amount > 0:
                out.append((side, key, Level(price, size)))
            elif amount == 0:
                out.append((side, key, None))
            else:
                raise BookError(f"{self.ticker}: negative size {size!r} at price {price!r}")
        return out

    def truncate(self, depth: int) -> None:
        """Keep only the best `depth` levels of each side (Kraken: levels beyond the subscribed depth go)."""
        while len(self._bids) > depth:
            self._bids.popitem(0)
        while len(self._asks) > depth:
            self._asks.popitem(-1)

    def best_bid(self) -> Level | None:
        return self._bids.peekitem(-1)[1] if self._bids else None

    def best_ask(self) -> Level | None:
        return self._asks.peekitem(0)[1] if self._asks else None

    def bids(self, n: int | None = None) -> list[Level]:
        """Best `n` bids (all if None), best first."""
        # A slice of the sorted keys is one bulk read; reversed(values()) would index the keys one by one.
        levels: list[Level] = self._bids.values()[-n:] if n else ([] if n == 0 else self._bids.values()[:])
        levels.reverse()
        return levels

    def asks(self, n: int | None = None) -> list[Level]:
        """Best `n` asks (all if None), best first."""
        return list(self._asks.values()[:n]) if n is not None else list(self._asks.values()[:])

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """(bids, asks): the best n levels of each side, best first."""
        return self.bids(n), self.asks(n)

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask: no real exchange book looks like that."""
        if not self._bids or not self._asks:
            return False
        return bool(self._bids.peekitem(-1)[0] >= self._asks.peekitem(0)[0])

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def depth(self) -> tuple[int, int]:
        """(number of bid levels, number of ask levels)."""
        return len(self._bids), len(self._asks)

    def __repr__(self) -> str:
        return (f"OrderBook({self.ticker!r}, update_id={self.update_id}, bid={self.best_bid()}, "
                f"ask={self.best_ask()}, levels={self.depth()})")
