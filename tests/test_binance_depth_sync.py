"""Binance's documented local order book procedure, step by step, and on the real BTCUSDT recording."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from ingestors.binance.depth_sync import (
    BinanceBooks,
    BinanceDepthSync,
    DepthDiff,
    Outcome,
    SyncState,
    parse_depth_event,
)
from ingestors.binance.parse import BinanceParseError
from ingestors.binance.recording import load_recording
from ingestors.book import Level
from ingestors.gaps import GapEvent, GapHow


def diff(first: int, last: int, bids: list[list[str]] | None = None, asks: list[list[str]] | None = None,
         recv_ns: int = 0) -> DepthDiff:
    return DepthDiff(first, last, bids or [], asks or [], 0, recv_ns)


def event(symbol: str, first: int, last: int, bids: list[list[str]] | None = None) -> dict[str, Any]:
    return {"e": "depthUpdate", "E": 1, "s": symbol, "U": first, "u": last, "b": bids or [], "a": []}


def snapshot(last_update_id: int) -> dict[str, Any]:
    return {"lastUpdateId": last_update_id, "bids": [["100.00", "1.0"]], "asks": [["101.00", "1.0"]]}


def test_buffered_events_up_to_the_snapshot_are_dropped_and_the_spanning_one_applied() -> None:
    sync = BinanceDepthSync("BTCUSDT", "BINANCE:BTC/USDT")
    assert not sync.wants_snapshot  # Binance: note the first event's U before fetching
    assert sync.on_diff(diff(90, 95)) is Outcome.BUFFERED
    assert sync.wants_snapshot
    assert sync.on_diff(diff(96, 99)) is Outcome.BUFFERED
    assert sync.on_diff(diff(100, 104, bids=[["100.50", "2.0"]])) is Outcome.BUFFERED
    assert sync.on_snapshot(snapshot(101)) is Outcome.SNAPSHOT_APPLIED
    assert sync.state is SyncState.LIVE
    assert sync.stats.dropped == 2 and sync.stats.updates_applied == 1
    assert sync.book.update_id == 104
    assert sync.book.best_bid() == Level("100.50", "2.0")
    assert sync.on_diff(diff(105, 107, bids=[["100.50", "0"]])) is Outcome.APPLIED
    assert sync.book.best_bid() == Level("100.00", "1.0")


def test_a_snapshot_older_than_the_first_buffered_event_is_refetched() -> None:
    sync = BinanceDepthSync("BTCUSDT")
    sync.on_diff(diff(200, 210))
    assert sync.on_snapshot(snapshot(150)) is Outcome.STALE_SNAPSHOT  # 150 + 1 < 200
    assert sync.wants_snapshot and sync.stats.stale_snapshots == 1
    assert sync.on_snapshot(snapshot(199)) is Outcome.SNAPSHOT_APPLIED  # 199 + 1 == U: contiguous
    assert sync.is_live and sync.book.update_id == 210


def test_a_snapshot_taken_before_any_event_that_the_stream_does_not_continue_is_refetched() -> None:
    sync = BinanceDepthSync("BTCUSDT")
    assert sync.on_snapshot(snapshot(50)) is Outcome.SNAPSHOT_APPLIED
    assert sync.on_diff(diff(60, 70)) is Outcome.STALE_SNAPSHOT
    assert sync.wants_snapshot and len(sync.book) == 0 and not sync.gaps


def test_a_jump_in_update_ids_is_a_gap_that_restarts_only_the_sync() -> None:
    seen: list[GapEvent] = []
    sync = BinanceDepthSync("BTCUSDT", "BINANCE:BTC/USDT", on_gap=seen.append)
    sync.on_diff(diff(10, 12))
    sync.on_snapshot(snapshot(11))
    assert sync.on_diff(diff(13, 15)) is Outcome.APPLIED
    assert sync.on_diff(diff(20, 25, recv_ns=1_723_161_254_000_000_000)) is Outcome.GAP
    gap = sync.gaps[0]
    assert seen == [gap]
    assert (gap.exchange, gap.ticker, gap.how) == ("BINANCE", "BINANCE:BTC/USDT", GapHow.SEQUENCE_JUMP)
    assert (gap.last_seen, gap.first_missing, gap.next_received) == (15, 16, 20)
    assert gap.detected_at_ns == 1_723_161_254_000_000_000
    assert sync.state is SyncState.AWAITING_SNAPSHOT and len(sync.book) == 0 and sync.stats.resyncs == 1
    assert sync.wants_snapshot
    assert sync.on_diff(diff(26, 30)) is Outcome.BUFFERED
    assert sync.on_snapshot(snapshot(27)) is Outcome.SNAPSHOT_APPLIED  # the event that revealed the gap is buffered
    assert sync.is_live and sync.book.update_id == 30


def test_events_the_live_book_already_has_are_ignored() -> None:
    sync = BinanceDepthSync("BTCUSDT")
    sync.on_diff(diff(10, 12))
    sync.on_snapshot(snapshot(11))
    assert sync.on_diff(diff(5, 12)) is Outcome.IGNORED_OLD
    assert sync.stats.ignored_old == 1 and sync.is_live and not sync.gaps


def test_buffered_events_before_a_jump_are_discarded_so_the_snapshot_must_be_newer() -> None:
    sync = BinanceDepthSync("BTCUSDT")
    sync.on_diff(diff(10, 12))
    sync.on_diff(diff(20, 22))  # 13..19 never came: nothing before 20 can be bridged
    assert sync.on_snapshot(snapshot(12)) is Outcome.STALE_SNAPSHOT
    assert sync.on_snapshot(snapshot(19)) is Outcome.SNAPSHOT_APPLIED
    assert sync.book.update_id == 22


def test_a_gap_in_one_symbol_leaves_the_other_symbols_book_alone() -> None:
    books = BinanceBooks()
    for symbol in ("BTCUSDT", "ETHUSDT"):
        books.on_depth_event(event(symbol, 1, 5), 0)
        books.sync_for(symbol).on_snapshot(snapshot(4))
    eth_before = books.sync_for("ETHUSDT").book.top(5)
    _, outcome = books.on_depth_event(event("BTCUSDT", 9, 10), 0)
    assert outcome is Outcome.GAP
    assert books.wanting_snapshot() == ["BTCUSDT"]
    eth = books.sync_for("ETHUSDT")
    assert eth.is_live and eth.stats.resyncs == 0 and eth.book.top(5) == eth_before
    assert [g.ticker for g in books.gaps] == ["BINANCE:BTC/USDT"]
    _, outcome = books.on_depth_event(event("ETHUSDT", 6, 8, bids=[["100.00", "3.0"]]), 0)
    assert outcome is Outcome.APPLIED and eth.book.best_bid() == Level("100.00", "3.0")


def test_a_disconnect_records_a_gap_for_live_books_only() -> None:
    books = BinanceBooks()
    books.on_depth_event(event("BTCUSDT", 1, 5), 0)
    books.sync_for("BTCUSDT").on_snapshot(snapshot(4))
    books.on_depth_event(event("ETHUSDT", 1, 5), 0)  # still buffering: it has nothing to lose
    gaps = books.on_disconnect(99)
    assert [(g.ticker, g.how, g.last_seen, g.detected_at_ns) for g in gaps] == [
        ("BINANCE:BTC/USDT", GapHow.RECONNECT, 5, 99)]
    assert all(s.state is SyncState.AWAITING_SNAPSHOT and not s.wants_snapshot for s in books.syncs.values())


def test_an_unreadable_level_leaves_the_book_as_it_was_and_the_next_event_reveals_the_gap() -> None:
    sync = BinanceDepthSync("BTCUSDT")
    sync.on_diff(diff(10, 12))
    sync.on_snapshot(snapshot(11))
    with pytest.raises(BinanceParseError, match=r"U=13 u=14: .*not a decimal number: 'x'"):
        sync.on_diff(diff(13, 14, bids=[["100.00", "0"], ["99.00", "x"]]))
    assert sync.book.update_id == 12 and sync.book.best_bid() == Level("100.00", "1.0")
    assert sync.on_diff(diff(15, 16)) is Outcome.GAP
    assert sync.gaps[0].first_missing == 13


@pytest.mark.parametrize("bad", [
    {"e": "trade", "U": 1, "u": 2, "b": [], "a": [], "E": 0},
    {"e": "depthUpdate", "u": 2, "b": [], "a": [], "E": 0},
    {"e": "depthUpdate", "U": 3, "u": 2, "b": [], "a": [], "E": 0},
])
def test_malformed_depth_events_are_refused_with_the_payload(bad: dict[str, Any]) -> None:
    with pytest.raises(BinanceParseError, match="depth"):
        parse_depth_event(bad)


def test_the_recorded_btcusdt_stream_builds_the_same_book_as_the_replay_servers_rebuild(data_dir: Path) -> None:
    rec = load_recording(data_dir / "binance" / "spot_btcusdt_20240808.gz")
    sync = BinanceDepthSync(rec.symbol)
    for i, frame in enumerate(rec.frames):
        if i == rec.snapshot_position:
            assert sync.on_snapshot(rec.snapshot) is Outcome.SNAPSHOT_APPLIED
        if frame.stream.endswith("@depth@100ms"):
            assert sync.on_diff(parse_depth_event(orjson.loads(frame.data_text()), frame.recv_ns)) is not Outcome.GAP
    reference = rec.depth_at(len(rec.frames), 5000)
    print(f"\nBTCUSDT: {sync.stats}, book id {sync.book.update_id}, levels {sync.book.depth()}")
    assert sync.stats.updates_applied > 3000 and sync.stats.resyncs == 0
    assert sync.book.update_id == reference["lastUpdateId"]
    assert [list(lv) for lv in sync.book.bids()] == reference["bids"]
    assert [list(lv) for lv in sync.book.asks()] == reference["asks"]
