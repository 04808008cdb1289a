"""The normalised L2 book: Decimal-keyed levels, exact strings, best/top-N, truncation, crossed detection."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
