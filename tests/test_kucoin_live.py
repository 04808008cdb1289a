"""The KuCoin live feed against the KuCoin replay server: every recorded trade, sequence-synced books, ticker tops.

Real websocket on loopback (its URL from POST /api/v1/bullet-public), the real KUCOIN recording (spot,
2021-04-25: /market/match, /market/ticker, /market/level2 of 10 symbols and the recorder's REST full-book
snapshots of 9 of them; LTX-USDT has none, so it is left out). Expected values come from the recording
read here, independently of the server and the adapter.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingestors.book import OrderBook
from ingestors.kucoin.live import KucoinLive, symbol_of
from ingestors.live.adapter import FrameParseError
from ingestors.replay.exchanges import replay_for
from ingestors.replay.server import ReplayServer
from live_relay.messages import BookUpdate, StreamGap, Tick, TopOfBook
from marketlake.kafka_broker import free_port

from .live_fixtures import Collected, run_feed
from .replay_fixtures import load

TICKERS = ["KUCOIN:EQZ/BTC", "KUCOIN:ANKR/BTC", "KUCOIN:SNX/BTC", "KUCOIN:FET/BTC", "KUCOIN:BCHSV/USDT",
           "KUCOIN:NRG/BTC", "KUCOIN:CAPP/BTC", "KUCOIN:DAPPT/BTC", "KUCOIN:COV/BTC"]
FAULTED = "KUCOIN:BCHSV/USDT"  # the most level2 pushes, all through the recording


class Recorded:
    """Per ticker: trades (id, price, size, taker side), ticker pushes, level2 pushes, the REST snapshot."""

    def __init__(self, data_dir: Path) -> None:
        names = {symbol_of(t): t for t in TICKERS}
        recording = load(data_dir, "KUCOIN")
        self.trades: dict[str, list[tuple[str, str, str, str]]] = {t: [] for t in TICKERS}
        self.tops: Counter[str] = Counter()
        self.pushes: dict[str, list[dict[str, Any]]] = {t: [] for t in TICKERS}
        self.snapshots = {names[path.partition("symbol=")[2]]: orjson.loads(body)["data"] for path, body in recording.http
                          if path.startswith("/api/v3/market/orderbook/level2?") and path.partition("symbol=")[2] in names}
        for frame in recording.conns[0].recvs:
            msg = orjson.loads(frame)
            symbol = str(msg.get("topic", "")).partition(":")[2]
            if msg.get("type") != "message" or symbol not in names:
                continue
            ticker, data = names[symbol], msg["data"]
            if msg["subject"] == "trade.l3match":
                self.trades[ticker].append((data["tradeId"], data["price"], data["size"], data["side"]))
            elif msg["subject"] == "trade.ticker":
                self.tops[ticker] += 1
            elif msg["subject"] == "trade.l2update":
                self.pushes[ticker].append(data)

    def applied(self, ticker: str) -> list[dict[str, Any]]:
        """The pushes past the snapshot's sequence (those continuing it)."""
        seq = int(self.snapshots[ticker]["sequence"])
        return [p for p in self.pushes[ticker] if int(p["sequenceEnd"]) > seq]

    def book(self, ticker: str) -> OrderBook:
        snap = self.snapshots[ticker]
        book, seq = OrderBook(ticker), int(snap["sequence"])
        book.apply_snapshot(snap["bids"], snap["asks"])
        for push in self.pushes[ticker]:
            for side in ("bids", "asks"):
                for price, size, change_seq in sorted(push["changes"][side], key=lambda c: int(c[2])):
                    if int(change_seq) > seq and price != "0":
                        book.apply_delta(*(([(price, size)], []) if side == "bids" else ([], [(price, size)])))
            seq = max(seq, int(push["sequenceEnd"]))
        return book


def rebuilt(updates: list[BookUpdate], ticker: str) -> OrderBook:
    book = OrderBook(ticker)
    for u in (u for u in updates if u.ticker == ticker):
        levels = ([(x.price, x.size) for x in u.bids], [(x.price, x.size) for x in u.asks])
        (book.apply_snapshot if u.snapshot else book.apply_delta)(*levels)
    return book


def synced_to_end(adapter: KucoinLive, rec: Recorded, ticker: str) -> bool:
    book = adapter.books.books.get(symbol_of(ticker))
    return book is not None and book.synced and book.seq == int(rec.pushes[ticker][-1]["sequenceEnd"])


def copy_books(adapter: KucoinLive) -> dict[str, tuple[OrderBook, int]]:
    out = {}
    for b in adapter.books.books.values():
        if b.synced:
            out[b.ticker] = (OrderBook(b.ticker), b.stats.updates_applied)
            out[b.ticker][0].apply_snapshot(*b.book.top(100_000))
    return out


def test_every_recorded_trade_top_and_book_update_arrives_and_the_books_match(data_dir: Path) -> None:
    rec = Recorded(data_dir)
    server = ReplayServer(replay_for("KUCOIN"), data_dir, deterministic=True)
    with server.running(port=free_port()) as base:
        adapter = KucoinLive(TICKERS, "ws://127.0.0.1:1/not-used", base)
        live_books: dict[str, tuple[OrderBook, int]] = {}

        def complete(c: Collected, _conn: object) -> bool:
            done = all(c.counts[Tick, t] >= len(rec.trades[t]) and c.counts[TopOfBook, t] >= rec.tops[t]
                       and synced_to_end(adapter, rec, t) for t in TICKERS)
            if done:
                live_books.update(copy_books(adapter))
            return done

        collected, conn = run_feed(adapter, complete)  # the configured ws_url is wrong: bullet-public gives it
        assert "token=REPLAY-TOKEN&connectId=" in adapter.ws_url() and adapter.keepalive.ping_interval_s == 18.0
        requests = server.state.stats()["requests"]
    assert requests["/api/v1/bullet-public"] == 1 + 1 and requests["/api/v3/market/orderbook/level2"] == len(TICKERS)
    updates = collected.of(BookUpdate)
    for ticker in TICKERS:
        ticks = collected.of(Tick, ticker)
        assert [(t.trade_id, t.price, t.size, "sell" if t.buyer_is_maker else "buy") for t in ticks] == rec.trades[ticker]
        assert len({t.trade_id for t in ticks}) == len(ticks)
        assert collected.counts[TopOfBook, ticker] == rec.tops[ticker]
        ours = collected.of(BookUpdate, ticker)
        assert ours[0].snapshot and not any(u.snapshot for u in ours[1:])  # one sync, then deltas
        book, (live_book, applied) = rebuilt(updates, ticker), live_books[ticker]
        assert applied == len(rec.applied(ticker))  # every push past the snapshot, buffered ones included
        assert book.top(100_000) == rec.book(ticker).top(100_000) == live_book.top(100_000) and not book.is_crossed()
    assert not collected.of(StreamGap) and sum(conn.stats.malformed.values()) == 0
    deltas = sum(not u.snapshot for u in updates)  # unpaced, the pushes mostly arrive before the snapshots: buffered
    print(f"\nkucoin: {sum(len(v) for v in rec.trades.values())} trades, {len(updates)} book updates "
          f"({len(updates) - deltas} snapshots, {deltas} deltas; {sum(len(rec.applied(t)) for t in TICKERS)} pushes "
          f"applied), 0 gaps, {sum(rec.tops.values())} tops")


def test_a_dropped_push_is_one_gap_and_only_that_symbol_fetches_a_snapshot(data_dir: Path) -> None:
    rec = Recorded(data_dir)
    others = [t for t in TICKERS if t != FAULTED]
    # Paced (4x: 7.5 s) so that the fault, armed once the book applies pushes past its snapshot (the recorded
    # stream starts behind the recorded snapshot: earlier pushes are dropped as old anyway), meets one still to come
    server = ReplayServer(replay_for("KUCOIN"), data_dir, deterministic=False, speed=4.0)
    with server.running(port=free_port()) as base:
        adapter = KucoinLive(TICKERS, "ws://127.0.0.1:1/not-used", base)
        armed: list[bool] = []

        def complete(c: Collected, _conn: object) -> bool:
            if not armed and c.counts[BookUpdate, FAULTED] >= 2:  # synced and past the snapshot: drop its next push
                server.state.set_faults(drop_diffs=1, fault_symbol=symbol_of(FAULTED))
                armed.append(True)
            return FAULTED in c.gapped and all(
                c.counts[Tick, t] >= len(rec.trades[t]) and c.counts[TopOfBook, t] >= rec.tops[t] for t in TICKERS) \
                and all(synced_to_end(adapter, rec, t) for t in others)

        collected, conn = run_feed(adapter, complete)
        stats = server.state.stats()
    assert stats["dropped"] == 1
    (gap,) = collected.of(StreamGap)
    assert (gap.ticker, gap.how) == (FAULTED, "sequence_jump") and gap.first_missing == gap.last_seen + 1
    lost = [p for p in rec.pushes[FAULTED] if int(p["sequenceStart"]) == gap.first_missing]
    assert len(lost) == 1 and int(lost[0]["sequenceEnd"]) == gap.next_received - 1  # exactly the dropped push
    faulted = [e for e in collected.events if isinstance(e, BookUpdate | StreamGap) and e.ticker == FAULTED]
    assert faulted[0].snapshot and isinstance(faulted[-1], StreamGap)
    assert all(isinstance(e, BookUpdate) and not e.snapshot for e in faulted[1:-1])
    # A new snapshot was asked for the faulted symbol (the replay's recorded one is older than the stream now)
    assert stats["requests"]["/api/v3/market/orderbook/level2"] > len(TICKERS)
    after = collected.events[collected.events.index(gap):]
    for ticker in others:  # the other symbols kept streaming, every push applied
        assert any(isinstance(e, BookUpdate) and e.ticker == ticker for e in after)
        assert rebuilt(collected.of(BookUpdate), ticker).top(100_000) == rec.book(ticker).top(100_000)
    for ticker in TICKERS:
        assert [t.trade_id for t in collected.of(Tick, ticker)] == [t[0] for t in rec.trades[ticker]]
        assert collected.counts[TopOfBook, ticker] == rec.tops[ticker]
    assert sum(conn.stats.malformed.values()) == 0
    print(f"\nkucoin fault: 1 {symbol_of(FAULTED)} push dropped (sequence {gap.first_missing}..{gap.next_received - 1}), "
          f"1 gap, {stats['requests']['/api/v3/market/orderbook/level2'] - len(TICKERS)} new snapshot requests for it; "
          f"others {sum(collected.counts[BookUpdate, t] for t in others)} book updates, 0 gaps")


def test_keepalive_bad_frames_and_gaps_offline(data_dir: Path) -> None:
    rec = Recorded(data_dir)
    adapter = KucoinLive(TICKERS[:2], "ws://127.0.0.1:1/endpoint", "http://127.0.0.1:1")
    assert adapter.ws_url() == "ws://127.0.0.1:1/endpoint"  # no bullet-public answer: the configured URL
    assert [orjson.loads(f)["topic"] for f in adapter.subscribe_frames()] == [
        f"/market/{c}:EQZ-BTC,ANKR-BTC" for c in ("match", "ticker", "level2")]
    assert orjson.loads(adapter.keepalive.ping_frame or "")["type"] == "ping" and adapter.keepalive.ping_interval_s == 18
    assert adapter.is_pong('{"id":"marketlake","type":"pong"}') and not adapter.is_pong('{"type":"ack","id":"1"}')
    assert adapter.on_frame('{"id":"x","type":"welcome"}', 0) == adapter.on_frame('{"id":"1","type":"ack"}', 0) == []
    pushes = rec.applied(TICKERS[0])
    for push in pushes[:3]:  # buffered until the snapshot
        frame = {"type": "message", "topic": "/market/level2:EQZ-BTC", "subject": "trade.l2update", "data": push}
        assert adapter.on_frame(orjson.dumps(frame), 0) == []
    assert [(r.symbol, r.url) for r in adapter.snapshot_requests()] == [
        ("EQZ-BTC", "http://127.0.0.1:1/api/v3/market/orderbook/level2?symbol=EQZ-BTC")]
    body = {"code": "200000", "data": rec.snapshots[TICKERS[0]]}
    (sync,) = adapter.on_snapshot(adapter.snapshot_requests()[0], body, 0)
    assert isinstance(sync, BookUpdate) and sync.snapshot and sync.update_id == int(pushes[2]["sequenceEnd"])
    assert adapter.snapshot_requests() == []
    causes = []
    for frame in (replay_for("KUCOIN").malformed, "[1]", '{"id":"1","type":"error","code":404,"data":"topic not found"}',
                  '{"type":"message","topic":"/market/candles:EQZ-BTC_1min","subject":"trade.candles.add","data":{}}',
                  '{"type":"message","topic":"/market/match:EQZ-BTC","subject":"trade.l3match","data":{"price":"1"}}',
                  '{"type":"message","topic":"/market/level2:EQZ-BTC","subject":"trade.l2update","data":{"symbol":"EQZ-BTC"}}'):
        with pytest.raises(FrameParseError) as exc:
            adapter.on_frame(frame, 0)
        causes.append(exc.value.cause)
    assert causes == ["json", "schema", "subscription_error", "unknown_channel", "schema", "schema"]
    skipped = {"type": "message", "topic": "/market/level2:EQZ-BTC", "subject": "trade.l2update", "data": pushes[4]}
    (gap,) = adapter.on_frame(orjson.dumps(skipped), 5)  # pushes[3] never came: this symbol alone resyncs
    assert isinstance(gap, StreamGap) and (gap.ticker, gap.how, gap.last_seen, gap.next_received) == (
        TICKERS[0], "sequence_jump", int(pushes[2]["sequenceEnd"]), int(pushes[4]["sequenceStart"]))
    assert [r.symbol for r in adapter.snapshot_requests()] == ["EQZ-BTC"] and adapter.outgoing() == ()
    (sync,) = adapter.on_snapshot(adapter.snapshot_requests()[0], {"code": "200000", "data": {
        "sequence": pushes[3]["sequenceEnd"], "bids": [["0.00002383", "1"]], "asks": [["0.00002399", "2"]]}}, 6)
    assert isinstance(sync, BookUpdate) and sync.update_id == int(pushes[4]["sequenceEnd"])  # the buffered push applied
    gaps = adapter.on_disconnect(7)
    assert [(g.ticker, g.how, g.detected_at_ns) for g in gaps if isinstance(g, StreamGap)] == [
        (TICKERS[0], "reconnect", 7)] and len(gaps) == 1
    assert adapter.on_connect(8) == [] and not adapter.books.books
