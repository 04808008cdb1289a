"""KuCoin level2 books: every recorded l2update applies onto the recorded REST snapshots and every ticker agrees
exactly at its sequence; a dropped push is one gap for that symbol only, and a new snapshot resyncs it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import orjson
import pytest

from ingestors.gaps import GapHow
from ingestors.kucoin.book import KucoinBooks, KucoinParseError, Outcome
from ingestors.kucoin.config import KucoinSymbolError, ticker_for
from marketlake.recordings import RecordKind, Session, read_session
from marketlake.verify_book import VerifyReport
from marketlake.verify_kucoin_bitfinex import verify_kucoin

from .book_fixtures import counts


@pytest.fixture(scope="module")
def kucoin(data_dir: Path) -> Session:
    return read_session([data_dir / "cryptofeed" / "KUCOIN.jsonl.zst"])


@pytest.fixture(scope="module")
def clean(kucoin: Session) -> VerifyReport:
    return verify_kucoin(kucoin)


def l2_indices(session: Session, symbol: str | None = None) -> list[int]:
    mark = f'"topic":"/market/level2:{symbol}"' if symbol else '"subject":"trade.l2update"'
    return [i for i, r in enumerate(session.records) if r.kind is RecordKind.WS and mark in r.data]


def test_every_recorded_kucoin_update_applies_and_every_ticker_matches(kucoin: Session, clean: VerifyReport) -> None:
    print(f"\nverify-book KUCOIN: {counts(clean)}")
    snapshot_seq = {r.url.rsplit("=", 1)[1]: int(orjson.loads(r.data)["data"]["sequence"])
                    for r in kucoin.records if r.kind is RecordKind.HTTP and "/market/orderbook/level2" in r.url}
    pushes = [orjson.loads(kucoin.records[i].data)["data"] for i in l2_indices(kucoin)]
    expected = sum(int(d["sequenceEnd"]) > snapshot_seq[d["symbol"]] for d in pushes)
    print(f"l2updates in the recording: {len(pushes)}, after their snapshot: {expected}")
    d = clean.to_dict()
    assert len(d["books"]) == 9 and "KUCOIN:BCHSV/USDT" in d["books"], counts(clean)  # LTX-USDT: nothing recorded
    assert d["updates_applied"] == expected > 3800, counts(clean)
    assert d["bbo_checked"] > 800, counts(clean)
    assert (d["gaps"], d["crossed_books"], d["bbo_mismatches"], d["unsynced_books"], d["malformed_frames"]) == (
        0, 0, 0, 0, 0), counts(clean)
    assert clean.ok, counts(clean)


def test_a_dropped_update_is_one_gap_for_that_symbol_only(kucoin: Session, clean: VerifyReport) -> None:
    updates = l2_indices(kucoin, "SNX-BTC")
    victim, revealer = updates[100], updates[101]
    dropped = orjson.loads(kucoin.records[victim].data)["data"]
    report = verify_kucoin(dataclasses.replace(kucoin, records=[r for i, r in enumerate(kucoin.records) if i != victim]))
    print(f"\nverify-book KUCOIN with one SNX-BTC l2update dropped: {counts(report)}")
    d = report.to_dict()
    assert (d["gaps"], d["resyncs"], d["unsynced_books"]) == (1, 1, 1) and not report.ok, counts(report)
    gap = report.gap_events[0]
    assert (gap.exchange, gap.ticker, gap.how) == ("KUCOIN", "KUCOIN:SNX/BTC", GapHow.SEQUENCE_JUMP)
    assert (gap.last_seen, gap.first_missing) == (dropped["sequenceStart"] - 1, dropped["sequenceStart"])
    assert gap.next_received == dropped["sequenceEnd"] + 1 and gap.detected_at_ns == kucoin.records[revealer].recv_ns
    for ticker, book in clean.books.items():
        if ticker != "KUCOIN:SNX/BTC":
            assert vars(report.books[ticker]) == vars(book)  # the other symbols are untouched


def test_a_new_snapshot_after_the_gap_resyncs_that_symbol(kucoin: Session) -> None:
    """What the live client does: fetch a snapshot; the pushes buffered since the gap are replayed onto it."""
    updates = l2_indices(kucoin, "SNX-BTC")
    victim, refetch_after = updates[100], updates[110]
    reference, faulty = KucoinBooks(), KucoinBooks()
    snapshot_at_gap: bytes | None = None
    for i, r in enumerate(kucoin.records):
        if r.kind is RecordKind.HTTP:
            if "/market/orderbook/level2" not in r.url:
                continue
            symbol = r.url.rsplit("=", 1)[1]
            reference.on_snapshot(symbol, r.data, r.recv_ns)
            faulty.on_snapshot(symbol, r.data, r.recv_ns)
            continue
        reference.on_frame(r.data, r.recv_ns)
        if i == updates[104]:  # the exchange's book a little after the gap: what REST answers
            ref = reference.books["SNX-BTC"]
            snapshot_at_gap = orjson.dumps({"code": "200000", "data": {
                "sequence": str(ref.seq), "bids": [list(lv) for lv in ref.book.bids()],
                "asks": [list(lv) for lv in ref.book.asks()]}})
        if i == victim:
            continue
        book, outcome = faulty.on_frame(r.data, r.recv_ns)
        if outcome is Outcome.SEQUENCE_GAP:
            assert faulty.wanting_snapshot() == ["SNX-BTC"]
        if i == refetch_after:
            assert snapshot_at_gap is not None and faulty.books["SNX-BTC"].wants_snapshot
            assert faulty.on_snapshot("SNX-BTC", snapshot_at_gap, r.recv_ns)[1] is Outcome.SNAPSHOT
    ours, theirs = faulty.books["SNX-BTC"], reference.books["SNX-BTC"]
    assert (ours.stats.resyncs, ours.synced, ours.seq) == (1, True, theirs.seq)
    assert ours.book.bids() == theirs.book.bids() and ours.book.asks() == theirs.book.asks()
    assert ours.stats.dropped >= 5  # buffered pushes already in the snapshot


def test_every_recorded_trade_parses_to_kucoins_exact_strings(kucoin: Session) -> None:
    raw = [orjson.loads(r.data)["data"] for r in kucoin.records
           if r.kind is RecordKind.WS and '"subject":"trade.l3match"' in r.data]
    books = KucoinBooks()
    parsed = []
    for r in kucoin.records:
        if r.kind is RecordKind.WS and books.on_frame(r.data, r.recv_ns)[1] is Outcome.TRADE:
            parsed.append(books.trade)
    print(f"\nKUCOIN trades in the recording: {len(raw)}, parsed: {len(parsed)}")
    assert len(parsed) == len(raw) > 10
    for t, d in zip(parsed, raw, strict=True):
        assert t is not None
        assert (t.symbol, t.trade_id, t.price, t.size, t.side) == (d["symbol"], d["tradeId"], d["price"], d["size"],
                                                                   d["side"])
        assert (t.sequence, t.time_ns) == (int(d["sequence"]), int(d["time"]))


def push(symbol: str, start: int, bids: list[list[str]], asks: list[list[str]]) -> str:
    end = start + len(bids) + len(asks) - 1
    return json.dumps({"type": "message", "subject": "trade.l2update", "topic": f"/market/level2:{symbol}",
                       "data": {"symbol": symbol, "sequenceStart": start, "sequenceEnd": end,
                                "changes": {"bids": bids, "asks": asks}}})


def test_buffering_price_zero_size_zero_and_stale_snapshots() -> None:
    books = KucoinBooks()
    assert books.on_frame(push("BTC-USDT", 9, [["100", "1", "9"]], []), 0)[1] is Outcome.BUFFERED
    assert books.on_frame(push("BTC-USDT", 10, [["99", "2", "10"]], [["101", "3", "11"]]), 0)[1] is Outcome.BUFFERED
    stale = b'{"code":"200000","data":{"sequence":"7","bids":[],"asks":[]}}'
    assert books.on_snapshot("BTC-USDT", stale, 0)[1] is Outcome.STALE_SNAPSHOT  # pushes from 9 on: 8 is missing
    snap = b'{"code":"200000","data":{"sequence":"10","bids":[["100","5"]],"asks":[["102","1"]]}}'
    book, outcome = books.on_snapshot("BTC-USDT", snap, 0)
    assert outcome is Outcome.SNAPSHOT and book.seq == 11  # push 9 dropped; of 10..11 only change 11 applied
    assert book.book.best_bid() == ("100", "5") and book.book.best_ask() == ("101", "3")
    assert books.on_frame(push("BTC-USDT", 12, [["0", "0", "12"]], [["101", "0", "13"]]), 0)[1] is Outcome.APPLIED
    assert book.book.best_ask() == ("102", "1") and book.stats.no_price_changes == 1 and book.seq == 13
    assert books.on_frame(push("BTC-USDT", 15, [["98", "1", "15"]], []), 7)[1] is Outcome.SEQUENCE_GAP
    assert books.gaps[0].detail == "BTC-USDT level2: sequenceStart 15 after the book's 13"
    assert books.wanting_snapshot() == ["BTC-USDT"] and len(book.book) == 0


@pytest.mark.parametrize("frame,message", [
    ("{", "not JSON"),
    ('{"type":"message","subject":"trade.l2update","data":{"symbol":"BTC-USDT"}}', "malformed KuCoin push"),
    ('{"type":"message","subject":"trade.l2update","data":{"symbol":"btc_usdt","sequenceStart":1}}', "not a KuCoin"),
    ('{"type":"message","subject":"trade.l3match","data":{"symbol":"BTC-USDT","price":"1","size":"0","side":"buy",'
     '"tradeId":"x","sequence":"1","time":"1"}}', "match with price 1 and size 0"),
])
def test_malformed_frames_raise_a_parse_error(frame: str, message: str) -> None:
    books = KucoinBooks()
    books.on_snapshot("BTC-USDT", b'{"code":"200000","data":{"sequence":"1","bids":[],"asks":[]}}', 0)
    with pytest.raises(KucoinParseError, match=message):
        books.on_frame(frame, 0)


def test_symbols_become_project_tickers() -> None:
    assert ticker_for("BTC-USDT") == "KUCOIN:BTC/USDT" and ticker_for("BCHSV-USDT") == "KUCOIN:BCHSV/USDT"
    for bad in ("BTCUSDT", "btc-usdt", "A-B-C"):
        with pytest.raises(KucoinSymbolError, match=bad):
            ticker_for(bad)
