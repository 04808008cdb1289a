"""The normalised L2 book (compiled, native/): exact-decimal levels, exact strings, best/top-N, truncation, crossed
detection, and the checksums computed over it, each against a plain model."""

from __future__ import annotations

import zlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marketlake_native import kraken_checksum, okx_checksum

from ingestors.book import BookError, Level, OrderBook


def test_snapshot_orders_levels_best_first_and_keeps_the_exchange_strings() -> None:
    book = OrderBook("BINANCE:BTC/USDT")
    book.apply_snapshot([["61837.62000000", "0.61700000"], ["61837.63000000", "3.78826000"]],
                        [["61839.00000000", "1.00000000"], ["61837.64000000", "1.54698000"]], update_id=42)
    assert book.update_id == 42
    assert book.best_bid() == Level("61837.63000000", "3.78826000")
    assert book.best_ask() == Level("61837.64000000", "1.54698000")
    assert book.top(2) == ([Level("61837.63000000", "3.78826000"), Level("61837.62000000", "0.61700000")],
                           [Level("61837.64000000", "1.54698000"), Level("61839.00000000", "1.00000000")])


def test_equal_decimal_prices_are_one_level_holding_the_latest_strings() -> None:
    book = OrderBook("X:A/B")
    book.apply_delta([["0.35", "1"]], [])
    book.apply_delta([["0.35000000", "2.50000000"]], [])
    assert book.bids() == [Level("0.35000000", "2.50000000")]
    assert len(book) == 1


def test_zero_size_removes_a_level_and_removing_an_absent_level_is_harmless() -> None:
    book = OrderBook("X:A/B")
    book.apply_delta([["10.0", "1.0"], ["9.0", "1.0"]], [["11.0", "1.0"]])
    book.apply_delta([["10.00000000", "0.00000000"], ["8.0", "0"]], [["11.0", "0.0"]])
    assert book.bids() == [Level("9.0", "1.0")]
    assert book.asks() == []
    assert book.best_ask() is None


def test_crossed_and_locked_books_are_detected_and_one_sided_books_are_not() -> None:
    book = OrderBook("X:A/B")
    book.apply_delta([["10", "1"]], [])
    assert not book.is_crossed()
    book.apply_delta([], [["10.5", "1"]])
    assert not book.is_crossed()
    book.apply_delta([], [["10.00", "1"]])  # locked: bid == ask
    assert book.is_crossed()
    book.apply_delta([], [["9.9", "1"]])
    assert book.is_crossed()


def test_depth_limit_keeps_only_the_best_levels_of_each_side() -> None:
    book = OrderBook("KRAKEN:BTC/USD", depth_limit=2)
    book.apply_snapshot([["3", "1"], ["2", "1"], ["1", "1"]], [["4", "1"], ["5", "1"], ["6", "1"]])
    assert [lv.price for lv in book.bids()] == ["3", "2"]
    assert [lv.price for lv in book.asks()] == ["4", "5"]
    book.apply_delta([["3.5", "1"]], [])
    assert [lv.price for lv in book.bids()] == ["3.5", "3"]


def test_truncated_names_the_levels_the_depth_limit_dropped_in_the_last_apply() -> None:
    book = OrderBook("X:A/B", depth_limit=2)
    book.apply_snapshot([["1", "1"], ["2", "1"]], [["5", "1"], ["6", "1"]])
    book.apply_delta([["3", "1"]], [["4", "2"], ["4.5", "1"]])
    assert book.truncated() == ([Level("1", "1")], [Level("6", "1"), Level("5", "1")])
    book.apply_delta([["1.5", "1"]], [])  # below the kept bids: in, then out again
    assert book.truncated() == ([Level("1.5", "1")], [])
    book.apply_delta([["3", "0"]], [])
    assert book.truncated() == ([], []) and book.top(5) == ([Level("2", "1")], [Level("4", "2"), Level("4.5", "1")])


def test_clear_forgets_levels_and_update_id() -> None:
    book = OrderBook("X:A/B")
    book.apply_snapshot([["1", "1"]], [["2", "1"]], update_id=7)
    book.clear()
    assert len(book) == 0 and book.update_id == 0 and book.best_bid() is None


@pytest.mark.parametrize("price,size", [("abc", "1"), ("1", "NaN"), ("Infinity", "1")])
def test_non_numbers_are_refused_naming_the_text(price: str, size: str) -> None:
    with pytest.raises(BookError, match="not a"):
        OrderBook("X:A/B").set_level(True, price, size)


def test_a_delta_with_one_malformed_level_changes_nothing() -> None:
    book = OrderBook("X:A/B")
    book.apply_snapshot([["10", "1"]], [["11", "1"]], update_id=3)
    with pytest.raises(BookError, match=r"malformed level \['12'\]"):
        book.apply_delta([["10", "0"], ["9", "2"]], [["12"]])
    assert book.top(5) == ([Level("10", "1")], [Level("11", "1")])


@pytest.mark.parametrize("level", [[61837.5, "1"], ["61837.5", 1], ["61837.5", None]])
def test_a_price_or_size_that_is_not_a_string_is_a_malformed_level(level: list[object]) -> None:
    # Levels hold the exchange's strings and are published as they are: a JSON number is not what any
    # adapter passes (HTX and Bitfinex turn theirs into strings), so it is refused, not converted.
    book = OrderBook("X:A/B")
    with pytest.raises(BookError, match="malformed level"):
        book.apply_delta([level], [])
    assert len(book) == 0


def test_a_negative_size_is_refused_naming_the_level() -> None:
    with pytest.raises(BookError, match=r"negative size '-1' at price '5'"):
        OrderBook("X:A/B").set_level(False, "5", "-1")


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=2)
sizes = st.sampled_from(["0", "0.5", "1.25", "3"])


@given(st.lists(st.tuples(st.booleans(), prices, sizes), max_size=60))
def test_book_agrees_with_a_plain_dict_model_after_any_updates(updates: list[tuple[bool, Decimal, str]]) -> None:
    book = OrderBook("X:A/B")
    model: dict[bool, dict[Decimal, str]] = {True: {}, False: {}}
    for is_bid, price, size in updates:
        book.set_level(is_bid, str(price), size)
        if Decimal(size) == 0:
            model[is_bid].pop(price, None)
        else:
            model[is_bid][price] = size
    assert [(Decimal(lv.price), lv.size) for lv in book.bids()] == sorted(model[True].items(), reverse=True)
    assert [(Decimal(lv.price), lv.size) for lv in book.asks()] == sorted(model[False].items())


def test_extreme_but_real_prices_and_sizes_order_exactly() -> None:
    book = OrderBook("X:A/B")
    book.apply_delta([["0.00000001", "123456789012.12345678"], ["0.000000011", "1"], ["98765432109.87654321", "2"]],
                     [["98765432109.87654322", "1e-8"]])
    assert [lv.price for lv in book.bids()] == ["98765432109.87654321", "0.000000011", "0.00000001"]
    assert book.best_ask() == Level("98765432109.87654322", "1e-8")
    assert not book.is_crossed()


def test_a_number_beyond_exact_decimal_range_is_refused_not_rounded() -> None:
    # 29 decimal places: rounding it would merge two distinct exchange prices into one key.
    with pytest.raises(BookError, match=r"beyond 28 places or 96 bits of digits \(refused, not rounded\): '1\.0{28}1'"):
        OrderBook("X:A/B").set_level(True, "1.00000000000000000000000000001", "1")


def _spellings(value: Decimal) -> st.SearchStrategy[str]:
    """The same number as an exchange might spell it: plain, zero-padded, or in exponent form."""
    return st.sampled_from([str(value), f"{value:.8f}", f"{value:e}"])


levels_strategy = st.lists(st.tuples(prices, sizes).flatmap(
    lambda ps: st.tuples(_spellings(ps[0]), st.just(ps[1]))), max_size=12)


@given(st.lists(st.tuples(levels_strategy, levels_strategy), max_size=25), st.none() | st.integers(1, 6))
def test_batched_deltas_with_any_spelling_and_depth_limit_agree_with_a_model(
        batches: list[tuple[list[tuple[str, str]], list[tuple[str, str]]]], depth: int | None) -> None:
    book = OrderBook("X:A/B", depth_limit=depth)
    model: dict[bool, dict[Decimal, tuple[str, str]]] = {True: {}, False: {}}
    for bids, asks in batches:
        assert book.apply_delta(bids, asks) == len(bids) + len(asks)
        for is_bid, levels in ((True, bids), (False, asks)):
            for price, size in levels:
                if Decimal(size) == 0:
                    model[is_bid].pop(Decimal(price), None)
                else:
                    model[is_bid][Decimal(price)] = (price, size)
        if depth is not None:  # truncation after each delta, as the book does
            model[True] = dict(sorted(model[True].items(), reverse=True)[:depth])
            model[False] = dict(sorted(model[False].items())[:depth])
    want_bids = [Level(*v) for _, v in sorted(model[True].items(), reverse=True)]
    want_asks = [Level(*v) for _, v in sorted(model[False].items())]
    assert book.bids() == want_bids and book.asks() == want_asks
    assert book.top(3) == (want_bids[:3], want_asks[:3])
    assert book.depth() == (len(want_bids), len(want_asks))
    assert book.is_crossed() == bool(want_bids and want_asks and
                                     Decimal(want_bids[0].price) >= Decimal(want_asks[0].price))


def _kraken_reference(book: OrderBook, n: int) -> int:
    """Kraken's documented checksum, written out plainly: the compiled one must agree."""
    def digits(s: str) -> str:
        return s.replace(".", "").lstrip("0")
    text = "".join(digits(lv.price) + digits(lv.size) for lv in book.asks(n))
    text += "".join(digits(lv.price) + digits(lv.size) for lv in book.bids(n))
    return zlib.crc32(text.encode())


def _okx_reference(book: OrderBook, n: int) -> int:
    bids, asks = book.top(n)
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        parts += [*bids[i]] if i < len(bids) else []
        parts += [*asks[i]] if i < len(asks) else []
    value = zlib.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


@given(levels_strategy, levels_strategy, st.integers(1, 12))
def test_compiled_checksums_equal_the_documented_formulas(bids: list[tuple[str, str]], asks: list[tuple[str, str]],
                                                          n: int) -> None:
    book = OrderBook("X:A/B")
    book.apply_delta(bids, asks)
    assert kraken_checksum(book, n) == _kraken_reference(book, n)
    assert okx_checksum(book, n) == _okx_reference(book, n)
