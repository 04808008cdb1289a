"""Kraken websocket v1 books: every recorded CRC32 checksum matches; a wrong book is caught and only its pair resyncs."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from ingestors.book import OrderBook
from ingestors.gaps import GapHow
from ingestors.kraken.book import KrakenBooks, KrakenParseError, Outcome, book_checksum
from ingestors.kraken.config import KrakenSymbolError, book_depth, ticker_for
from marketlake.cli import app
from marketlake.recordings import RecordKind, Session, read_session
from marketlake.verify_book import verify_session


@pytest.fixture(scope="module")
def kraken(data_dir: Path) -> Session:
    return read_session([data_dir / "cryptofeed" / "KRAKEN.jsonl.zst"])


def book_frames(session: Session) -> list[tuple[int, str]]:
    """(record index, frame text) of every book channel frame."""
    return [(i, r.data) for i, r in enumerate(session.records)
            if r.kind is RecordKind.WS and r.data.startswith("[") and '"book-' in r.data]


def test_every_recorded_checksum_matches_our_books(kraken: Session) -> None:
    report = verify_session("KRAKEN", kraken)
    d = report.to_dict()
    print("\nverify-book KRAKEN: " + json.dumps({k: d[k] for k in (
        "frames", "updates_applied", "resyncs", "gaps", "checksum_checked", "checksum_failures", "bbo_checked",
        "bbo_mismatches", "crossed_books")}))
    assert len(d["books"]) == 10 and d["checksum_checked"] == d["updates_applied"] > 4000
    assert (d["checksum_failures"], d["crossed_books"], d["gaps"], d["unsynced_books"]) == (0, 0, 0, 0)
    assert report.ok


def test_cli_verifies_the_kraken_recording_and_exits_0(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["verify-book", "--exchange", "KRAKEN", "--format", "cryptofeed",
                                      str(data_dir / "cryptofeed" / "KRAKEN.jsonl.zst")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["checksum_checked"] > 4000 and out["checksum_failures"] == 0


def test_checksum_is_crc32_of_top_ten_asks_then_bids_without_dots_and_leading_zeros() -> None:
    book = OrderBook("KRAKEN:BTC/USD")
    asks = [[f"0.{5005 + 5 * i:05d}", "0.00000500"] for i in range(11)]  # the 11th is beyond the checksum
    bids = [[f"0.{5000 - 5 * i:05d}", "0.00000500"] for i in range(11)]
    book.apply_snapshot(bids, asks)
    text = "".join(f"{5005 + 5 * i}500" for i in range(10)) + "".join(f"{5000 - 5 * i}500" for i in range(10))
    assert text.startswith("5005500501050050155")
    assert book_checksum(book) == zlib.crc32(text.encode())


def corrupt_update(frame: str) -> str:
    """Change the volume of the first level of a book update (keeping the exchange's checksum)."""
    msg = orjson.loads(frame)
    side = "a" if "a" in msg[1] else "b"
    price, volume, *rest = msg[1][side][0]
    msg[1][side][0] = [price, "7.77700000" if volume != "7.77700000" else "8.88800000", *rest]
    return orjson.dumps(msg).decode()


def test_a_wrong_level_fails_the_checksum_and_only_that_pair_resyncs(kraken: Session) -> None:
    xmr = [(i, f) for i, f in book_frames(kraken) if f.endswith('"XMR/USD"]') and '"c"' in f]
    index, frame = xmr[50]
    records = list(kraken.records)
    records[index] = records[index]._replace(data=corrupt_update(frame))
    clean = verify_session("KRAKEN", kraken)
    report = verify_session("KRAKEN", Session(kraken.format, kraken.paths, records))
    d = report.to_dict()
    print(f"\nverify-book KRAKEN with one XMR/USD level corrupted: checksum_checked {d['checksum_checked']}, "
          f"failures {d['checksum_failures']}, gaps {d['gaps']}")
    assert d["checksum_failures"] == 1 and d["gaps"] == 1 and d["unsynced_books"] == 1 and not report.ok
    gap = report.gap_events[0]
    assert (gap.exchange, gap.ticker, gap.how) == ("KRAKEN", "KRAKEN:XMR/USD", GapHow.CHECKSUM_MISMATCH)
    assert gap.detected_at_ns == kraken.records[index].recv_ns and "Kraken checksum" in gap.detail
    for ticker, book in report.books.items():
        if ticker != "KRAKEN:XMR/USD":
            assert vars(book) == vars(clean.books[ticker])  # every other pair untouched


def test_a_fresh_snapshot_after_a_mismatch_makes_the_book_right_again(kraken: Session) -> None:
    """What a resubscribe does: the pair gets a new snapshot, and every later checksum matches again."""
    frames = book_frames(kraken)
    xmr = [n for n, (_, f) in enumerate(frames) if f.endswith('"XMR/USD"]') and '"c"' in f]
    reference, faulty = KrakenBooks(), KrakenBooks()
    outcomes: list[Outcome] = []
    for n, (_, frame) in enumerate(frames):
        ref_book, _ = reference.on_frame(frame, n)
        book, outcome = faulty.on_frame(corrupt_update(frame) if n == xmr[50] else frame, n)
        if n == xmr[50]:
            assert outcome is Outcome.CHECKSUM_FAILED and book is not None and book.wants_resubscribe
            assert ref_book is not None
            bids, asks = ref_book.book.top(1000)
            snapshot = [1, {"as": [[p, s, "0"] for p, s in asks], "bs": [[p, s, "0"] for p, s in bids]},
                        "book-1000", "XMR/USD"]
            assert faulty.on_frame(orjson.dumps(snapshot), n)[1] is Outcome.SNAPSHOT
        elif n > xmr[50] and frame.endswith('"XMR/USD"]'):
            outcomes.append(outcome)
    xmr_book = faulty.books[("book-1000", "XMR/USD")]
    assert len(outcomes) > 100 and set(outcomes) == {Outcome.APPLIED}
    assert xmr_book.stats.checksum_failures == 1 and xmr_book.synced


def test_the_book_is_truncated_to_the_subscribed_depth() -> None:
    books = KrakenBooks()
    bids = [[f"{100 - i}.0", "1.0", "0"] for i in range(10)]
    asks = [[f"{101 + i}.0", "1.0", "0"] for i in range(10)]
    book, _ = books.on_frame(orjson.dumps([7, {"as": asks, "bs": bids}, "book-10", "XBT/USD"]), 0)
    assert book is not None
    update = [7, {"b": [["100.5", "2.0", "0"]]}, "book-10", "XBT/USD"]
    assert books.on_frame(orjson.dumps(update), 1)[1] is Outcome.APPLIED
    assert book.book.depth() == (10, 10) and book.book.bids()[-1].price == "92.0"
    assert book.book.best_bid() == ("100.5", "2.0") and book.ticker == "KRAKEN:BTC/USD"


def test_updates_before_any_snapshot_are_skipped_not_applied() -> None:
    books = KrakenBooks()
    book, outcome = books.on_frame('[7,{"b":[["1.0","1.0","0"]],"c":"1"},"book-10","XBT/USD"]', 0)
    assert outcome is Outcome.SKIPPED and book is not None and len(book.book) == 0 and not book.wants_resubscribe


def test_events_and_other_channels_are_not_book_messages() -> None:
    books = KrakenBooks()
    assert books.on_frame('{"event":"heartbeat"}', 0) == (None, Outcome.NOT_BOOK)
    assert books.on_frame('[993,[["354.1","0.8","1618678142.5","s","l",""]],"trade","XMR/USD"]', 0)[1] is Outcome.NOT_BOOK


@pytest.mark.parametrize("frame,message", [
    ("[1,{", "not JSON"),
    ('[1,{"a":[]}]', "without channel name and pair"),
    ('[1,"x","book-10","XBT/USD"]', "without level objects"),
    ('[1,{"a":[["1.0"]],"c":"1"},"book-10","XBT/USD"]', "malformed book levels"),
    ('[1,{"a":[],"c":"1"},"book-10","XBTUSD"]', "not a Kraken websocket pair"),
    ('[1,{"a":[],"c":"1"},"book-7","XBT/USD"]', "unknown Kraken book channel"),
])
def test_malformed_frames_raise_a_parse_error_with_the_frame(frame: str, message: str) -> None:
    books = KrakenBooks()
    books.on_frame('[1,{"as":[],"bs":[]},"book-10","XBT/USD"]', 0)
    with pytest.raises(KrakenParseError, match=message):
        books.on_frame(frame, 0)


def test_pair_names_and_depths_follow_krakens_conventions() -> None:
    assert ticker_for("XBT/CHF") == "KRAKEN:BTC/CHF" and ticker_for("XDG/USD") == "KRAKEN:DOGE/USD"
    assert book_depth("book-1000") == 1000 and book_depth("book") == 10
    with pytest.raises(KrakenSymbolError, match="book-7"):
        book_depth("book-7")
    with pytest.raises(KrakenSymbolError, match="XBTCHF"):
        ticker_for("XBTCHF")
