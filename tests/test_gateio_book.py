"""Gate.io spot books: every recorded spot.order_book_update applies on its REST snapshot (baseId rules), the best
bid/ask agrees with spot.tickers; a dropped update is one gap of that pair only, and a new snapshot resyncs it;
trades parse to Gate.io's exact text."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from ingestors.gaps import GapHow
from ingestors.gateio.book import GateioBooks, GateioBookSync, GateioParseError, Outcome, Push, SyncState
from ingestors.gateio.config import GateioSymbolError, snapshot_url, ticker_for
from marketlake.recordings import RecordKind, Session, read_session
from marketlake.verify_book import VerifyReport
from marketlake.verify_huobi_gateio import verify_gateio

from .book_fixtures import counts


@pytest.fixture(scope="module")
def gateio(data_dir: Path) -> Session:
    return read_session([data_dir / "cryptofeed" / "GATEIO.jsonl.zst"])


@pytest.fixture(scope="module")
def clean(gateio: Session) -> VerifyReport:
    return verify_gateio(gateio)


def update_indices(session: Session, pair: str | None = None) -> list[int]:
    return [i for i, r in enumerate(session.records) if r.kind is RecordKind.WS
            and '"channel":"spot.order_book_update","event":"update"' in r.data
            and (pair is None or f'"s":"{pair}"' in r.data)]


def snapshot_ids(session: Session) -> dict[str, int]:
    return {parse_qs(urlsplit(r.url).query)["currency_pair"][0]: orjson.loads(r.data)["id"]
            for r in session.records if r.kind is RecordKind.HTTP and "/api/v4/spot/order_book" in r.url}


def test_every_recorded_update_after_its_snapshot_applies(gateio: Session, clean: VerifyReport) -> None:
    base = snapshot_ids(gateio)
    results = [orjson.loads(gateio.records[i].data)["result"] for i in update_indices(gateio)]
    expected = sum(r["u"] >= base[r["s"]] + 1 for r in results)  # Gate's rule: drop u < baseId + 1
    print(f"\nverify-book GATEIO: {counts(clean)} (update frames: {len(results)}, after their snapshot: {expected})")
    d = clean.to_dict()
    assert set(d["books"]) == {ticker_for(p) for p in base} and len(base) == 10
    assert d["frames"] == sum(r.kind is not RecordKind.HTTP for r in gateio.records), counts(clean)
    assert d["updates_applied"] == expected > 150, counts(clean)
    assert (d["gaps"], d["crossed_books"], d["unsynced_books"], d["malformed_frames"]) == (0, 0, 0, 0), counts(clean)
    assert d["bbo_checked"] >= 10 and d["bbo_mismatches"] == 0 and clean.ok, counts(clean)


def test_a_dropped_update_is_one_gap_of_that_pair_only(gateio: Session, clean: VerifyReport) -> None:
    updates = update_indices(gateio, "OMG_USDT")
    victim, revealer = updates[20], updates[21]
    dropped, revealed = (orjson.loads(gateio.records[i].data)["result"] for i in (victim, revealer))
    report = verify_gateio(dataclasses.replace(gateio, records=[r for i, r in enumerate(gateio.records) if i != victim]))
    print(f"\nverify-book GATEIO with one OMG_USDT update dropped: {counts(report)}")
    d = report.to_dict()
    assert (d["gaps"], d["resyncs"], d["unsynced_books"], d["crossed_books"]) == (1, 1, 1, 0), counts(report)
    gap = report.gap_events[0]
    assert (gap.exchange, gap.ticker, gap.how) == ("GATEIO", "GATEIO:OMG/USDT", GapHow.SEQUENCE_JUMP)
    assert (gap.last_seen, gap.first_missing, gap.next_received) == (dropped["U"] - 1, dropped["U"], revealed["U"])
    assert gap.detected_at_ns == gateio.records[revealer].recv_ns
    for ticker in clean.books:
        if ticker != "GATEIO:OMG/USDT":
            assert vars(report.books[ticker]) == vars(clean.books[ticker])  # the other pairs are untouched


def test_a_new_snapshot_after_the_gap_resyncs_and_every_later_update_applies(gateio: Session) -> None:
    """What the live client does: GET the pair's snapshot again; its answer is the exchange's book then."""
    updates = update_indices(gateio, "OMG_USDT")
    victim = updates[20]
    reference, faulty = GateioBooks(), GateioBooks()
    after: list[Outcome] = []
    for i, r in enumerate(gateio.records):
        if r.kind is RecordKind.HTTP:
            pair = parse_qs(urlsplit(r.url).query).get("currency_pair", [""])[0]
            for books in (reference, faulty):
                if pair in books.syncs and books.syncs[pair].wants_snapshot:
                    assert books.on_snapshot(pair, orjson.loads(r.data), r.recv_ns) is Outcome.SNAPSHOT_APPLIED
            continue
        ref_sync, _ = reference.on_frame(r.data, r.recv_ns)
        if i == victim:
            continue
        sync, outcome = faulty.on_frame(r.data, r.recv_ns)
        if outcome is Outcome.GAP:
            assert faulty.wanting_snapshot() == ["OMG_USDT"] and ref_sync is not None
            bids, asks = ([[lv.price, lv.size] for lv in side] for side in ref_sync.book.top(1000))
            snapshot = {"id": ref_sync.book.update_id, "current": 1, "update": 1, "bids": bids, "asks": asks}
            assert faulty.on_snapshot("OMG_USDT", snapshot, r.recv_ns) is Outcome.SNAPSHOT_APPLIED
        elif sync is not None and i in updates and sync.stats.resyncs:
            after.append(outcome)
    sync, ref = faulty.syncs["OMG_USDT"], reference.syncs["OMG_USDT"]
    assert len(after) > 20 and set(after) == {Outcome.APPLIED}
    assert (sync.stats.resyncs, sync.state, sync.book.update_id) == (1, SyncState.LIVE, ref.book.update_id)
    assert sync.book.top(1000) == ref.book.top(1000)
    assert [len(s.gaps) for p, s in faulty.syncs.items() if p != "OMG_USDT"] == [0] * 9


def test_the_baseid_rules() -> None:
    books = GateioBooks()

    def update(first: int, last: int, bids: list[list[str]] | None = None) -> Outcome:
        frame = {"time": 1, "channel": "spot.order_book_update", "event": "update",
                 "result": {"t": last, "e": "depthUpdate", "E": 1, "s": "BTC_USDT", "U": first, "u": last,
                            "b": bids or [], "a": []}}
        return books.on_frame(orjson.dumps(frame), 0)[1]

    def snapshot(base: int) -> Outcome:
        return books.on_snapshot("BTC_USDT", {"id": base, "bids": [["10", "1"]], "asks": [["12", "1"]]}, 0)

    assert update(101, 103) is Outcome.BUFFERED and books.wanting_snapshot() == ["BTC_USDT"]
    assert update(104, 106, [["11", "2"]]) is Outcome.BUFFERED
    assert snapshot(99) is Outcome.STALE_SNAPSHOT  # baseId + 1 < the first cached U
    assert snapshot(104) is Outcome.SNAPSHOT_APPLIED  # 101..103 dropped (u < 105); 104 <= 105 <= 106 applies
    sync = books.syncs["BTC_USDT"]
    assert (sync.stats.dropped, sync.stats.updates_applied, sync.book.update_id) == (1, 1, 106)
    assert sync.book.best_bid() == ("11", "2") and snapshot(1) is Outcome.UNWANTED_SNAPSHOT
    assert update(105, 106) is Outcome.IGNORED_OLD  # a repeat
    assert update(107, 107) is Outcome.APPLIED
    assert update(107, 109) is Outcome.GAP  # overlaps: U must be exactly the previous u + 1
    assert books.gaps[0].detail == "BTC_USDT: book update U=107 u=109 after book id 107"
    assert update(110, 111) is Outcome.BUFFERED and snapshot(109) is Outcome.SNAPSHOT_APPLIED
    assert sync.book.update_id == 111 and sync.is_live


def test_tickers_book_tickers_and_whole_books() -> None:
    books = GateioBooks()
    ticker = ('{"time":1619093533,"channel":"spot.tickers","event":"update","result":{"currency_pair":"NEO_BTC",'
              '"last":"0.0018716","lowest_ask":"0.0018734","highest_bid":"0.0018697"}}')
    assert books.on_frame(ticker, 0) == (None, Push.TICKER)
    assert books.ticker == ("NEO_BTC", 1619093533000, "0.0018697", "0.0018734")
    bt = ('{"time":1,"channel":"spot.book_ticker","event":"update","result":{"t":1606293275123,"u":48733182,'
          '"s":"BTC_USDT","b":"19177.79","B":"0.0003341504","a":"19179.38","A":"0.09"}}')
    assert books.on_frame(bt, 0) == (None, Push.BOOK_TICKER) and books.book_ticker is not None
    assert books.book_ticker.update_id == 48733182 and books.book_ticker.bid_size == "0.0003341504"
    whole = ('{"time":1,"channel":"spot.order_book","event":"update","result":{"t":5,"lastUpdateId":48791820,'
             '"s":"BTC_USDT","bids":[["19079.55","0.0195"]],"asks":[["19080.24","0.1638"]]}}')
    sync, outcome = books.on_frame(whole, 0)
    assert outcome is Push.REFRESH and sync is not None and sync.book.best_ask() == ("19080.24", "0.1638")
    assert books.on_frame(whole.replace("48791820", "48791819"), 0)[1] is Outcome.IGNORED_OLD
    assert books.on_frame('{"time":1,"channel":"spot.pong","event":"","error":null,"result":null}', 0) == (
        None, Push.NOT_BOOK)


def test_every_recorded_trade_parses_to_gateio_exact_text(gateio: Session) -> None:
    texts = [r.data for r in gateio.records if r.kind is RecordKind.WS
             and '"channel":"spot.trades","event":"update"' in r.data]
    raw = [m.groups() for t in texts for m in re.finditer(
        r'"id":(\d+),"create_time":\d+,"create_time_ms":"([\d.]+)","side":"(\w+)","currency_pair":"(\w+)",'
        r'"amount":"([^"]+)","price":"([^"]+)"', t)]
    books = GateioBooks()
    trades = []
    for t in texts:
        assert books.on_frame(t, 0) == (None, Push.TRADE)
        trades += books.trades
    print(f"\nGate.io trades parsed: {len(trades)} in {len(texts)} spot.trades frames")
    assert len(trades) == len(raw) == len(texts) > 5
    for trade, (tid, ms, side, pair, amount, price) in zip(trades, raw, strict=True):
        assert (trade.trade_id, trade.create_time_ms, trade.side, trade.pair, trade.amount, trade.price) == (
            tid, ms, side, pair, amount, price)
    assert ("DIS_USDT", "0.2010000000", "121.5800000000") in [(t.pair, t.amount, t.price) for t in trades]


@pytest.mark.parametrize("frame,message", [
    ("{", "not JSON"),
    ('{"time":1,"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":1}}', "lacks"),
    ('{"time":1,"channel":"spot.order_book_update","event":"update","result":{"t":1,"s":"BTC_USDT","U":5,"u":4,'
     '"b":[],"a":[]}}', "U 5 > u 4"),
    ('{"time":1,"channel":"spot.order_book_update","event":"update","result":{"t":1,"s":"btcusdt","U":1,"u":1,'
     '"b":[],"a":[]}}', "not a Gate.io currency pair"),
])
def test_malformed_frames_raise_a_parse_error_naming_the_frame(frame: str, message: str) -> None:
    with pytest.raises(GateioParseError, match=message):
        GateioBooks().on_frame(frame, 0)


def test_pairs_become_project_tickers() -> None:
    assert ticker_for("BTC_USDT") == "GATEIO:BTC/USDT" and ticker_for("QTUM3S_USDT") == "GATEIO:QTUM3S/USDT"
    assert snapshot_url("BTC_USDT") == ("https://api.gateio.ws/api/v4/spot/order_book?currency_pair=BTC_USDT"
                                        "&limit=100&with_id=true")
    with pytest.raises(GateioSymbolError, match="BTCUSDT"):
        ticker_for("BTCUSDT")


def test_a_snapshot_whose_cached_updates_do_not_continue_it_is_not_reported_applied() -> None:
    sync = GateioBookSync("BTC_USDT")
    outcomes = [sync.on_update({"U": first, "u": last, "b": [["1", "1"]], "a": [["2", "1"]], "t": 1}, 0)
                for first, last in ((101, 105), (110, 112))]  # 106..109 never arrived
    assert outcomes == [Outcome.BUFFERED] * 2
    # No book bridged by 101..105 could take 110: only 110..112 stay cached, and a snapshot older than them is stale
    assert sync.on_snapshot({"id": 103, "bids": [["1", "2"]], "asks": [["2", "2"]]}, 0) is Outcome.STALE_SNAPSHOT
    assert sync.state is SyncState.AWAITING_SNAPSHOT and sync.wants_snapshot and sync.book.update_id == 0
    assert (sync.stats.stale_snapshots, sync.stats.resyncs, sync.gaps) == (1, 0, [])  # no book existed: no gap
    assert sync.on_snapshot({"id": 111, "bids": [["1", "2"]], "asks": [["2", "2"]]}, 0) is Outcome.SNAPSHOT_APPLIED
    assert sync.is_live and sync.book.update_id == 112
