"""HTX (Huobi) books: every recorded depth.step0 push rebuilds its book; as mbp increments (seqNum/prevSeqNum) a
dropped update is one gap of that symbol only, and a new snapshot resyncs it; trades parse to HTX's exact text."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from ingestors.gaps import GapHow
from ingestors.huobi.book import HuobiBooks, HuobiParseError, Outcome, decode_frame, load_frame, parse_trades
from ingestors.huobi.config import HuobiSymbolError, ticker_for
from marketlake.recordings import Record, RecordKind, Session, read_session
from marketlake.verify_book import VerifyReport
from marketlake.verify_huobi_gateio import verify_huobi

from .book_fixtures import counts

SYMBOLS = ("trioeth", "borusdt", "omgbtc", "xvgeth", "yfihusd", "zeneth", "dogeeth", "fil3susdt", "propyeth", "nesteth")



@pytest.fixture(scope="module")
def huobi(data_dir: Path) -> Session:
    return read_session([data_dir / "cryptofeed" / "HUOBI.jsonl.zst"])


@pytest.fixture(scope="module")
def clean(huobi: Session) -> VerifyReport:
    return verify_huobi(huobi)


def text_of(r: Record) -> str:
    return gzip.decompress(base64.b64decode(r.data)).decode() if r.kind is RecordKind.WS_BINARY else r.data


def frame(text: str, r: Record) -> Record:
    """A server frame as HTX sends it (gzip, binary), at r's time."""
    return r._replace(kind=RecordKind.WS_BINARY, data=base64.b64encode(gzip.compress(text.encode())).decode())


def depth_indices(session: Session, symbol: str | None = None) -> list[int]:
    head = f'{{"ch":"market.{symbol or ""}'
    return [i for i, r in enumerate(session.records) if r.kind is not RecordKind.HTTP
            and (t := text_of(r)).startswith(head) and ".depth.step0\"" in t[:60]]


def levels_text(levels: Iterable[Sequence[str]]) -> str:
    return "[" + ",".join(f"[{p},{s}]" for p, s in levels) + "]"


def as_mbp(session: Session) -> Session:
    """The recording as HTX's mbp.150 feed: each symbol's first depth push becomes the req answer (seqNum = its
    version), every later push the increment that turns the previous book into it (levels gone: size 0)."""
    last: dict[str, tuple[int, dict[str, str], dict[str, str]]] = {}
    records = list(session.records)
    for i in depth_indices(session):
        msg = json.loads(text_of(records[i]), parse_float=str)
        symbol, tick = msg["ch"].split(".")[1], msg["tick"]
        bids, asks = ({str(p): str(s) for p, s in tick[side]} for side in ("bids", "asks"))
        topic = f"market.{symbol}.mbp.150"
        if symbol not in last:
            text = (f'{{"id":"{symbol}","rep":"{topic}","status":"ok","data":{{"seqNum":{tick["version"]},'
                    f'"bids":{levels_text(bids.items())},"asks":{levels_text(asks.items())}}}}}')
        else:
            prev, old_bids, old_asks = last[symbol]
            diff = [[[p, s] for p, s in new.items() if old.get(p) != s] + [[p, "0"] for p in old if p not in new]
                    for new, old in ((bids, old_bids), (asks, old_asks))]
            text = (f'{{"ch":"{topic}","ts":{msg["ts"]},"tick":{{"seqNum":{tick["version"]},"prevSeqNum":{prev},'
                    f'"bids":{levels_text(diff[0])},"asks":{levels_text(diff[1])}}}}}')
        last[symbol] = (tick["version"], bids, asks)
        records[i] = frame(text, records[i])
    return dataclasses.replace(session, records=records)


def without(session: Session, index: int) -> Session:
    return dataclasses.replace(session, records=[r for i, r in enumerate(session.records) if i != index])


def test_every_recorded_depth_push_rebuilds_its_book(huobi: Session, clean: VerifyReport) -> None:
    frames = sum(r.kind is not RecordKind.HTTP for r in huobi.records)
    pushes = len(depth_indices(huobi))
    print(f"\nverify-book HUOBI: {counts(clean)} (depth.step0 pushes in the recording: {pushes}; no bbo channel "
          "recorded, so no BBO check)")
    d = clean.to_dict()
    assert set(d["books"]) == {"HUOBI:TRIO/ETH", "HUOBI:BOR/USDT", "HUOBI:OMG/BTC", "HUOBI:XVG/ETH", "HUOBI:YFI/HUSD",
                               "HUOBI:ZEN/ETH", "HUOBI:DOGE/ETH", "HUOBI:FIL3S/USDT", "HUOBI:PROPY/ETH", "HUOBI:NEST/ETH"}
    assert (d["frames"], d["updates_applied"]) == (frames, pushes) and pushes > 280, counts(clean)
    assert (d["gaps"], d["crossed_books"], d["unsynced_books"], d["malformed_frames"]) == (0, 0, 0, 0), counts(clean)
    assert (d["bbo_checked"], d["bbo_mismatches"]) == (0, 0) and clean.ok, counts(clean)


def test_each_book_is_exactly_the_last_push_in_htx_number_text(huobi: Session, clean: VerifyReport) -> None:
    for symbol in SYMBOLS:
        tick = json.loads(text_of(huobi.records[depth_indices(huobi, symbol)[-1]]), parse_float=str)["tick"]
        book = clean.books[ticker_for(symbol)]
        assert book.best_bid == [str(x) for x in tick["bids"][0]] and book.best_ask == [str(x) for x in tick["asks"][0]]
    assert clean.books["HUOBI:TRIO/ETH"].best_ask == ["9.2E-7", "13463.35"]  # HTX's text, exponent and all


def test_a_dropped_depth_push_loses_nothing_the_next_whole_book_replaces_it(huobi: Session,
                                                                             clean: VerifyReport) -> None:
    """depth.step0 has no sequence to break: each push is the whole book, so a lost one is not a gap."""
    pushes = depth_indices(huobi, "omgbtc")
    report = verify_huobi(without(huobi, pushes[10]))
    print(f"\nverify-book HUOBI with one omgbtc depth push dropped: {counts(report)}")
    d = report.to_dict()
    assert (d["gaps"], d["updates_applied"], d["unsynced_books"]) == (0, clean.to_dict()["updates_applied"] - 1, 0)
    assert vars(report.books["HUOBI:OMG/BTC"]) == {**vars(clean.books["HUOBI:OMG/BTC"]), "updates_applied": 30}


def test_as_mbp_increments_every_update_applies_and_the_books_match(huobi: Session, clean: VerifyReport) -> None:
    report = verify_huobi(as_mbp(huobi))
    print(f"\nverify-book HUOBI as mbp.150 increments: {counts(report)}")
    d = report.to_dict()
    assert d["updates_applied"] == clean.to_dict()["updates_applied"] - len(SYMBOLS) and report.ok, counts(report)
    for ticker, book in clean.books.items():
        assert (report.books[ticker].best_bid, report.books[ticker].best_ask) == (book.best_bid, book.best_ask)


def test_a_dropped_mbp_update_is_one_gap_of_that_symbol_only(huobi: Session) -> None:
    session = as_mbp(huobi)
    clean = verify_huobi(session)
    updates = depth_indices(huobi, "omgbtc")[1:]
    victim, revealer = updates[12], updates[13]
    dropped = load_frame(base64.b64decode(session.records[victim].data))["tick"]
    report = verify_huobi(without(session, victim))
    print(f"\nverify-book HUOBI (mbp) with one omgbtc update dropped: {counts(report)}")
    d = report.to_dict()
    assert (d["gaps"], d["resyncs"], d["unsynced_books"], d["crossed_books"]) == (1, 1, 1, 0), counts(report)
    gap = report.gap_events[0]
    assert (gap.exchange, gap.ticker, gap.how) == ("HUOBI", "HUOBI:OMG/BTC", GapHow.SEQUENCE_JUMP)
    revealed = load_frame(base64.b64decode(session.records[revealer].data))["tick"]
    assert (gap.last_seen, gap.next_received) == (dropped["prevSeqNum"], revealed["seqNum"])
    assert revealed["prevSeqNum"] == dropped["seqNum"]
    assert gap.detected_at_ns == session.records[revealer].recv_ns and "does not continue" in gap.detail
    for ticker in clean.books:
        if ticker != "HUOBI:OMG/BTC":
            assert vars(report.books[ticker]) == vars(clean.books[ticker])  # the other symbols are untouched


def test_a_new_snapshot_after_the_gap_resyncs_and_every_later_update_applies(huobi: Session) -> None:
    """What the live client does: {"req": "market.omgbtc.mbp.150"}; its answer is the exchange's book then."""
    session = as_mbp(huobi)
    updates = depth_indices(huobi, "omgbtc")[1:]
    victim = updates[12]
    reference, faulty = HuobiBooks(), HuobiBooks()
    after: list[Outcome] = []
    for i, r in enumerate(session.records):
        if r.kind is RecordKind.HTTP:
            continue
        data = base64.b64decode(r.data) if r.kind is RecordKind.WS_BINARY else r.data
        ref_book, _ = reference.on_frame(data, r.recv_ns)
        if i == victim:
            continue
        book, outcome = faulty.on_frame(data, r.recv_ns)
        if outcome is Outcome.SEQUENCE_GAP:
            assert faulty.wanting_snapshot() == [("omgbtc", "mbp.150")] and ref_book is not None
            bids, asks = ([[lv.price, lv.size] for lv in side] for side in ref_book.book.top(150))
            rep = (f'{{"id":"1","rep":"market.omgbtc.mbp.150","status":"ok","data":{{"seqNum":{ref_book.seq_num},'
                   f'"bids":{levels_text(bids)},"asks":{levels_text(asks)}}}}}')
            assert faulty.on_frame(gzip.compress(rep.encode()), r.recv_ns)[1] is Outcome.SNAPSHOT
            assert faulty.wanting_snapshot() == []
        elif book is not None and i in updates and book.stats.resyncs:
            after.append(outcome)
    book, ref = faulty.books[("omgbtc", "mbp.150")], reference.books[("omgbtc", "mbp.150")]
    assert len(after) > 10 and set(after) == {Outcome.APPLIED}
    assert (book.stats.resyncs, book.synced, book.seq_num) == (1, True, ref.seq_num)
    assert book.book.top(150) == ref.book.top(150)
    assert [len(b.gaps) for (s, _), b in faulty.books.items() if s != "omgbtc"] == [0] * (len(SYMBOLS) - 1)


def test_mbp_sync_caches_until_the_snapshot_then_chains_seqnum() -> None:
    books = HuobiBooks()

    def push(prev: int, seq: int, bids: str = "[]", asks: str = "[]") -> Outcome:
        text = f'{{"ch":"market.btcusdt.mbp.150","ts":1,"tick":{{"seqNum":{seq},"prevSeqNum":{prev},"bids":{bids},' \
               f'"asks":{asks}}}}}'
        return books.on_frame(gzip.compress(text.encode()), 0)[1]

    def rep(seq: int) -> Outcome:
        text = f'{{"rep":"market.btcusdt.mbp.150","status":"ok","data":{{"seqNum":{seq},"bids":[[10,1]],"asks":[[12,1]]}}}}'
        return books.on_frame(text, 0)[1]

    assert push(100, 105, "[[10.5,2]]") is Outcome.BUFFERED
    assert books.wanting_snapshot() == [("btcusdt", "mbp.150")]
    assert rep(90) is Outcome.STALE_SNAPSHOT  # older than the first cached increment's prevSeqNum
    assert push(105, 107, asks="[[12,0],[13,3.0E-4]]") is Outcome.BUFFERED
    assert rep(105) is Outcome.SNAPSHOT  # 100->105 is in it; 105->107 applies
    book = books.books[("btcusdt", "mbp.150")]
    assert (book.seq_num, book.stats.dropped, book.stats.updates_applied) == (107, 1, 1)
    assert book.book.best_bid() == ("10", "1") and book.book.best_ask() == ("13", "3.0E-4")
    assert push(105, 107) is Outcome.DROPPED  # a repeat
    assert push(107, 110, "[[11,1]]") is Outcome.APPLIED
    assert push(111, 115) is Outcome.SEQUENCE_GAP and books.wanting_snapshot() == [("btcusdt", "mbp.150")]
    assert books.gaps[0].detail == "btcusdt mbp.150: prevSeqNum 111 does not continue the book's seqNum 110"
    assert push(115, 116) is Outcome.BUFFERED and rep(115) is Outcome.SNAPSHOT and book.seq_num == 116


def test_ping_subbed_and_an_older_depth_version_are_not_book_changes() -> None:
    books = HuobiBooks()
    assert books.on_frame(gzip.compress(b'{"ping":1618678073643}'), 0) == (None, Outcome.PING)
    assert books.ping == 1618678073643
    assert books.on_frame('{"id":1,"status":"ok","subbed":"market.trioeth.depth.step0","ts":1}', 0) == (
        None, Outcome.NOT_BOOK)
    new = '{"ch":"market.btcusdt.depth.step0","ts":2,"tick":{"bids":[[1,1]],"asks":[[2,1]],"version":9,"ts":2}}'
    assert books.on_frame(new, 0)[1] is Outcome.REFRESH
    assert books.on_frame(new.replace('"version":9', '"version":8'), 0)[1] is Outcome.DROPPED
    bbo = ('{"ch":"market.btcusdt.bbo","ts":1,"tick":{"symbol":"btcusdt","quoteTime":1489474082811,"bid":10008.31,'
           '"bidSize":0.01,"ask":10009.54,"askSize":0.3,"seqId":10242474683}}')
    assert books.on_frame(bbo, 0) == (None, Outcome.BBO)
    assert books.bbo == ("btcusdt", 1489474082811, 10242474683, "10008.31", "0.01", "10009.54", "0.3")


def test_every_recorded_trade_parses_to_htx_exact_text(huobi: Session) -> None:
    texts = [t for r in huobi.records if r.kind is not RecordKind.HTTP and (t := text_of(r)).startswith('{"ch":')
             and ".trade.detail\"" in t[:60]]
    raw = [m for t in texts for m in re.finditer(r'"tradeId":(\d+),"amount":([^,}]+),"price":([^,}]+),'
                                                 r'"direction":"(\w+)"', t)]
    expected = sum(t.count('"tradeId":') for t in texts)
    trades = [trade for t in texts for trade in parse_trades(load_frame(t))]
    print(f"\nHTX trades parsed: {len(trades)} in {len(texts)} trade.detail frames")
    assert len(trades) == len(raw) == expected > 40
    for trade, m in zip(trades, raw, strict=True):
        assert (trade.trade_id, trade.amount, trade.price, trade.side) == m.groups()
    assert ("fil3susdt", "7517101.405697963", "1.3303E-4") in [(t.symbol, t.amount, t.price) for t in trades]


@pytest.mark.parametrize("data,message", [
    (b"\x1f\x8bnot gzip", "not gzip-compressed"),
    ("{", "not JSON"),
    ('{"ch":"market.btcusdt.depth.step0","ts":1,"tick":{"bids":[[1]],"asks":[],"version":1}}', "malformed levels"),
    ('{"ch":"market.btcusdt.depth.step7","ts":1,"tick":{}}', "no book topic"),
    ('{"ch":"market.btcusdt.trade.detail","tick":{"data":[{"price":true}]}}', "malformed"),
])
def test_malformed_frames_raise_a_parse_error_naming_the_frame(data: bytes | str, message: str) -> None:
    with pytest.raises(HuobiParseError, match=message):
        HuobiBooks().on_frame(data, 0)


def test_symbols_become_project_tickers() -> None:
    assert ticker_for("btcusdt") == "HUOBI:BTC/USDT" and ticker_for("yfihusd") == "HUOBI:YFI/HUSD"
    assert ticker_for("fil3susdt", {"base-currency": "fil3s", "quote-currency": "usdt"}) == "HUOBI:FIL3S/USDT"
    assert decode_frame(gzip.compress(b'{"a":1}')) == '{"a":1}'
    with pytest.raises(HuobiSymbolError, match="BTCUSDT"):
        ticker_for("BTCUSDT")


def test_a_trade_whose_price_is_no_number_is_refused_naming_it() -> None:
    push = {"ch": "market.omgbtc.trade.detail", "ts": 1, "tick": {"id": 1, "ts": 1, "data": [
        {"id": 1, "ts": 1, "tradeId": 7, "amount": 2.5, "price": "x", "direction": "buy"}]}}
    with pytest.raises(HuobiParseError, match="not a number: 'x'"):
        parse_trades(push)
