"""The OKX live feed against the OKX replay server: every recorded trade, checksum-verified books, tickers tops.

Real websocket on loopback, the real OKX recording (v5 public, 2022-05-13: BTC-USDT, UNI-USD-SWAP,
BTC-USD-220527 on trades, books and tickers; the books carry a CRC32 checksum and no seqId yet).
Expected values come from the recording read here, independently of the server and the adapter.
"""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import orjson
import pytest

from ingestors.book import OrderBook
from ingestors.live.adapter import FrameParseError
from ingestors.okx.live import OkxLive, inst_id
from ingestors.replay.exchanges import replay_for
from ingestors.replay.server import ReplayServer
from live_relay.messages import BookUpdate, StreamGap, Tick, TopOfBook
from marketlake.kafka_broker import free_port

from .live_fixtures import Collected, run_feed
from .replay_fixtures import load

TICKERS = ["OKX:BTC/USDT", "OKX:UNI/USDPERP", "OKX:BTC/USD220527"]
FAULTED = "OKX:BTC/USDT"


class Recorded:
    """The recording's trades (id, price, size, side), tickers and book pushes per ticker, and its final books."""

    def __init__(self, data_dir: Path) -> None:
        names = {inst_id(t): t for t in TICKERS}
        self.trades: dict[str, list[tuple[str, str, str, str]]] = {t: [] for t in TICKERS}
        self.tops: Counter[str] = Counter()
        self.books: dict[str, list[dict]] = {t: [] for t in TICKERS}  # {"action", "bids", "asks", "checksum"} pushes
        for conn in load(data_dir, "OKX").conns:
            for frame in conn.recvs:
                msg = orjson.loads(frame) if frame != "pong" else {}
                arg = msg.get("arg", {})
                if "data" not in msg or arg.get("instId") not in names:
                    continue
                ticker = names[arg["instId"]]
                if arg["channel"] == "trades":
                    self.trades[ticker] += [(d["tradeId"], d["px"], d["sz"], d["side"]) for d in msg["data"]]
                elif arg["channel"] == "tickers":
                    self.tops[ticker] += len(msg["data"])
                elif arg["channel"] == "books":
                    self.books[ticker].append({"action": msg["action"], **msg["data"][0]})

    def book(self, ticker: str, drop: int | None = None) -> tuple[OrderBook, int | None]:
        """The book after every push (but the update at index `drop`); index of the first push whose checksum fails."""
        book, failed = OrderBook(ticker), None
        for i, push in enumerate(self.books[ticker]):
            if i == drop:
                continue
            (book.apply_snapshot if push["action"] == "snapshot" else book.apply_delta)(push["bids"], push["asks"])
            if failed is None and push["checksum"] != okx_checksum(book):
                failed = i
        return book, failed


def okx_checksum(book: OrderBook) -> int:
    """OKX's documented checksum: signed CRC32 of "bidPx:bidSz:askPx:askSz:..." over the top 25 levels."""
    bids, asks = book.top(25)
    parts = [x for i in range(max(len(bids), len(asks))) for side in (bids, asks) if i < len(side) for x in side[i]]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 2**32 if crc >= 2**31 else crc


def live(adapter: OkxLive) -> dict[str, OrderBook]:
    """A copy of each synced book of the adapter, by ticker."""
    out = {}
    for kb in adapter.books.books.values():
        if kb.synced:
            out[kb.ticker] = OrderBook(kb.ticker)
            out[kb.ticker].apply_snapshot(*kb.book.top(1000))
    return out


def rebuilt(updates: list[BookUpdate], ticker: str) -> OrderBook:
    book = OrderBook(ticker)
    for u in (u for u in updates if u.ticker == ticker):
        levels = ([(x.price, x.size) for x in u.bids], [(x.price, x.size) for x in u.asks])
        (book.apply_snapshot if u.snapshot else book.apply_delta)(*levels)
    return book


def test_every_recorded_trade_top_and_book_update_arrives_and_every_checksum_matches(data_dir: Path) -> None:
    rec = Recorded(data_dir)
    server = ReplayServer(replay_for("OKX"), data_dir, deterministic=True)
    with server.running(port=free_port()) as base:
        adapter = OkxLive(TICKERS, base.replace("http://", "ws://") + "/ws/v5/public", base)

        live_books: dict[str, OrderBook] = {}  # the adapter's books when complete (stopping clears them)

        def complete(c: Collected, _conn: object) -> bool:
            done = all(c.counts[Tick, t] >= len(rec.trades[t]) and c.counts[TopOfBook, t] >= rec.tops[t]
                       and c.counts[BookUpdate, t] >= len(rec.books[t]) for t in TICKERS)
            if done:
                live_books.update(live(adapter))
            return done

        collected, conn = run_feed(adapter, complete)
        got = collected.events
    updates = collected.of(BookUpdate)
    for ticker in TICKERS:
        ticks = collected.of(Tick, ticker)
        assert [(t.trade_id, t.price, t.size, "sell" if t.buyer_is_maker else "buy") for t in ticks] == rec.trades[ticker]
        assert len({t.trade_id for t in ticks}) == len(ticks)
        assert collected.counts[TopOfBook, ticker] == rec.tops[ticker]
        assert collected.counts[BookUpdate, ticker] == len(rec.books[ticker])
        expected, failed = rec.book(ticker)
        book, ours = rebuilt(updates, ticker), live_books[ticker]
        assert failed is None and book.top(400) == expected.top(400) == ours.top(400) and not book.is_crossed()
    kb = adapter.books.books.values()
    checked, failures = sum(b.stats.checksum_checked for b in kb), sum(b.stats.checksum_failures for b in kb)
    assert checked == sum(len(v) for v in rec.books.values()) and failures == 0
    assert not [e for e in got if isinstance(e, StreamGap)] and sum(conn.stats.malformed.values()) == 0
    print(f"\nokx: {sum(len(v) for v in rec.trades.values())} trades, {len(updates)} book updates, {checked} checksums "
          f"checked, 0 failures, 0 gaps, {sum(rec.tops.values())} tops")


class SendsRecorded(OkxLive):
    """OkxLive keeping every frame it asked the runner to send."""

    def __init__(self, tickers: list[str], ws_url: str, rest_url: str) -> None:
        super().__init__(tickers, ws_url, rest_url)
        self.sent: list[dict] = []

    def outgoing(self) -> list[str]:
        out = list(super().outgoing())
        self.sent += [orjson.loads(f) for f in out]
        return out


def test_a_dropped_update_is_one_gap_and_only_that_instrument_resubscribes(data_dir: Path) -> None:
    rec = Recorded(data_dir)
    _, revealer = rec.book(FAULTED, drop=1)  # the fault drops the first update (push 1, after the snapshot)
    assert revealer is not None, "dropping the first update would not be detected by a checksum"
    others = [t for t in TICKERS if t != FAULTED]
    server = ReplayServer(replay_for("OKX"), data_dir, deterministic=True)
    server.state.set_faults(drop_diffs=1, fault_symbol=inst_id(FAULTED))
    with server.running(port=free_port()) as base:
        adapter = SendsRecorded(TICKERS, base.replace("http://", "ws://") + "/ws/v5/public", base)

        live_books: dict[str, OrderBook] = {}

        def complete(c: Collected, _conn: object) -> bool:
            done = len(adapter.sent) >= 2 and all(
                c.counts[Tick, t] >= len(rec.trades[t]) and c.counts[TopOfBook, t] >= rec.tops[t] for t in TICKERS) \
                and all(c.counts[BookUpdate, t] >= len(rec.books[t]) for t in others)
            if done:
                live_books.update(live(adapter))
            return done

        collected, conn = run_feed(adapter, complete)
        got = collected.events
        assert server.state.stats()["dropped"] == 1
    gaps = collected.of(StreamGap)
    assert [(g.ticker, g.how) for g in gaps] == [(FAULTED, "checksum_mismatch")]
    arg = {"channel": "books", "instId": inst_id(FAULTED)}
    assert adapter.sent == [{"op": "unsubscribe", "args": [arg]}, {"op": "subscribe", "args": [arg]}]
    faulted = [e for e in got if isinstance(e, BookUpdate | StreamGap) and e.ticker == FAULTED]
    assert len(faulted) == revealer and isinstance(faulted[-1], StreamGap)  # snapshot, the updates before the reveal
    assert faulted[0].snapshot and not any(u.snapshot for u in faulted[1:-1])
    after = got[got.index(gaps[0]):]
    for ticker in others:  # the other instruments kept streaming, every update applied
        assert any(isinstance(e, BookUpdate) and e.ticker == ticker for e in after)
        assert collected.counts[BookUpdate, ticker] == len(rec.books[ticker])
        assert rebuilt(collected.of(BookUpdate), ticker).top(400) == rec.book(ticker)[0].top(400)
    for ticker in TICKERS:  # trades and tickers of every instrument, the faulted one included
        assert [t.trade_id for t in collected.of(Tick, ticker)] == [t[0] for t in rec.trades[ticker]]
        assert collected.counts[TopOfBook, ticker] == rec.tops[ticker]
    assert sum(conn.stats.malformed.values()) == 0
    # The replay server plays its recording once, so the resubscribe gets no second snapshot from it; what OKX
    # sends next is a snapshot push, which resyncs that book alone:
    assert sorted(live_books) == sorted(others)  # at the end of the feed: the faulted book alone was waiting
    for ticker in others:
        assert live_books[ticker].top(400) == rec.book(ticker)[0].top(400)
    book = adapter.books.books["books", inst_id(FAULTED)]
    first = rec.books[FAULTED][0]
    push = {"arg": arg, "action": "snapshot", "data": [{k: v for k, v in first.items() if k != "action"}]}
    events = adapter.on_frame(orjson.dumps(push), 0)
    assert [(e.ticker, e.snapshot) for e in events if isinstance(e, BookUpdate)] == [(FAULTED, True)] == \
        [(e.ticker, e.snapshot) for e in events]
    snapshot = OrderBook(FAULTED)
    snapshot.apply_snapshot(first["bids"], first["asks"])
    assert book.synced and book.book.top(400) == snapshot.top(400)
    print(f"\nokx fault: 1 {inst_id(FAULTED)} update dropped, gap at push {revealer}, resubscribed "
          f"{inst_id(FAULTED)} only; others {[collected.counts[BookUpdate, t] for t in others]} book updates")


def test_bad_frames_raise_frame_parse_errors_and_a_disconnect_is_a_gap_for_each_synced_book(data_dir: Path) -> None:
    rec = Recorded(data_dir)
    adapter = OkxLive(TICKERS, "ws://127.0.0.1:1/ws/v5/public", "http://127.0.0.1:1")
    assert [orjson.loads(f) for f in adapter.subscribe_frames()] == [{"op": "subscribe", "args": [
        {"channel": c, "instId": inst_id(t)} for c in ("trades", "books", "tickers") for t in TICKERS]}]
    assert (adapter.keepalive.ping_frame, adapter.keepalive.ping_interval_s) == ("ping", 20.0)
    assert adapter.is_pong("pong") and not adapter.is_pong('{"event":"subscribe"}')
    assert adapter.on_frame('{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}}', 0) == []
    for ticker in TICKERS[:2]:  # two books synced, the third never got its snapshot
        push = {"arg": {"channel": "books", "instId": inst_id(ticker)}, "action": "snapshot",
                "data": [{k: v for k, v in rec.books[ticker][0].items() if k != "action"}]}
        assert [type(e) for e in adapter.on_frame(orjson.dumps(push), 0)] == [BookUpdate]
    causes, carried = [], []
    for frame in (replay_for("OKX").malformed, "[1,2]", '{"event":"error","code":"60018","msg":"Wrong URL or channel"}',
                  '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"px":"1"}]}',
                  '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"bids":[["x","1"]]}]}',
                  '{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[]}'):
        with pytest.raises(FrameParseError) as exc:
            adapter.on_frame(frame, 0)
        causes.append(exc.value.cause)
        carried += exc.value.events
    assert causes == ["json", "schema", "subscription_error", "schema", "schema", "unknown_channel"]
    # A bad update of a synced book: what it changed is lost, so a gap at once and only that instId resubscribes.
    assert [(g.ticker, g.how) for g in carried if isinstance(g, StreamGap)] == [(TICKERS[0], "unreadable")]
    btc = {"channel": "books", "instId": inst_id(TICKERS[0])}
    assert [orjson.loads(f) for f in adapter.outgoing()] == [{"op": op, "args": [btc]} for op in ("unsubscribe", "subscribe")]
    with pytest.raises(FrameParseError):  # an unreadable snapshot: that book subscribes again for another one
        adapter.on_frame('{"arg":{"channel":"books","instId":"BTC-USD-220527"},"action":"snapshot","data":[{}]}', 0)
    arg = {"channel": "books", "instId": "BTC-USD-220527"}
    assert [orjson.loads(f) for f in adapter.outgoing()] == [{"op": op, "args": [arg]} for op in ("unsubscribe", "subscribe")]
    gaps = adapter.on_disconnect(7)
    assert [(g.ticker, g.how, g.detected_at_ns) for g in gaps if isinstance(g, StreamGap)] == [
        (TICKERS[1], "reconnect", 7)] and len(gaps) == 1  # the first lost its book already
    assert adapter.on_connect(8) == [] and not adapter.books.books and adapter.outgoing() == []


def test_trades_read_the_same_on_the_typed_fast_path_and_the_general_path(data_dir: Path) -> None:
    # The typed path is taken for pushes that start as OKX writes them; the same push with its keys in another
    # order takes the general path: both must give the same Ticks, and a mistyped field is a schema error on either.
    adapter = OkxLive(TICKERS, "ws://127.0.0.1:1/ws/v5/public", "http://127.0.0.1:1")
    pushes = [f for f in load(data_dir, "OKX").conns[0].recvs if f.startswith('{"arg":{"channel":"trades"')]
    assert pushes
    for text in pushes:
        push = orjson.loads(text)
        reordered = orjson.dumps({"data": push["data"], "arg": push["arg"]})
        fast, general = adapter.on_frame(text, 5), adapter.on_frame(reordered, 5)
        assert fast == general and [(t.trade_id, t.price, t.size) for t in fast] == [
            (d["tradeId"], d["px"], d["sz"]) for d in push["data"]]
    bad = '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"1","px":1.5,' \
          '"sz":"1","side":"buy","ts":"1"}]}'
    with pytest.raises(FrameParseError, match=r"Expected `str`, got `float` - at `\$\[0\].px`") as exc:
        adapter.on_frame(bad, 0)
    assert exc.value.cause == "schema"
    print(f"okx: {len(pushes)} trade pushes equal on both paths")
