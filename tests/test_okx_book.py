"""OKX v5 books: every recorded checksum matches; a dropped update is caught (checksum, or seqId/prevSeqId) and only
that instrument resyncs."""

from __future__ import annotations

import dataclasses
import json
import zlib
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from ingestors.book import OrderBook
from ingestors.gaps import GapHow
from ingestors.okx.book import OkxBooks, OkxParseError, Outcome, book_checksum
from ingestors.okx.config import OkxSymbolError, ticker_for
from marketlake.cli import app
from marketlake.recordings import RecordKind, Session, read_session
from marketlake.verify_book import VerifyReport, verify_session

from .book_fixtures import counts


@pytest.fixture(scope="module")
def okx(data_dir: Path) -> Session:
    return read_session([data_dir / "cryptofeed" / "OKX.jsonl.zst"])


@pytest.fixture(scope="module")
def clean(okx: Session) -> VerifyReport:
    return verify_session("OKX", okx)


def book_indices(session: Session, inst_id: str, action: str = "update") -> list[int]:
    head = f'{{"arg":{{"channel":"books","instId":"{inst_id}"}},"action":"{action}"'
    return [i for i, r in enumerate(session.records) if r.kind is RecordKind.WS and r.data.startswith(head)]


def with_seq_ids(session: Session) -> Session:
    """The recording as OKX sends it since mid-2026: seqId/prevSeqId chained per instId, checksum always 0."""
    last: dict[str, int] = {}
    records = list(session.records)
    for i, r in enumerate(records):
        if r.kind is RecordKind.WS and r.data.startswith('{"arg":{"channel":"books"'):
            msg = orjson.loads(r.data)
            inst, data = msg["arg"]["instId"], msg["data"][0]
            seq = last.get(inst, 1000) + 7
            data["prevSeqId"] = -1 if msg["action"] == "snapshot" else last[inst]
            data["seqId"], data["checksum"], last[inst] = seq, 0, seq
            records[i] = r._replace(data=orjson.dumps(msg).decode())
    return dataclasses.replace(session, records=records)


def test_every_recorded_okx_checksum_matches_our_books(clean: VerifyReport) -> None:
    print(f"\nverify-book OKX: {counts(clean)}")
    d = clean.to_dict()
    assert set(d["books"]) == {"OKX:BTC/USDT", "OKX:UNI/USDPERP", "OKX:BTC/USD220527"}, counts(clean)
    assert d["checksum_checked"] == d["updates_applied"] + 3 and d["updates_applied"] > 280, counts(clean)
    assert (d["checksum_failures"], d["crossed_books"], d["gaps"], d["unsynced_books"]) == (0, 0, 0, 0), counts(clean)
    assert clean.ok, counts(clean)


def test_cli_verifies_the_okx_recording_and_exits_0(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["verify-book", "--exchange", "OKX", str(data_dir / "cryptofeed" / "OKX.jsonl.zst")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["checksum_checked"] > 280 and out["checksum_failures"] == 0 and out["ok"]


def test_checksum_is_signed_crc32_of_interleaved_top_25_levels() -> None:
    book = OrderBook("OKX:BTC/USDT")
    bids = [[f"{100 - i}.5", f"{i + 1}", "0", "1"] for i in range(30)]  # 30 bids: only 25 count
    asks = [["101.1", "0.5", "0", "2"], ["101.2", "7", "0", "1"]]  # a short side just ends early
    book.apply_snapshot(bids, asks)
    text = "100.5:1:101.1:0.5:99.5:2:101.2:7:" + ":".join(f"{100 - i}.5:{i + 1}" for i in range(2, 25))
    unsigned = zlib.crc32(text.encode())
    assert book_checksum(book) == (unsigned - 2**32 if unsigned >= 2**31 else unsigned)


def test_checksums_above_2_to_the_31_come_out_negative_as_okx_sends_them() -> None:
    for n in range(100):
        book = OrderBook("OKX:X/Y")
        book.apply_snapshot([[f"{n}.1", "1"]], [[f"{n}.2", "1"]])
        unsigned = zlib.crc32(f"{n}.1:1:{n}.2:1".encode())
        if unsigned >= 2**31:
            assert book_checksum(book) == unsigned - 2**32 < 0
            return
    pytest.fail("no book among 100 hashed above 2**31")


def test_a_dropped_update_fails_the_checksum_and_only_that_instrument_resyncs(okx: Session, clean: VerifyReport) -> None:
    updates = book_indices(okx, "BTC-USDT")
    victim, revealer = updates[40], updates[41]
    report = verify_session("OKX", dataclasses.replace(okx, records=[r for i, r in enumerate(okx.records) if i != victim]))
    print(f"\nverify-book OKX with one BTC-USDT update dropped: {counts(report)}")
    d = report.to_dict()
    assert (d["gaps"], d["checksum_failures"], d["unsynced_books"]) == (1, 1, 1) and not report.ok, counts(report)
    gap = report.gap_events[0]
    assert (gap.exchange, gap.ticker, gap.how) == ("OKX", "OKX:BTC/USDT", GapHow.CHECKSUM_MISMATCH)
    assert gap.detected_at_ns == okx.records[revealer].recv_ns and "OKX checksum" in gap.detail
    assert report.books["OKX:BTC/USDT"].resyncs == 1
    for ticker in ("OKX:UNI/USDPERP", "OKX:BTC/USD220527"):
        assert vars(report.books[ticker]) == vars(clean.books[ticker])  # the other instruments are untouched


def test_a_fresh_snapshot_after_the_gap_makes_every_later_checksum_match(okx: Session) -> None:
    """What resubscribing does: a new snapshot for that instId, and the book is proven right again."""
    updates = set(book_indices(okx, "BTC-USDT"))
    victim = sorted(updates)[40]
    reference, faulty = OkxBooks(), OkxBooks()
    after: list[Outcome] = []
    for i, r in enumerate(okx.records):
        if r.kind is not RecordKind.WS:
            continue
        ref_book, _ = reference.on_frame(r.data, r.recv_ns)
        if i == victim:
            continue
        book, outcome = faulty.on_frame(r.data, r.recv_ns)
        if outcome is Outcome.CHECKSUM_FAILED:
            assert book is not None and faulty.wanting_resubscribe() == [("books", "BTC-USDT")]
            assert ref_book is not None
            bids, asks = ([[lv.price, lv.size, "0", "1"] for lv in side] for side in ref_book.book.top(400))
            snapshot = {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "snapshot",
                        "data": [{"bids": bids, "asks": asks, "ts": "1", "checksum": book_checksum(ref_book.book)}]}
            assert faulty.on_frame(orjson.dumps(snapshot), r.recv_ns)[1] is Outcome.SNAPSHOT
        elif book is not None and i in updates and book.stats.resyncs:
            after.append(outcome)
    book = faulty.books[("books", "BTC-USDT")]
    assert len(after) > 40 and set(after) == {Outcome.APPLIED}
    assert (book.stats.checksum_failures, book.stats.resyncs, book.synced) == (1, 1, True)


def test_since_mid_2026_seqid_chains_the_updates_and_checksum_0_is_not_counted(okx: Session) -> None:
    report = verify_session("OKX", with_seq_ids(okx))
    print(f"\nverify-book OKX with seqId/prevSeqId and checksum 0: {counts(report)}")
    d = report.to_dict()
    assert d["checksum_checked"] == 0 and d["updates_applied"] > 280 and report.ok, counts(report)


def test_a_seqid_break_is_a_gap_and_only_that_instrument_resyncs(okx: Session) -> None:
    session = with_seq_ids(okx)
    clean = verify_session("OKX", session)
    updates = book_indices(session, "UNI-USD-SWAP")
    victim, revealer = updates[10], updates[11]
    dropped = orjson.loads(session.records[victim].data)["data"][0]
    report = verify_session("OKX", dataclasses.replace(session, records=[r for i, r in enumerate(session.records)
                                                                          if i != victim]))
    print(f"\nverify-book OKX (seqId) with one UNI-USD-SWAP update dropped: {counts(report)}")
    d = report.to_dict()
    assert (d["gaps"], d["checksum_failures"], d["unsynced_books"]) == (1, 0, 1), counts(report)
    gap = report.gap_events[0]
    assert (gap.ticker, gap.how, gap.last_seen) == ("OKX:UNI/USDPERP", GapHow.SEQUENCE_JUMP, dropped["prevSeqId"])
    assert gap.next_received == dropped["seqId"] + 7 and gap.detected_at_ns == session.records[revealer].recv_ns
    for ticker in ("OKX:BTC/USDT", "OKX:BTC/USD220527"):
        assert vars(report.books[ticker]) == vars(clean.books[ticker])


def test_no_change_pushes_and_sequence_resets_continue_the_chain() -> None:
    books = OkxBooks()
    arg = {"channel": "books", "instId": "BTC-USDT"}

    def push(action: str, prev: int, seq: int, bids: list[list[str]], asks: list[list[str]]) -> Outcome:
        frame = {"arg": arg, "action": action, "data": [{"bids": bids, "asks": asks, "ts": "1", "checksum": 0,
                                                          "prevSeqId": prev, "seqId": seq}]}
        return books.on_frame(orjson.dumps(frame), 0)[1]

    assert push("snapshot", -1, 100, [["10", "1", "0", "1"]], [["11", "1", "0", "1"]]) is Outcome.SNAPSHOT
    assert push("update", 100, 100, [], []) is Outcome.APPLIED  # no change: prevSeqId == seqId
    assert push("update", 100, 5, [["10.5", "2", "0", "1"]], []) is Outcome.APPLIED  # reset after maintenance
    assert push("update", 5, 9, [], [["11", "0", "0", "0"], ["12", "3", "0", "1"]]) is Outcome.APPLIED
    book = books.books[("books", "BTC-USDT")]
    assert (book.stats.no_change, book.stats.sequence_checked, book.stats.checksum_checked) == (1, 3, 0)
    assert book.book.best_bid() == ("10.5", "2") and book.book.best_ask() == ("12", "3")
    assert push("update", 8, 12, [], []) is Outcome.SEQUENCE_GAP and book.wants_resubscribe
    assert push("update", 12, 13, [], []) is Outcome.SKIPPED
    assert books.gaps[0].detail == "BTC-USDT books: prevSeqId 8 does not continue the book's seqId 9"


def test_tickers_carry_the_top_of_book_and_other_messages_are_not_book() -> None:
    books = OkxBooks()
    assert books.on_frame('{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}}', 0) == (
        None, Outcome.NOT_BOOK)
    ticker = ('{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","bidPx":"30243.4",'
              '"bidSz":"0.33","askPx":"30243.5","askSz":"0.003","ts":"1652459226825"}]}')
    assert books.on_frame(ticker, 0) == (None, Outcome.TICKER)
    assert books.ticker == ("BTC-USDT", 1652459226825, "30243.4", "0.33", "30243.5", "0.003")


@pytest.mark.parametrize("frame,message", [
    ("{", "not JSON"),
    ('{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"bids":[["1"]],"asks":[]}]}',
     r"BTC-USDT books: unreadable update \(BookError: .*malformed level \['1'\]\)"),
    ('{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"partial","data":[{"bids":[],"asks":[]}]}',
     "unknown book action 'partial'"),
    ('{"arg":{"channel":"books","instId":"btc_usdt"},"action":"snapshot","data":[{"bids":[],"asks":[]}]}',
     "not an OKX instId"),
])
def test_malformed_frames_raise_a_parse_error_naming_the_frame(frame: str, message: str) -> None:
    books = OkxBooks()
    books.on_frame('{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"bids":[],"asks":[]}]}',
                   0)
    with pytest.raises(OkxParseError, match=message):
        books.on_frame(frame, 0)


def test_instrument_names_become_project_tickers() -> None:
    assert ticker_for("BTC-USDT") == "OKX:BTC/USDT" and ticker_for("UNI-USD-SWAP") == "OKX:UNI/USDPERP"
    assert ticker_for("BTC-USD-220527") == "OKX:BTC/USD220527"
    assert ticker_for("BTC-USD-220514-22000-C") == "OKX:BTC/USD22051422000C"
    with pytest.raises(OkxSymbolError, match="BTCUSDT"):
        ticker_for("BTCUSDT")


def test_an_unreadable_push_costs_the_book_a_gap_when_it_was_synced_and_always_a_new_snapshot() -> None:
    books = OkxBooks()
    push = '{"arg":{"channel":"books","instId":"%s"},"action":"snapshot","data":[{"bids":%s,"asks":[]}]}'
    books.on_frame(push % ("BTC-USDT", '[["100","1"]]'), 0)
    for inst in ("BTC-USDT", "ETH-USDT"):  # synced, and never synced
        with pytest.raises(OkxParseError, match=f"{inst} books: unreadable snapshot"):
            books.on_frame(push % (inst, '[["x","1"]]'), 5)
    btc, eth = books.books[("books", "BTC-USDT")], books.books[("books", "ETH-USDT")]
    assert [(g.how, g.detected_at_ns) for g in btc.gaps] == [("unreadable", 5)] and not btc.synced and not btc.book
    assert eth.gaps == [] and not eth.synced
    assert sorted(books.wanting_resubscribe()) == [("books", "BTC-USDT"), ("books", "ETH-USDT")]
