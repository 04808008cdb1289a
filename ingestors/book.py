"""A normalised L2 order book: price levels keyed by exact decimal price, exact exchange strings kept.

Every exchange adapter builds its books with `OrderBook`, so best bid/ask, top-N
and crossed-book checks mean the same thing everywhere. Keys are exact decimals so
that "0.35" and "0.35000000" are one level; the strings the exchange sent are kept
as they were, because checksums (Kraken, OKX) and storage need them byte for byte.

The book is compiled (`native/`, Rust: B-trees keyed by `rust_decimal`, built by
`make setup`): it is the hot path of every live feed, and the pure-Python book it
replaced (a SortedDict of Decimal keys) spent most of each depth frame reading
levels. Its API and errors are the same: `apply_snapshot` and `apply_delta` read
every level before changing anything, so a malformed one (BookError) leaves the
book as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from marketlake_native import BookError, OrderBook, use_level_type

from live_relay.messages import BookLevel

__all__ = ["BookError", "Level", "OrderBook", "book_levels", "to_decimal"]


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


use_level_type(Level)  # the compiled book hands out levels as this named tuple


def book_levels(levels: Iterable[Sequence[str]]) -> tuple[BookLevel, ...]:
    """[price, size, ...] levels (or Levels) that an OrderBook has accepted -> the protocol's BookLevels.

    The book takes only str prices and sizes, so levels it accepted are published as they are (no str() per
    level: this runs for every level of every depth frame).
    """
    return tuple([BookLevel(level[0], level[1]) for level in levels])
