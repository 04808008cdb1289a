"""The Gate.io live feed against the Gate.io replay server: every recorded trade, REST-synced gap-free books.

Real websocket on loopback, the real GATEIO recording (2021-04-22, spot v4: spot.trades and
spot.order_book_update 100ms of ten pairs, and the REST snapshots with_id=true the recorder fetched).
Expected values come from the recording read here, independently of the server and the adapter: each
book is the recorded snapshot plus the recorded updates after its baseId, following Gate.io's rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from ingestors.book import OrderBook
from ingestors.gateio.live import GateioLive, ws_pair
from ingestors.live.adapter import FrameParseError, SnapshotRequest
from ingestors.live.connection import LiveConnection
from ingestors.replay.exchanges import replay_for
from ingestors.replay.server import ReplayServer
from live_relay.messages import BookLevel, BookUpdate, StreamGap, Tick, TopOfBook
from marketlake.kafka_broker import free_port

from .live_fixtures import Collected, run_feed
from .replay_fixtures import load

PAIRS = ["INK_USDT", "HAI_ETH", "BTC_USDC", "NANO_USDT", "QTUM3S_USDT", "DIS_USDT", "NEO_BTC", "FAST_USDT", "ZKS_ETH",
         "OMG_USDT"]
TICKERS = ["GATEIO:" + p.replace("_", "/") for p in PAIRS]
FAULTED = "GATEIO:DIS/USDT"  # its first recorded update is the one that bridges its snapshot (U = baseId + 1)


@dataclass
class Recorded:
    """One pair: its trades, the recorded REST snapshot and book updates, the updates a book applies after it."""

    trades: list[tuple[str, str, str, str, int]] = field(default_factory=list)  # id, price, size, taker side, ns
    snapshot: dict = field(default_factory=dict)
    frames: list[str] = field(default_factory=list)  # the pair's recorded spot.order_book_update frames
    updates: list[dict] = field(default_factory=list)  # their results
    applied: list[dict] = field(default_factory=list)  # the updates after baseId, in order
    book: OrderBook = field(default_factory=lambda: OrderBook(""))

    def build(self) -> None:
        """Gate.io's procedure on the recorded snapshot; asserts the recording follows it (bridge, U = u + 1)."""
        base = self.snapshot["id"]
        self.book.apply_snapshot(self.snapshot["bids"], self.snapshot["asks"], base)
        last = None
        for u in self.updates:
            if u["u"] < base + 1:
                continue
            assert (u["U"] <= base + 1 <= u["u"]) if last is None else u["U"] == last + 1, u
            self.book.apply_delta(u["b"], u["a"])
            self.applied.append(u)
            last = u["u"]


def recorded(data_dir: Path) -> dict[str, Recorded]:
    rec = load(data_dir, "GATEIO")
    out = {t: Recorded() for t in TICKERS}
    by_pair = dict(zip(PAIRS, TICKERS, strict=True))
    for path, body in rec.http:
        pair = parse_qs(urlsplit(path).query).get("currency_pair", [""])[0]
        if urlsplit(path).path == "/api/v4/spot/order_book" and pair in by_pair:
            out[by_pair[pair]].snapshot = orjson.loads(body)
    for frame in rec.conns[0].recvs:
        msg = orjson.loads(frame)
        result = msg.get("result")
        if msg.get("event") != "update" or not isinstance(result, dict):
            continue
        if msg["channel"] == "spot.trades" and result["currency_pair"] in by_pair:
            ns = int(Decimal(result["create_time_ms"]) * 1_000_000)
            out[by_pair[result["currency_pair"]]].trades.append(
                (str(result["id"]), result["price"], result["amount"], result["side"], ns))
        elif msg["channel"] == "spot.order_book_update" and result["s"] in by_pair:
            out[by_pair[result["s"]]].frames.append(str(frame))
            out[by_pair[result["s"]]].updates.append(result)
    for r in out.values():
        r.build()
    return out


def levels(side: Sequence[BookLevel]) -> list[list[str]]:
    return [[x.price, x.size] for x in side]


def published(updates: list[BookUpdate], ticker: str) -> OrderBook:
    book = OrderBook(ticker)
    for u in (u for u in updates if u.ticker == ticker):
        (book.apply_snapshot if u.snapshot else book.apply_delta)(levels(u.bids), levels(u.asks))
        assert not book.is_crossed(), u
    return book


def final_id(r: Recorded) -> int:
    return r.applied[-1]["u"] if r.applied else r.snapshot["id"]


class Run(NamedTuple):
    collected: Collected
    conn: LiveConnection
    adapter: GateioLive
    stats: dict
    books: dict[str, tuple[tuple[list, list], int, int]]  # the adapter's books when complete: top, id, updates applied
    waiting: list[str]  # ... and the pairs then waiting for a snapshot


def run(data_dir: Path, rec: dict[str, Recorded], drop: str | None = None) -> Run:
    server = ReplayServer(replay_for("GATEIO"), data_dir, deterministic=True)
    if drop is not None:
        server.state.set_faults(drop_diffs=1, fault_symbol=ws_pair(drop))
    with server.running(port=free_port()) as base:
        adapter = GateioLive(TICKERS, base.replace("http://", "ws://") + "/ws/v4/", base)

        books: dict[str, tuple[tuple[list, list], int, int]] = {}  # (stopping restarts every book)
        waiting: list[str] = []

        def complete(c: Collected, _conn: object) -> bool:
            last = {u.ticker: u.update_id for u in c.of(BookUpdate)}
            done = all(c.counts[Tick, t] >= len(r.trades) and (t == drop or last.get(t) == final_id(r))
                       for t, r in rec.items())  # fmt: skip
            if done:
                books.update({s.ticker: (s.book.top(100), s.book.update_id, s.stats.updates_applied)
                              for s in adapter.books.syncs.values() if s.synced})  # fmt: skip
                waiting.extend(adapter.books.wanting_snapshot())
            return done

        collected, conn = run_feed(adapter, complete)
        stats = server.state.stats()
    return Run(collected, conn, adapter, stats, books, waiting)


def check_book(run: Run, ticker: str, r: Recorded) -> list[BookUpdate]:
    """A snapshot, then exactly the recorded updates after it; the published book is the recording's."""
    mine = run.collected.of(BookUpdate, ticker)
    assert mine[0].snapshot and not any(u.snapshot for u in mine[1:])
    after = [u for u in r.applied if u["u"] > mine[0].update_id]
    assert mine[0].update_id in [r.snapshot["id"]] + [u["u"] for u in r.applied]
    assert [(u.update_id, levels(u.bids), levels(u.asks)) for u in mine[1:]] == [(u["u"], u["b"], u["a"]) for u in after]
    assert published(run.collected.of(BookUpdate), ticker).top(100) == r.book.top(100) == run.books[ticker][0]
    assert run.books[ticker][1:] == (final_id(r), len(r.applied))
    return mine


def test_every_recorded_trade_and_book_update_arrives_on_the_rest_snapshot_without_a_gap(data_dir: Path) -> None:
    rec = recorded(data_dir)
    res = run(data_dir, rec)
    collected, conn, stats = res.collected, res.conn, res.stats
    assert not collected.of(StreamGap) and not collected.of(TopOfBook) and sum(conn.stats.malformed.values()) == 0
    assert stats["requests"]["/api/v4/spot/order_book"] == len(PAIRS)  # one snapshot a pair, none stale
    for ticker, r in rec.items():
        ticks = collected.of(Tick, ticker)
        assert [(t.trade_id, t.price, t.size, "sell" if t.buyer_is_maker else "buy", t.exchange_time_ns)
                for t in ticks] == r.trades  # fmt: skip
        assert len({t.trade_id for t in ticks}) == len(ticks)
        check_book(res, ticker, r)
    n_updates = sum(len(r.applied) for r in rec.values())
    print(f"\ngateio: {sum(len(r.trades) for r in rec.values())} trades, {len(collected.of(BookUpdate))} book updates "
          f"({len(PAIRS)} snapshots, {n_updates} recorded updates applied), 0 gaps")


def test_a_dropped_bridging_update_leaves_only_that_pair_waiting_for_a_newer_snapshot(data_dir: Path) -> None:
    """The replay's drop fault takes a pair's first update, which for DIS_USDT is the one bridging its snapshot:
    the stream then starts past baseId + 1, the recorded snapshot is stale, and DIS_USDT alone publishes no book
    (nothing was announced, so nothing to call a gap) while it asks for a newer one; every other pair streams."""
    rec = recorded(data_dir)
    r = rec[FAULTED]
    assert r.applied[0] is r.updates[0] and r.updates[0]["U"] == r.snapshot["id"] + 1
    res = run(data_dir, rec, drop=FAULTED)
    collected, conn, stats = res.collected, res.conn, res.stats
    assert stats["dropped"] == 1 and not collected.of(StreamGap) and sum(conn.stats.malformed.values()) == 0
    assert not collected.of(BookUpdate, FAULTED) and FAULTED not in res.books and res.waiting == [ws_pair(FAULTED)]
    for ticker, other in rec.items():
        assert [t.trade_id for t in collected.of(Tick, ticker)] == [t[0] for t in other.trades]
        if ticker != FAULTED:
            check_book(res, ticker, other)
    print(f"\ngateio drop fault: {ws_pair(FAULTED)} bridging update dropped, its snapshot stale, 0 gaps; "
          f"{len(collected.of(BookUpdate))} book updates of the other {len(PAIRS) - 1} pairs")


def feed(adapter: GateioLive, frames: list[str]) -> list:
    return [e for f in frames for e in adapter.on_frame(f, 1)]


def test_a_lost_update_of_a_live_book_is_one_gap_for_that_pair_only_offline(data_dir: Path) -> None:
    """Recorded frames fed to the adapter by hand, one OMG_USDT update after its snapshot left out."""
    rec = recorded(data_dir)
    omg, neo = rec["GATEIO:OMG/USDT"], rec["GATEIO:NEO/BTC"]
    adapter = GateioLive(["GATEIO:OMG/USDT", "GATEIO:NEO/BTC"], "ws://127.0.0.1:1/ws/v4/", "http://127.0.0.1:1")
    assert feed(adapter, omg.frames[:1] + neo.frames[:1]) == []  # cached until the snapshots
    asked = adapter.snapshot_requests()
    assert [(q.symbol, parse_qs(urlsplit(q.url).query)) for q in asked] == [
        (p, {"currency_pair": [p], "limit": ["100"], "with_id": ["true"]}) for p in ("OMG_USDT", "NEO_BTC")]
    assert all(q.url.startswith("http://127.0.0.1:1/api/v4/spot/order_book?") for q in asked)
    for q, r in zip(asked, (omg, neo), strict=True):
        [snap] = adapter.on_snapshot(q, r.snapshot, 2)
        assert isinstance(snap, BookUpdate) and snap.snapshot
    lost = next(i for i, u in enumerate(omg.updates) if u is omg.applied[3])
    events = feed(adapter, [f for i, f in enumerate(omg.frames) if 0 < i != lost] + neo.frames[1:])
    gaps = [e for e in events if isinstance(e, StreamGap)]
    assert [(g.ticker, g.how, g.last_seen, g.first_missing, g.next_received) for g in gaps] == [
        ("GATEIO:OMG/USDT", "sequence_jump", omg.applied[2]["u"], omg.applied[2]["u"] + 1, omg.applied[4]["U"])]
    omg_updates = [e for e in events if isinstance(e, BookUpdate) and e.ticker == "GATEIO:OMG/USDT"]
    assert [u.update_id for u in omg_updates] == [u["u"] for u in omg.applied[:3]]  # nothing after the gap
    neo_updates = [e for e in events if isinstance(e, BookUpdate) and e.ticker == "GATEIO:NEO/BTC"]
    assert [u.update_id for u in neo_updates] == [u["u"] for u in neo.applied]  # the other pair kept streaming
    assert adapter.books.syncs["NEO_BTC"].book.top(100) == neo.book.top(100)
    assert [q.symbol for q in adapter.snapshot_requests()] == ["OMG_USDT"]  # only the gapped pair resyncs
    lost_books = adapter.on_disconnect(7)
    assert [(g.ticker, g.how, g.detected_at_ns) for g in lost_books if isinstance(g, StreamGap)] == [
        ("GATEIO:NEO/BTC", "reconnect", 7)] and len(lost_books) == 1  # OMG was waiting for a snapshot already
    assert adapter.on_connect(8) == [] and adapter.snapshot_requests() == []


def test_a_snapshot_older_than_the_stream_is_stale_and_asked_again_offline(data_dir: Path) -> None:
    r = recorded(data_dir)[FAULTED]
    adapter = GateioLive([FAULTED], "ws://127.0.0.1:1/ws/v4/", "http://127.0.0.1:1")
    assert feed(adapter, r.frames[1:3]) == []  # the bridging update never came
    [q] = adapter.snapshot_requests()
    assert adapter.on_snapshot(q, r.snapshot, 2) == [] and [x.symbol for x in adapter.snapshot_requests()] == ["DIS_USDT"]
    assert adapter.books.syncs["DIS_USDT"].stats.stale_snapshots == 1


def test_keepalive_subscriptions_tops_and_bad_frames_offline() -> None:
    adapter = GateioLive(TICKERS[:2], "ws://127.0.0.1:1/ws/v4/", "http://127.0.0.1:1", tops=True)
    frames = [orjson.loads(f) for f in adapter.subscribe_frames()]
    assert [(f["channel"], f["event"], f["payload"]) for f in frames] == [
        ("spot.trades", "subscribe", PAIRS[:2]), ("spot.order_book_update", "subscribe", [PAIRS[0], "100ms"]),
        ("spot.order_book_update", "subscribe", [PAIRS[1], "100ms"]), ("spot.book_ticker", "subscribe", PAIRS[:2])]
    keep = adapter.keepalive
    assert keep.ping_interval_s is not None and 10 <= keep.ping_interval_s <= 20 and keep.ping_frame is not None
    ping = orjson.loads(keep.ping_frame)
    assert ping["channel"] == "spot.ping" and abs(ping["time"] - frames[0]["time"]) <= 1
    pong = '{"time":1619093532,"channel":"spot.pong","event":"","error":null,"result":null}'
    assert adapter.is_pong(pong) and adapter.is_pong(pong.encode()) and not adapter.is_pong(replay_for("GATEIO").malformed)
    assert adapter.on_frame('{"time":1,"channel":"spot.trades","event":"subscribe","result":{"status":"success"}}', 0) == []
    ticker = ('{"time":1,"channel":"spot.book_ticker","event":"update","result":{"t":1606293275123,"u":48733182,'
              '"s":"INK_USDT","b":"0.0028144","B":"64918.872","a":"0.0028150","A":"12.5"}}')
    assert adapter.on_frame(ticker, 5) == [TopOfBook("GATEIO:INK/USDT", "0.0028144", "64918.872", "0.0028150", "12.5",
                                                     1606293275123 * 1_000_000, 5, 48733182)]
    causes = []
    for frame in (replay_for("GATEIO").malformed, "[1,2]",
                  '{"time":1,"channel":"spot.trades","event":"subscribe","error":{"code":2,"message":"unknown currency '
                  'pair XX_YY"},"result":{"status":"fail"}}',
                  '{"time":1,"channel":"spot.trades","event":"update","result":{"id":1,"price":"1"}}',
                  '{"time":1,"channel":"spot.order_book_update","event":"update","result":{"s":"INK_USDT","U":"x"}}',
                  '{"time":1,"channel":"spot.candlesticks","event":"update","result":{"n":"1m_INK_USDT"}}'):
        with pytest.raises(FrameParseError) as exc:
            adapter.on_frame(frame, 0)
        causes.append(exc.value.cause)
    assert causes == ["json", "schema", "subscription_error", "schema", "schema", "unknown_channel"]
    with pytest.raises(FrameParseError) as exc:
        adapter.on_snapshot(SnapshotRequest("INK_USDT", "u"), {"bids": []}, 0)
    assert exc.value.cause == "snapshot"
