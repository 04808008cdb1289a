"""Bybit v5 orderbook.200: books match the tickers stream's best bid/ask; a dropped delta is a gap that resyncs only its
topic; u = 1 restarts replace the book."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from ingestors.book import Level
from ingestors.bybit.book import BybitBooks, BybitParseError, Outcome
from ingestors.bybit.config import BybitSymbolError, book_depth, category_for_url, instruments, ticker_for
from ingestors.gaps import GapHow
from marketlake.cli import app
from marketlake.recordings import RecordKind, Session, read_session
from marketlake.verify_book import VerifyReport, verify_session
from marketlake.verify_registry import StableTopCheck

from .book_fixtures import counts

LINEAR_BTC = "BYBIT:BTC/USDTPERP"



@pytest.fixture(scope="module")
def bybit(data_dir: Path) -> Session:
    return read_session([data_dir / "cryptofeed" / "BYBIT.jsonl.zst"])


@pytest.fixture(scope="module")
def clean(bybit: Session) -> VerifyReport:
    return verify_session("BYBIT", bybit)


def delta_indices(session: Session, conn: str, symbol: str) -> list[int]:
    return [i for i, r in enumerate(session.records) if r.kind is RecordKind.WS and r.conn == conn
            and r.data.startswith(f'{{"topic":"orderbook.200.{symbol}","type":"delta"')]


def test_bybit_books_match_the_tickers_best_bid_ask_and_never_cross(clean: VerifyReport) -> None:
    print(f"\nverify-book BYBIT: {counts(clean)}")
    d = clean.to_dict()
    assert set(d["books"]) == {LINEAR_BTC, "BYBIT:ETH/USDTPERP", "BYBIT:SOL/USDTPERP", "BYBIT:DOGE/USDTPERP",
                               "BYBIT:BTC/USDT", "BYBIT:ETH/USDT"}, counts(clean)
    assert d["updates_applied"] > 2100 and d["bbo_checked"] > 550, counts(clean)
    assert all(d["books"][t]["bbo_checked"] > 100 for t in d["books"] if t.endswith("PERP")), counts(clean)
    assert (d["bbo_mismatches"], d["crossed_books"], d["gaps"], d["unsynced_books"]) == (0, 0, 0, 0), counts(clean)
    assert clean.ok, counts(clean)


def test_cli_verifies_the_bybit_recording_and_exits_0(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["verify-book", "--exchange", "BYBIT", str(data_dir / "cryptofeed" / "BYBIT.jsonl.zst")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["bbo_checked"] > 550 and out["bbo_mismatches"] == 0 and out["ok"]


def test_a_dropped_delta_is_a_gap_and_only_that_topic_resyncs(bybit: Session, clean: VerifyReport) -> None:
    """BTCUSDT is on both connections (linear and spot): only the linear book, whose delta was lost, resyncs."""
    deltas = delta_indices(bybit, "BYBIT.ws.2", "BTCUSDT")
    victim, revealer = deltas[100], deltas[101]
    u = orjson.loads(bybit.records[victim].data)["data"]["u"]
    report = verify_session("BYBIT", dataclasses.replace(bybit, records=[r for i, r in enumerate(bybit.records)
                                                                         if i != victim]))
    print(f"\nverify-book BYBIT with one linear BTCUSDT delta dropped: {counts(report)}")
    d = report.to_dict()
    assert (d["gaps"], d["unsynced_books"], d["books"][LINEAR_BTC]["resyncs"]) == (1, 1, 1) and not report.ok
    gap = report.gap_events[0]
    assert (gap.exchange, gap.ticker, gap.how) == ("BYBIT", LINEAR_BTC, GapHow.SEQUENCE_JUMP)
    assert (gap.last_seen, gap.first_missing, gap.next_received) == (u - 1, u, u + 1)
    assert gap.detected_at_ns == bybit.records[revealer].recv_ns
    for ticker in set(d["books"]) - {LINEAR_BTC}:
        assert vars(report.books[ticker]) == vars(clean.books[ticker])  # spot BTC/USDT included


def test_a_fresh_snapshot_after_the_gap_rebuilds_the_same_book(bybit: Session) -> None:
    """What resubscribing does: Bybit sends a new snapshot; the book then ends exactly where the clean one does."""
    deltas = delta_indices(bybit, "BYBIT.ws.2", "BTCUSDT")
    reference, faulty = BybitBooks("linear"), BybitBooks("linear")
    outcomes: list[Outcome] = []
    for i, r in enumerate(bybit.records):
        if r.kind is not RecordKind.WS or r.conn != "BYBIT.ws.2":
            continue
        ref_book, _ = reference.on_frame(r.data, r.recv_ns)
        if i == deltas[100]:
            continue
        book, outcome = faulty.on_frame(r.data, r.recv_ns)
        outcomes.append(outcome)
        if outcome is Outcome.GAP:
            assert faulty.wanting_resubscribe() == ["orderbook.200.BTCUSDT"] and ref_book is not None
            bids, asks = ([[lv.price, lv.size] for lv in side] for side in ref_book.book.top(200))
            snapshot = {"topic": "orderbook.200.BTCUSDT", "type": "snapshot", "ts": 1, "cts": 1,
                        "data": {"s": "BTCUSDT", "b": bids, "a": asks, "u": ref_book.book.update_id,
                                 "seq": ref_book.cross_seq}}
            assert faulty.on_frame(orjson.dumps(snapshot), r.recv_ns)[1] is Outcome.SNAPSHOT
    ours, theirs = faulty.books["orderbook.200.BTCUSDT"], reference.books["orderbook.200.BTCUSDT"]
    assert outcomes.count(Outcome.GAP) == 1 and ours.synced and ours.stats.resyncs == 1
    assert ours.book.top(200) == theirs.book.top(200) and ours.book.update_id == theirs.book.update_id


def test_a_snapshot_with_u_1_is_a_restart_that_replaces_the_book() -> None:
    books = BybitBooks("linear")

    def push(kind: str, u: int, bids: list[list[str]], asks: list[list[str]]) -> Outcome:
        msg = {"topic": "orderbook.50.BTCUSDT", "type": kind, "ts": 1, "cts": 1,
               "data": {"s": "BTCUSDT", "b": bids, "a": asks, "u": u, "seq": 1000 + u}}
        return books.on_frame(orjson.dumps(msg), u)[1]

    assert push("snapshot", 500, [["100", "1"], ["99", "2"]], [["101", "1"]]) is Outcome.SNAPSHOT
    assert push("delta", 501, [["99", "0"]], []) is Outcome.APPLIED
    assert push("delta", 501, [["98", "5"]], []) is Outcome.IGNORED_OLD  # a repeat changes nothing
    assert push("snapshot", 1, [["90", "3"]], [["91", "4"]]) is Outcome.RESTART  # service restart: start over
    book = books.books["orderbook.50.BTCUSDT"]
    assert book.book.top(5) == ([("90", "3")], [("91", "4")]) and book.book.update_id == 1
    assert push("delta", 2, [], [["91", "0"], ["92", "1"]]) is Outcome.APPLIED
    assert (book.stats.restarts, book.stats.resyncs, books.gaps) == (1, 0, [])
    assert push("delta", 1, [], []) is Outcome.GAP  # a restart announced by a delta: the book cannot continue
    assert "u = 1" in books.gaps[0].detail and book.wants_resubscribe
    assert push("delta", 3, [], []) is Outcome.SKIPPED


def test_a_lost_best_bid_change_is_caught_by_the_tickers_check(bybit: Session) -> None:
    """The BBO check has teeth: apply the first linear DOGEUSDT delta that moves the best bid without its bids
    (as a parser that dropped a side would); the u chain is intact, only the tickers comparison can see it."""
    reference, best, victim = BybitBooks("linear"), None, None
    for i, r in enumerate(bybit.records):
        if r.conn == "BYBIT.ws.2" and r.data.startswith('{"topic":"orderbook.200.DOGEUSDT"'):
            book, _ = reference.on_frame(r.data, r.recv_ns)
            assert book is not None
            top = book.book.best_bid()
            if best is not None and top is not None and top.price != best and victim is None:
                victim = i
            best = None if top is None else top.price
    assert victim is not None
    records = list(bybit.records)
    msg = orjson.loads(records[victim].data)
    msg["data"]["b"] = []
    records[victim] = records[victim]._replace(data=orjson.dumps(msg).decode())
    report = verify_session("BYBIT", dataclasses.replace(bybit, records=records))
    print(f"\nverify-book BYBIT with one DOGEUSDT delta's bids lost: {counts(report)}")
    assert report.books["BYBIT:DOGE/USDTPERP"].bbo_mismatches >= 1 and report.to_dict()["gaps"] == 0 and not report.ok
    assert sum(b.bbo_mismatches for t, b in report.books.items() if t != "BYBIT:DOGE/USDTPERP") == 0
    assert any(e.startswith("BYBIT:DOGE/USDTPERP BBO: ticker at") for e in report.examples)


def test_tickers_deltas_merge_into_the_top_of_book_and_spot_tickers_have_none() -> None:
    books = BybitBooks("linear")
    snap = {"topic": "tickers.BTCUSDT", "type": "snapshot", "cs": 10, "ts": 1,
            "data": {"symbol": "BTCUSDT", "bid1Price": "1", "bid1Size": "2", "ask1Price": "3", "ask1Size": "4"}}
    assert books.on_frame(orjson.dumps(snap), 0)[1] is Outcome.TICKER
    delta = {"topic": "tickers.BTCUSDT", "type": "delta", "cs": 11, "ts": 2,
             "data": {"symbol": "BTCUSDT", "ask1Price": "2.5", "ask1Size": "9"}}
    assert books.on_frame(orjson.dumps(delta), 0)[1] is Outcome.TICKER
    assert books.ticker == ("BTCUSDT", 11, 2, "1", "2", "2.5", "9")
    spot = {"topic": "tickers.BTCUSDT", "type": "snapshot", "cs": 5, "ts": 1, "data": {"symbol": "BTCUSDT", "lastPrice": "1"}}
    assert BybitBooks("spot").on_frame(orjson.dumps(spot), 0)[1] is Outcome.NOT_BOOK
    assert books.on_frame('{"success":true,"ret_msg":"","op":"subscribe"}', 0) == (None, Outcome.NOT_BOOK)


@pytest.mark.parametrize("frame,message", [
    ("{", "not JSON"),
    ('{"topic":"orderbook.200.BTCUSDT","type":"delta","data":{"b":[["1"]],"a":[],"u":2,"seq":3}}',
     r"BTCUSDT orderbook.200: unreadable delta \(BookError: .*malformed level \['1'\]\)"),
    ('{"topic":"orderbook.7.BTCUSDT","type":"snapshot","data":{"b":[],"a":[],"u":1,"seq":1}}', "no orderbook depth 7"),
    ('{"topic":"orderbook.200.BTCUSDT","type":"partial","data":{"b":[],"a":[],"u":2,"seq":3}}', "unknown orderbook"),
])
def test_malformed_frames_raise_a_parse_error_naming_the_frame(frame: str, message: str) -> None:
    books = BybitBooks("linear")
    books.on_frame('{"topic":"orderbook.200.BTCUSDT","type":"snapshot","data":{"b":[],"a":[],"u":1,"seq":1}}', 0)
    with pytest.raises(BybitParseError, match=message):
        books.on_frame(frame, 0)


def test_symbols_categories_and_topics_follow_bybits_conventions() -> None:
    listing = {"result": {"list": [{"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT",
                                    "contractType": "LinearPerpetual"},
                                   {"symbol": "BTCUSDT-26DEC25", "baseCoin": "BTC", "quoteCoin": "USDT",
                                    "contractType": "LinearFutures"}]}}
    known = instruments(listing)
    assert ticker_for("BTCUSDT", "linear", known["BTCUSDT"]) == LINEAR_BTC
    assert ticker_for("BTCUSDT-26DEC25", "linear", known["BTCUSDT-26DEC25"]) == "BYBIT:BTC/USDT26DEC25"
    assert ticker_for("ETHUSDT") == "BYBIT:ETH/USDT" and ticker_for("SOLUSDT", "linear") == "BYBIT:SOL/USDTPERP"
    assert category_for_url("wss://stream.bybit.com/v5/public/linear") == "linear"
    assert book_depth("spot", "orderbook.1000.BTCUSDT") == (1000, "BTCUSDT")
    with pytest.raises(BybitSymbolError, match="cannot split"):
        ticker_for("XYZ")
    with pytest.raises(BybitSymbolError, match="v5/public"):
        category_for_url("wss://stream.bybit.com/realtime")


def test_the_top_of_book_rule_compares_only_where_the_book_cannot_have_changed() -> None:
    """A ticker stamped 15 lies in the state (10, 20]: comparable only when that state and the one before it agree."""
    check = StableTopCheck()
    check.on_ticker(5, "1", "2")  # before any book state: never comparable
    check.on_book(10, 10, Level("1", "5"), Level("2", "5"))
    check.on_ticker(15, "1", "2")
    check.on_book(11, 20, Level("1", "9"), Level("2", "1"))  # sizes changed, prices did not
    check.on_ticker(25, "1", "2.5")
    check.on_book(21, 30, Level("1", "9"), Level("2.5", "1"))  # the ask moved within (20, 30]: 25 is unstable
    check.on_ticker(35, "1", "3")
    check.on_book(31, 40, Level("1", "9"), Level("2.5", "1"))
    check.on_book(41, 50, Level("1", "9"), Level("2.5", "1"))
    assert (check.checked, check.unstable, check.uncomparable) == (2, 1, 1)
    assert len(check.mismatches) == 1 and check.mismatches[0].startswith("ticker at 35: bid/ask 1/3, our book 1/2.5")


def test_an_unreadable_message_costs_the_book_a_gap_when_it_was_synced_and_always_a_new_snapshot() -> None:
    books = BybitBooks("linear")
    msg = '{"topic":"orderbook.200.%s","type":"snapshot","data":{"s":"%s","b":%s,"a":[],"u":%d,"seq":1}}'
    books.on_frame(msg % ("BTCUSDT", "BTCUSDT", '[["100","1"]]', 7), 0)
    for symbol in ("BTCUSDT", "ETHUSDT"):  # synced, and never synced
        with pytest.raises(BybitParseError, match=f"{symbol} orderbook.200: unreadable snapshot"):
            books.on_frame(msg % (symbol, symbol, '[["x","1"]]', 8), 5)
    btc, eth = books.books["orderbook.200.BTCUSDT"], books.books["orderbook.200.ETHUSDT"]
    assert [(g.how, g.last_seen, g.detected_at_ns) for g in btc.gaps] == [("unreadable", 7, 5)] and not btc.synced
    assert eth.gaps == [] and not eth.synced and not btc.book
    assert sorted(books.wanting_resubscribe()) == ["orderbook.200.BTCUSDT", "orderbook.200.ETHUSDT"]
