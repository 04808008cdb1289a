"""Bitfinex v2 books: every recorded update applies; a dropped update is caught (SEQ_ALL jump, or the next checksum)
and the books resync; every recorded trade parses to Bitfinex's exact number text."""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from pathlib import Path

import pytest

from ingestors.bitfinex.book import BitfinexBooks, BitfinexParseError, Outcome, book_checksum
from ingestors.bitfinex.config import FLAG_OB_CHECKSUM, BitfinexSymbolError, ticker_for
from ingestors.book import OrderBook
from ingestors.gaps import GapHow
from marketlake.recordings import Record, RecordKind, Session, read_session
from marketlake.verify_book import VerifyReport
from marketlake.verify_kucoin_bitfinex import verify_bitfinex

from .book_fixtures import counts

SEQ = re.compile(r",\d+\]$")



@pytest.fixture(scope="module")
def bitfinex(data_dir: Path) -> Session:
    return read_session([data_dir / "cryptofeed" / "BITFINEX.jsonl.zst"])


@pytest.fixture(scope="module")
def clean(bitfinex: Session) -> VerifyReport:
    return verify_bitfinex(bitfinex)


def channel_ids(session: Session, channel: str) -> dict[int, str]:
    """chanId -> symbol of the recorded "subscribed" answers for `channel`."""
    out: dict[int, str] = {}
    for r in session.records:
        if r.kind is RecordKind.WS and r.data.startswith('{"event":"subscribed"'):
            msg = json.loads(r.data)
            if msg["channel"] == channel:
                out[msg["chanId"]] = msg["symbol"]
    return out


def book_updates(session: Session, symbol: str) -> list[int]:
    """Indices of the recorded one-level updates of `symbol`'s book: [chanId,[PRICE,COUNT,AMOUNT](,seq)]."""
    chan = next(c for c, s in channel_ids(session, "book").items() if s == symbol)
    head = re.compile(rf"^\[{chan},\[-?[0-9.e+-]+,")
    return [i for i, r in enumerate(session.records) if r.kind is RecordKind.WS and head.match(r.data)]


def with_checksums(session: Session) -> Session:
    """The recording as a connection with OB_CHECKSUM and without SEQ_ALL would get it: no sequence numbers, and a
    [chanId, "cs", checksum] after every book frame (computed by an independent book over the frames)."""
    books = set(channel_ids(session, "book"))
    reference = {chan: OrderBook("X") for chan in books}
    out: list[Record] = []
    for r in session.records:
        if r.kind is not RecordKind.WS:
            out.append(r)
            continue
        text = r.data.replace('"flags":65536', f'"flags":{FLAG_OB_CHECKSUM}') if r.data.startswith("{") else \
            SEQ.sub("]", r.data)
        out.append(r._replace(data=text))
        msg = json.loads(text, parse_float=str, parse_int=str) if text.startswith("[") else None
        if msg is None or int(msg[0]) not in books or not isinstance(msg[1], list):
            continue
        book = reference[int(msg[0])]
        rows = msg[1] if not msg[1] or isinstance(msg[1][0], list) else [msg[1]]
        if rows is msg[1]:
            book.clear()
        for price, count, amount in rows:
            book.set_level(not amount.startswith("-"), price, amount.lstrip("-") if count != "0" else "0")
        out.append(r._replace(data=f'[{msg[0]},"cs",{book_checksum(book)}]'))
    return dataclasses.replace(session, records=out)


def test_every_recorded_bitfinex_update_applies(bitfinex: Session, clean: VerifyReport) -> None:
    print(f"\nverify-book BITFINEX: {counts(clean)}")
    expected = sum(len(book_updates(bitfinex, s)) for s in channel_ids(bitfinex, "book").values())
    print(f"book updates in the recording: {expected}")
    d = clean.to_dict()
    assert set(d["books"]) == {"BITFINEX:BFT/USD", "BITFINEX:IOT/ETH", "BITFINEX:DOG/USD", "BITFINEX:MNA/BTC",
                               "BITFINEX:ODE/USD", "BITFINEX:TESTBTC/TESTUSD", "BITFINEX:SNG/USD"}, counts(clean)
    assert d["updates_applied"] == expected > 1500, counts(clean)
    assert (d["gaps"], d["crossed_books"], d["checksum_failures"], d["bbo_mismatches"], d["unsynced_books"],
            d["malformed_frames"]) == (0, 0, 0, 0, 0, 0), counts(clean)
    assert clean.ok, counts(clean)


def test_with_checksum_frames_every_checksum_matches(bitfinex: Session) -> None:
    report = verify_bitfinex(with_checksums(bitfinex))
    print(f"\nverify-book BITFINEX with OB_CHECKSUM frames, no SEQ_ALL: {counts(report)}")
    d = report.to_dict()
    assert d["checksum_checked"] == d["updates_applied"] + 7 and d["updates_applied"] > 1500, counts(report)
    assert (d["checksum_failures"], d["gaps"]) == (0, 0) and report.ok, counts(report)


def test_a_dropped_update_breaks_seq_all_and_every_book_of_the_connection_resyncs(bitfinex: Session) -> None:
    """SEQ_ALL numbers every channel frame of the connection together: a jump proves a loss, not whose it was."""
    victim = book_updates(bitfinex, "tIOTETH")[40]
    revealer = next(i for i in range(victim + 1, len(bitfinex.records)) if bitfinex.records[i].kind is RecordKind.WS)
    dropped_seq = int(SEQ.search(bitfinex.records[victim].data).group()[1:-1])  # type: ignore[union-attr]
    books = BitfinexBooks()
    for r in bitfinex.records[:victim]:
        if r.kind is RecordKind.WS:
            books.on_frame(r.data, r.recv_ns)
    synced = {b.ticker for b in books.books.values() if b.synced}
    report = verify_bitfinex(dataclasses.replace(bitfinex, records=[r for i, r in enumerate(bitfinex.records)
                                                                    if i != victim]))
    print(f"\nverify-book BITFINEX with one tIOTETH update dropped: {counts(report)}")
    d = report.to_dict()
    assert d["gaps"] == len(synced) == 5 and not report.ok, counts(report)
    assert {g.ticker for g in report.gap_events} == synced
    for gap in report.gap_events:
        assert (gap.how, gap.last_seen, gap.next_received) == (GapHow.SEQUENCE_JUMP, dropped_seq - 1, dropped_seq + 1)
        assert gap.detected_at_ns == bitfinex.records[revealer].recv_ns


def test_a_dropped_update_fails_the_next_checksum_and_only_that_symbol_resyncs(bitfinex: Session) -> None:
    session = with_checksums(bitfinex)
    clean = verify_bitfinex(session)
    victim = book_updates(session, "tIOTETH")[40]
    revealer = victim + 1  # the checksum frame Bitfinex sent after the dropped update
    report = verify_bitfinex(dataclasses.replace(session, records=[r for i, r in enumerate(session.records)
                                                                   if i != victim]))
    print(f"\nverify-book BITFINEX (OB_CHECKSUM) with one tIOTETH update dropped: {counts(report)}")
    d = report.to_dict()
    assert (d["gaps"], d["checksum_failures"], d["unsynced_books"]) == (1, 1, 1), counts(report)
    gap = report.gap_events[0]
    assert (gap.exchange, gap.ticker, gap.how) == ("BITFINEX", "BITFINEX:IOT/ETH", GapHow.CHECKSUM_MISMATCH)
    assert gap.detected_at_ns == session.records[revealer].recv_ns and "Bitfinex checksum" in gap.detail
    for ticker, book in clean.books.items():
        if ticker != "BITFINEX:IOT/ETH":
            assert vars(report.books[ticker]) == vars(book)  # the other books are untouched


def test_a_fresh_snapshot_after_the_gap_makes_every_later_checksum_match(bitfinex: Session) -> None:
    """What resubscribing does: a new snapshot for that symbol, and the book is proven right again."""
    session = with_checksums(bitfinex)
    chan = next(c for c, s in channel_ids(session, "book").items() if s == "tIOTETH")
    victim = book_updates(session, "tIOTETH")[40]
    reference, faulty = BitfinexBooks(), BitfinexBooks()
    after: list[Outcome] = []
    for i, r in enumerate(session.records):
        if r.kind is not RecordKind.WS:
            continue
        reference.on_frame(r.data, r.recv_ns)
        if i == victim:
            continue
        book, outcome = faulty.on_frame(r.data, r.recv_ns)
        if outcome is Outcome.CHECKSUM_FAILED:
            assert faulty.wanting_resubscribe() == ["tIOTETH"] and not faulty.books["tIOTETH"].synced
            ref = reference.books["tIOTETH"].book
            rows = [f"[{lv.price},1,{lv.size}]" for lv in ref.bids()] + [f"[{lv.price},1,-{lv.size}]" for lv in ref.asks()]
            assert faulty.on_frame(f"[{chan},[{','.join(rows)}]]", r.recv_ns)[1] is Outcome.SNAPSHOT
        elif book is not None and book.symbol == "tIOTETH" and book.stats.resyncs:
            after.append(outcome)
    book = faulty.books["tIOTETH"]
    assert len(after) > 700 and set(after) == {Outcome.APPLIED, Outcome.CHECKSUM}
    assert (book.stats.checksum_failures, book.stats.resyncs, book.synced) == (1, 1, True)
    assert book.book.bids() == reference.books["tIOTETH"].book.bids()
    assert book.book.asks() == reference.books["tIOTETH"].book.asks()


def test_every_recorded_trade_parses_to_the_exact_text_bitfinex_sent(bitfinex: Session) -> None:
    chans = channel_ids(bitfinex, "trades")
    row = re.compile(r"\[(\d+),(\d+),(-?[0-9.e+-]+),([0-9.e+-]+)\]")
    expected: list[tuple[str, str, str, str, str]] = []
    for r in bitfinex.records:
        m = re.match(r"^\[(\d+),", r.data) if r.kind is RecordKind.WS else None
        if m is not None and int(m.group(1)) in chans and not r.data.startswith(f"[{m.group(1)},\"hb\""):
            for tid, _mts, amount, price in row.findall(r.data):
                expected.append((chans[int(m.group(1))], tid, price, amount.lstrip("-"),
                                 "sell" if amount.startswith("-") else "buy"))
    books = BitfinexBooks()
    parsed = []
    for r in bitfinex.records:
        if r.kind is RecordKind.WS and books.on_frame(r.data, r.recv_ns)[1] is Outcome.TRADES:
            parsed += [(t.symbol, t.trade_id, t.price, t.size, t.side) for t in books.trades]
    print(f"\nBITFINEX trades in the recording: {len(expected)}, parsed: {len(parsed)}")
    assert parsed == expected and len(expected) > 100


def test_executed_trades_and_their_updates() -> None:
    books = BitfinexBooks()
    books.on_frame('{"event":"subscribed","channel":"trades","chanId":7,"symbol":"tBTCUSD","pair":"BTCUSD"}', 0)
    assert books.on_frame('[7,"te",[401597395,1574694478808,-0.005,7245.3]]', 0)[1] is Outcome.TRADES
    assert books.trades == [("tBTCUSD", "401597395", 1574694478808, "7245.3", "0.005", "sell")]
    assert books.on_frame('[7,"tu",[401597395,1574694478808,-0.005,7245.3]]', 0)[1] is Outcome.NOT_BOOK
    assert books.on_frame('[7,"te",[401597396,1574694478809,2.5e-7,7245.4]]', 0)[1] is Outcome.TRADES
    assert books.trades[0][3:] == ("7245.4", "2.5e-7", "buy")


def test_checksum_is_signed_crc32_of_interleaved_top_25_levels_with_negative_ask_amounts() -> None:
    book = OrderBook("BITFINEX:BTC/USD")
    bids = [[f"{100 - i}.5", f"{i + 1}"] for i in range(30)]  # 30 bids: only 25 count
    asks = [["101.1", "0.5"], ["101.2", "7"]]  # a short side just ends early
    book.apply_snapshot(bids, asks)
    text = "100.5:1:101.1:-0.5:99.5:2:101.2:-7:" + ":".join(f"{100 - i}.5:{i + 1}" for i in range(2, 25))
    unsigned = zlib.crc32(text.encode())
    assert book_checksum(book) == (unsigned - 2**32 if unsigned >= 2**31 else unsigned)


def test_levels_heartbeats_sequence_and_deletes() -> None:
    books = BitfinexBooks()
    assert books.on_frame('{"event":"conf","status":"OK","flags":65536}', 0)[1] is Outcome.NOT_BOOK
    assert books.on_frame('[5,"hb",1]', 0) == (None, Outcome.NOT_BOOK)  # before "subscribed": as recorded
    books.on_frame('{"event":"subscribed","channel":"book","chanId":5,"symbol":"tBTCUSD","prec":"P0","len":"25"}', 0)
    assert books.on_frame('[5,[[100,1,2],[101,2,-3e-8]],2]', 0)[1] is Outcome.SNAPSHOT
    book = books.books["tBTCUSD"]
    assert book.book.best_ask() == ("101", "3e-8") and book.book.best_bid() == ("100", "2")
    assert books.on_frame('[5,"hb",3]', 0)[1] is Outcome.HEARTBEAT
    assert books.on_frame('[5,[99.5,1,4],4]', 0)[1] is Outcome.APPLIED
    assert books.on_frame('[5,[100,0,1],5]', 0)[1] is Outcome.APPLIED  # count 0, amount 1: delete a bid
    assert books.on_frame('[5,[101,0,-1],6]', 0)[1] is Outcome.APPLIED  # amount -1: delete an ask
    assert book.book.best_bid() == ("99.5", "4") and book.book.best_ask() is None and book.book.update_id == 6
    assert books.on_frame('[5,[99,1,1],8]', 7)[1] is Outcome.SEQUENCE_GAP and books.wanting_resubscribe() == ["tBTCUSD"]
    assert books.gaps[0].detail == "tBTCUSD book: connection sequence 8 after 6; the lost frame may be this channel's"
    assert books.on_frame('[5,[99,1,1],9]', 0)[1] is Outcome.SKIPPED


@pytest.mark.parametrize("frame,message", [
    ("[5,", "not JSON"),
    ("[5,[1,2]]", "level is not"),
    ("[5,[[1,2]]]", "snapshot rows"),
    ('[5,[100,1,"x"]]', r"tBTCUSD book: unreadable level \(BookError: not a decimal number: 'x'\)"),
    ('[5,"cs"]', "malformed Bitfinex frame"),
])
def test_malformed_frames_raise_a_parse_error_naming_the_frame(frame: str, message: str) -> None:
    books = BitfinexBooks()
    books.on_frame('{"event":"subscribed","channel":"book","chanId":5,"symbol":"tBTCUSD","prec":"P0","len":"25"}', 0)
    books.on_frame("[5,[[100,1,2]]]", 0)
    with pytest.raises(BitfinexParseError, match=message):
        books.on_frame(frame, 0)


def test_an_unreadable_level_of_a_synced_book_is_a_gap_and_asks_for_a_new_snapshot() -> None:
    books = BitfinexBooks()
    books.on_frame('{"event":"subscribed","channel":"book","chanId":5,"symbol":"tBTCUSD","prec":"P0","len":"25"}', 0)
    books.on_frame("[5,[[100,1,2]]]", 0)
    with pytest.raises(BitfinexParseError, match="unreadable level"):
        books.on_frame('[5,[101,1,"2.5.1"]]', 9)
    book = books.books["tBTCUSD"]
    assert [(g.how, g.detected_at_ns) for g in book.gaps] == [("unreadable", 9)] and not book.synced and not book.book
    assert books.wanting_resubscribe() == ["tBTCUSD"]


def test_symbols_become_project_tickers() -> None:
    assert ticker_for("tBTCUSD") == "BITFINEX:BTC/USD" and ticker_for("tTESTBTC:TESTUSD") == "BITFINEX:TESTBTC/TESTUSD"
    assert ticker_for("tBTCUST") == "BITFINEX:BTC/USDT" and ticker_for("tAVAX:USD") == "BITFINEX:AVAX/USD"
    for bad in ("fUSD", "BTCUSD", "tBTCUSDT", "tbtcusd"):
        with pytest.raises(BitfinexSymbolError, match=re.escape(repr(bad))):
            ticker_for(bad)
