"""Coinbase Advanced Trade level2 books: they match the ticker channel's best bid/ask; a lost message (sequence_num jump)
is a gap for the books of its connection only."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from ingestors.coinbase.book import CoinbaseBooks, CoinbaseParseError, Outcome
from ingestors.coinbase.config import CoinbaseSymbolError, ticker_for, time_ns
from ingestors.gaps import GapHow
from marketlake.cli import app
from marketlake.recordings import Record, RecordKind, Session, read_session
from marketlake.verify_book import VerifyReport, verify_session

from .book_fixtures import counts

BTC, ETH = "COINBASE:BTC/USD", "COINBASE:ETH/USD"



@pytest.fixture(scope="module")
def coinbase(data_dir: Path) -> Session:
    return read_session([data_dir / "cryptofeed" / "COINBASE.jsonl.zst"])


@pytest.fixture(scope="module")
def clean(coinbase: Session) -> VerifyReport:
    return verify_session("COINBASE", coinbase)


def l2_updates(session: Session, product: str) -> list[int]:
    return [i for i, r in enumerate(session.records) if r.kind is RecordKind.WS and r.data.startswith('{"channel":"l2_data"')
            and '"type":"update"' in r.data[:120] and f'"product_id":"{product}"' in r.data[:200]]


def without(session: Session, index: int) -> Session:
    return dataclasses.replace(session, records=[r for i, r in enumerate(session.records) if i != index])


def split_by_product(session: Session) -> Session:
    """The session as the live client receives it: one connection per level2 product, carrying that product's l2_data
    and ticker messages and every heartbeat, sequence_num counted per connection."""
    sequence: dict[str, int] = {}
    records: list[Record] = []
    for r in session.records:
        msg: dict[str, Any] = orjson.loads(r.data) if r.kind is RecordKind.WS else {}
        channel = msg.get("channel")
        if channel == "l2_data":
            products = {e["product_id"] for e in msg["events"]}
        elif channel == "ticker":
            products = {t["product_id"] for e in msg["events"] for t in e["tickers"]}
        elif channel == "heartbeats":
            products = {"BTC-USD", "ETH-USD"}
        else:
            continue
        assert channel == "heartbeats" or len(products) == 1, r.data[:200]
        for product in sorted(products):
            conn = f"COINBASE.ws.{product}"
            sequence[conn] = msg["sequence_num"] = sequence.get(conn, -1) + 1
            records.append(r._replace(data=orjson.dumps(msg).decode(), conn=conn))
    return dataclasses.replace(session, records=records)


def test_coinbase_books_match_the_ticker_best_bid_ask_and_never_cross(clean: VerifyReport) -> None:
    print(f"\nverify-book COINBASE: {counts(clean)}")
    d = clean.to_dict()
    assert set(d["books"]) == {BTC, ETH} and d["updates_applied"] == 773, counts(clean)
    assert d["bbo_checked"] > 60, counts(clean)
    assert (d["bbo_mismatches"], d["crossed_books"], d["gaps"], d["unsynced_books"]) == (0, 0, 0, 0), counts(clean)
    assert clean.ok, counts(clean)


def test_cli_verifies_the_coinbase_recording_and_exits_0(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["verify-book", "--exchange", "COINBASE",
                                      str(data_dir / "cryptofeed" / "COINBASE.jsonl.zst")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["bbo_checked"] > 60 and out["bbo_mismatches"] == 0 and out["ok"]


def test_a_lost_message_is_a_gap_for_every_book_of_that_connection(coinbase: Session) -> None:
    """sequence_num counts the whole connection: the lost BTC update could have been anyone's, so both books resync."""
    victim = l2_updates(coinbase, "BTC-USD")[100]
    lost = orjson.loads(coinbase.records[victim].data)["sequence_num"]
    report = verify_session("COINBASE", without(coinbase, victim))
    print(f"\nverify-book COINBASE with one BTC-USD update lost: {counts(report)}")
    d = report.to_dict()
    assert (d["gaps"], d["unsynced_books"], d["resyncs"]) == (2, 2, 2) and not report.ok, counts(report)
    assert {g.ticker for g in report.gap_events} == {BTC, ETH}
    for gap in report.gap_events:
        assert (gap.how, gap.last_seen, gap.first_missing, gap.next_received) == (
            GapHow.SEQUENCE_JUMP, lost - 1, lost, lost + 1)
        assert gap.detected_at_ns == coinbase.records[victim + 1].recv_ns and "any product" in gap.detail


def test_with_one_product_per_connection_only_that_product_resyncs(coinbase: Session) -> None:
    split = split_by_product(coinbase)
    clean = verify_session("COINBASE", split)
    victim = l2_updates(split, "BTC-USD")[100]
    report = verify_session("COINBASE", without(split, victim))
    print(f"\nverify-book COINBASE, a connection per product: {counts(clean)}; one BTC-USD update lost: {counts(report)}")
    assert clean.ok and clean.to_dict()["bbo_checked"] > 60, counts(clean)
    d = report.to_dict()
    assert (d["gaps"], d["unsynced_books"]) == (1, 1) and report.gap_events[0].ticker == BTC, counts(report)
    assert d["books"][BTC]["resyncs"] == 1 and vars(report.books[ETH]) == vars(clean.books[ETH])


def test_a_fresh_snapshot_after_the_gap_rebuilds_the_same_book(coinbase: Session) -> None:
    """What resubscribing does: a new level2 snapshot; the book then ends exactly where the clean one does."""
    victim = l2_updates(coinbase, "BTC-USD")[100]
    reference, faulty = CoinbaseBooks(), CoinbaseBooks()
    for i, r in enumerate(coinbase.records):
        if r.kind is not RecordKind.WS:
            continue
        reference.on_frame(r.data, r.recv_ns)
        if i == victim:
            continue
        faulty.on_frame(r.data, r.recv_ns)
        for product in faulty.wanting_resubscribe():
            book = reference.books[product].book
            updates = [{"side": side, "event_time": "2026-08-09T21:06:00Z", "price_level": lv.price,
                        "new_quantity": lv.size} for side, levels in (("bid", book.bids()), ("offer", book.asks()))
                       for lv in levels]
            assert faulty.sequence_num is not None
            snapshot = {"channel": "l2_data", "timestamp": "2026-08-09T21:06:00Z", "sequence_num": faulty.sequence_num + 1,
                        "events": [{"type": "snapshot", "product_id": product, "updates": updates}]}
            assert faulty.on_frame(orjson.dumps(snapshot), r.recv_ns)[1] is Outcome.SNAPSHOT
            faulty.sequence_num -= 1  # the recorded stream does not know about the extra message
    for product in ("BTC-USD", "ETH-USD"):
        ours, theirs = faulty.books[product], reference.books[product]
        assert ours.synced and ours.stats.resyncs == 1
        assert ours.book.top(1000) == theirs.book.top(1000)


def test_a_wrongly_deleted_best_bid_is_caught_by_the_ticker_check(coinbase: Session) -> None:
    """The BBO check has teeth: one BTC-USD update also deletes the best bid (as a misapplied level would); the
    sequence is intact, only the ticker comparison can see that our best bid is now one level too low."""
    victim = l2_updates(coinbase, "BTC-USD")[100]
    reference = CoinbaseBooks()
    for r in coinbase.records[:victim]:
        if r.kind is RecordKind.WS:
            reference.on_frame(r.data, r.recv_ns)
    best = reference.books["BTC-USD"].book.best_bid()
    assert best is not None
    records = list(coinbase.records)
    msg = orjson.loads(records[victim].data)
    msg["events"][0]["updates"].append({**msg["events"][0]["updates"][0], "side": "bid", "price_level": best.price,
                                        "new_quantity": "0"})
    records[victim] = records[victim]._replace(data=orjson.dumps(msg).decode())
    report = verify_session("COINBASE", dataclasses.replace(coinbase, records=records))
    print(f"\nverify-book COINBASE with the BTC-USD best bid wrongly deleted once: {counts(report)}")
    assert report.books[BTC].bbo_mismatches >= 1 and report.books[ETH].bbo_mismatches == 0 and not report.ok
    assert report.to_dict()["gaps"] == 0 and any(e.startswith(f"{BTC} BBO: ticker at") for e in report.examples)


def frame(channel: str, sequence_num: int, events: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"channel": channel, "timestamp": "2026-08-09T21:05:48.1Z", "sequence_num": sequence_num,
                         "events": events})


def level(side: str, price: str, size: str) -> dict[str, str]:
    return {"side": side, "event_time": "2026-08-09T21:05:48.0Z", "price_level": price, "new_quantity": size}


def test_updates_wait_for_a_snapshot_and_repeated_sequence_numbers_are_ignored() -> None:
    books = CoinbaseBooks()
    update = [{"type": "update", "product_id": "BTC-USD", "updates": [level("bid", "1", "1")]}]
    assert books.on_frame(frame("l2_data", 0, update), 0)[1] is Outcome.SKIPPED
    snapshot = [{"type": "snapshot", "product_id": "BTC-USD", "updates": [level("bid", "9", "1"), level("offer", "10", "2")]}]
    assert books.on_frame(frame("l2_data", 1, snapshot), 0)[1] is Outcome.SNAPSHOT
    assert books.on_frame(frame("l2_data", 2, update), 0)[1] is Outcome.APPLIED
    assert books.on_frame(frame("l2_data", 2, [{**update[0], "updates": [level("bid", "9", "0")]}]), 0) == (
        [], Outcome.IGNORED_OLD)
    book = books.books["BTC-USD"].book
    assert book.bids() == [("9", "1"), ("1", "1")] and book.update_id == 2 and books.gaps == []


def test_heartbeats_keep_the_connection_alive_until_they_stop() -> None:
    books = CoinbaseBooks()
    beat = [{"current_time": "2026-08-09 21:05:48.85 +0000 UTC", "heartbeat_counter": 41691}]
    assert books.on_frame(frame("heartbeats", 0, beat), 1_000_000_000) == ([], Outcome.HEARTBEAT)
    assert books.heartbeat_counter == 41691
    assert not books.stale(3_000_000_000) and books.stale(7_000_000_000)


@pytest.mark.parametrize("text,message", [
    ("{", "not JSON"),
    ('{"channel":"l2_data","sequence_num":3,"events":[{"type":"update","product_id":"BTC-USD","updates":'
     '[{"side":"buy","event_time":"2026-08-09T21:05:48Z","price_level":"1","new_quantity":"1"}]}]}', "unknown side 'buy'"),
    ('{"channel":"l2_data","sequence_num":3,"events":[{"type":"update","product_id":"BTC-USD","updates":'
     '[{"side":"bid","event_time":"yesterday","price_level":"1","new_quantity":"1"}]}]}', "not an RFC 3339"),
    ('{"channel":"l2_data","sequence_num":3,"events":[{"type":"update","product_id":"BTCUSD","updates":[]}]}',
     "not a Coinbase product id"),
])
def test_malformed_messages_raise_a_parse_error_naming_the_message(text: str, message: str) -> None:
    books = CoinbaseBooks()
    books.on_frame(frame("l2_data", 2, [{"type": "snapshot", "product_id": "BTC-USD", "updates": []}]), 0)
    with pytest.raises(CoinbaseParseError, match=message):
        books.on_frame(text, 0)


def test_product_ids_and_times_follow_coinbases_conventions() -> None:
    assert ticker_for("BTC-USD") == BTC
    assert time_ns("2026-08-09T21:05:48.84777437Z") == 1786309548_847774370
    assert time_ns("2026-08-09T21:05:48Z") == 1786309548_000000000
    with pytest.raises(CoinbaseSymbolError, match="BTCUSD"):
        ticker_for("BTCUSD")
