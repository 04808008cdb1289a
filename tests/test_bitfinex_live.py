"""The Bitfinex live feed against the Bitfinex replay server: every recorded trade, sequence-checked books, ticker tops.

Real websocket on loopback, the real BITFINEX recording (ws v2, 2021-04-17: 7 pairs on ticker, book P0 len 100
and trades, conf flags SEQ_ALL; no checksum frames were recorded). Expected values come from the recording read
here (numbers as their JSON text), independently of the server and the adapter.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingestors.bitfinex.book import book_checksum
from ingestors.bitfinex.live import BitfinexLive, symbol_of
from ingestors.book import OrderBook
from ingestors.live.adapter import FrameParseError
from ingestors.replay.exchanges import replay_for
from ingestors.replay.server import ReplayServer
from live_relay.messages import BookUpdate, StreamGap, Tick, TopOfBook
from marketlake.kafka_broker import free_port

from .live_fixtures import Collected, run_feed
from .replay_fixtures import load

TICKERS = ["BITFINEX:BFT/USD", "BITFINEX:IOT/ETH", "BITFINEX:DOG/USD", "BITFINEX:MNA/BTC", "BITFINEX:ODE/USD",
           "BITFINEX:TESTBTC/TESTUSD", "BITFINEX:SNG/USD"]
FAULTED = "BITFINEX:DOG/USD"
FAULTED_CONN = [FAULTED, "BITFINEX:ODE/USD", "BITFINEX:TESTBTC/TESTUSD"]  # connection A; the others on connection B
DEPTH = 100


def _text(raw: str) -> Any:  # noqa: ANN401 - JSON
    return json.loads(raw, parse_float=str, parse_int=str)


class Recorded:
    """Per ticker: trades (id, price, |amount|, taker side), ticker frames, book pushes; the frame order."""

    def __init__(self, data_dir: Path) -> None:
        names = {symbol_of(t): t for t in TICKERS}
        self.trades: dict[str, list[tuple[str, str, str, str]]] = {t: [] for t in TICKERS}
        self.tops: Counter[str] = Counter()
        self.books: dict[str, list[tuple[str, Any]]] = {t: [] for t in TICKERS}  # ("snapshot", rows) | ("level", row)
        self.frames: list[tuple[str, str, str]] = []  # (ticker, channel, kind) of every channel frame a client gets
        (conn,) = load(data_dir, "BITFINEX").conns
        msgs = [_text(raw) for raw in conn.recvs]  # Bitfinex can send a channel's heartbeat before naming it
        channels = {m["chanId"]: (m["channel"], names[m["symbol"]]) for m in msgs
                    if isinstance(m, dict) and m.get("event") == "subscribed"}
        for msg in msgs:
            if isinstance(msg, dict):
                continue
            (channel, ticker), payload = channels[msg[0]], msg[1]
            kind = "hb" if payload == "hb" else "te" if payload == "te" else "tu" if payload == "tu" else \
                "snapshot" if isinstance(payload, list) and payload and isinstance(payload[0], list) else "one"
            self.frames.append((ticker, channel, kind))
            if channel == "trades" and kind in ("snapshot", "te"):
                rows = payload if kind == "snapshot" else [msg[2]]
                self.trades[ticker] += [(r[0], r[3], r[2].lstrip("-"), "sell" if r[2].startswith("-") else "buy")
                                        for r in rows]
            elif channel == "ticker" and kind == "one":
                self.tops[ticker] += 1
            elif channel == "book" and kind in ("snapshot", "one"):
                self.books[ticker].append(("snapshot" if kind == "snapshot" else "level", payload))

    def book(self, ticker: str) -> OrderBook:
        book = OrderBook(ticker, depth_limit=DEPTH)
        for kind, body in self.books[ticker]:
            if kind == "snapshot":
                book.apply_snapshot([(p, a) for p, _c, a in body if not a.startswith("-")],
                                    [(p, a[1:]) for p, _c, a in body if a.startswith("-")])
            else:
                price, count, amount = body
                size = "0" if count == "0" else amount.lstrip("-")
                book.apply_delta(*(([], [(price, size)]) if amount.startswith("-") else ([(price, size)], [])))
        return book


def rebuilt(updates: list[BookUpdate], ticker: str) -> OrderBook:
    book = OrderBook(ticker, depth_limit=DEPTH)  # Bitfinex keeps `len` levels without deleting the one pushed out
    for u in (u for u in updates if u.ticker == ticker):
        levels = ([(x.price, x.size) for x in u.bids], [(x.price, x.size) for x in u.asks])
        (book.apply_snapshot if u.snapshot else book.apply_delta)(*levels)
    return book


def live(adapter: BitfinexLive) -> dict[str, OrderBook]:
    out = {}
    for b in adapter.books.books.values():
        if b.synced:
            out[b.ticker] = OrderBook(b.ticker)
            out[b.ticker].apply_snapshot(*b.book.top(1000))
    return out


def ws(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws/2"


def test_every_recorded_trade_top_and_book_update_arrives_in_sequence(data_dir: Path) -> None:
    rec = Recorded(data_dir)
    server = ReplayServer(replay_for("BITFINEX"), data_dir, deterministic=True)
    with server.running(port=free_port()) as base:
        adapter = BitfinexLive(TICKERS, ws(base), base)
        live_books: dict[str, OrderBook] = {}
        seq: list[int | None] = []

        def complete(c: Collected, _conn: object) -> bool:
            done = all(c.counts[Tick, t] >= len(rec.trades[t]) and c.counts[TopOfBook, t] >= rec.tops[t]
                       and c.counts[BookUpdate, t] >= len(rec.books[t]) for t in TICKERS)
            if done:
                live_books.update(live(adapter))
                seq.append(adapter.books.seq)
            return done

        collected, conn = run_feed(adapter, complete)
    updates = collected.of(BookUpdate)
    for ticker in TICKERS:
        ticks = collected.of(Tick, ticker)
        assert [(t.trade_id, t.price, t.size, "sell" if t.buyer_is_maker else "buy") for t in ticks] == rec.trades[ticker]
        assert len({t.trade_id for t in ticks}) == len(ticks) and all(t.exchange_time_ns > 0 for t in ticks)
        assert collected.counts[TopOfBook, ticker] == rec.tops[ticker]
        assert collected.counts[BookUpdate, ticker] == len(rec.books[ticker])
        assert [u.snapshot for u in collected.of(BookUpdate, ticker)] == [k == "snapshot" for k, _ in rec.books[ticker]]
        expected, book, ours = rec.book(ticker), rebuilt(updates, ticker), live_books[ticker]
        assert book.top(DEPTH) == expected.top(DEPTH) == ours.top(DEPTH) and not book.is_crossed()
    last = max(i for i, (_t, _c, kind) in enumerate(rec.frames, 1) if kind not in ("hb", "tu"))
    assert seq == [last]  # every channel frame up to the last with data, numbered 1, 2, ... without a jump
    assert not collected.of(StreamGap) and sum(conn.stats.malformed.values()) == 0
    levels = sum(len(v) for v in rec.books.values()) - len(TICKERS)
    print(f"\nbitfinex: {sum(len(v) for v in rec.trades.values())} trades, {len(updates)} book updates "
          f"({len(TICKERS)} snapshots, {levels} levels), {last} sequence numbers checked, 0 gaps, "
          f"{sum(rec.tops.values())} tops")


class SendsRecorded(BitfinexLive):
    """BitfinexLive keeping every frame it asked the runner to send."""

    def __init__(self, tickers: list[str], ws_url: str, rest_url: str) -> None:
        super().__init__(tickers, ws_url, rest_url)
        self.sent: list[dict] = []

    def outgoing(self) -> list[str]:
        out = list(super().outgoing())
        self.sent += [orjson.loads(f) for f in out]
        return out


def test_a_dropped_level_is_a_gap_for_every_book_of_its_connection_only(data_dir: Path) -> None:
    rec = Recorded(data_dir)
    others = [t for t in TICKERS if t not in FAULTED_CONN]
    # What connection A gets, numbered 1, 2, ...: the fault drops the first level of FAULTED (its number is skipped)
    frames_a = [f for f in rec.frames if f[0] in FAULTED_CONN]
    dropped = next(i for i, f in enumerate(frames_a, 1) if f == (FAULTED, "book", "one"))
    synced = {t for t, ch, kind in frames_a[:dropped] if ch == "book" and kind == "snapshot"}  # books live at the jump
    server = ReplayServer(replay_for("BITFINEX"), data_dir, deterministic=True)
    server.state.set_faults(drop_diffs=1, fault_symbol=symbol_of(FAULTED))
    with server.running(port=free_port()) as base:
        a, b = SendsRecorded(FAULTED_CONN, ws(base), base), BitfinexLive(others, ws(base), base)

        def done_a(c: Collected, _conn: object) -> bool:
            return bool(c.gapped) and len(a.sent) >= 2 and all(
                c.counts[Tick, t] >= len(rec.trades[t]) and c.counts[TopOfBook, t] >= rec.tops[t] for t in FAULTED_CONN)

        def done_b(c: Collected, _conn: object) -> bool:
            return all(c.counts[Tick, t] >= len(rec.trades[t]) and c.counts[TopOfBook, t] >= rec.tops[t]
                       and c.counts[BookUpdate, t] >= len(rec.books[t]) for t in others)

        with ThreadPoolExecutor(2) as pool:  # both connections stream at the same time
            fa, fb = pool.submit(run_feed, a, done_a), pool.submit(run_feed, b, done_b)
            (got_a, conn_a), (got_b, conn_b) = fa.result(), fb.result()
        assert server.state.stats()["dropped"] == 1
    gaps = got_a.of(StreamGap)
    assert sorted(g.ticker for g in gaps) == sorted(synced) and FAULTED in synced and len(synced) > 1
    assert {(g.how, g.last_seen, g.first_missing, g.next_received) for g in gaps} == \
        {("sequence_jump", dropped - 1, dropped, dropped + 1)}
    chans = {symbol_of(t): None for t in synced}
    assert sorted(s["symbol"] for s in a.sent if s["event"] == "subscribe") == sorted(chans)
    assert [s["event"] for s in a.sent] == ["unsubscribe", "subscribe"] * len(synced)
    assert all(s["channel"] == "book" and s["len"] == "100" for s in a.sent if s["event"] == "subscribe")
    for ticker in synced:  # the books' updates up to the dropped frame, then the gap
        evs = [e for e in got_a.events if isinstance(e, BookUpdate | StreamGap) and e.ticker == ticker]
        assert isinstance(evs[-1], StreamGap) and evs[0].snapshot and all(isinstance(e, BookUpdate) for e in evs[:-1])
    for ticker in FAULTED_CONN:  # trades and tops of connection A keep coming, the faulted pair's included
        assert [t.trade_id for t in got_a.of(Tick, ticker)] == [t[0] for t in rec.trades[ticker]]
        assert got_a.counts[TopOfBook, ticker] == rec.tops[ticker]
    assert not got_b.of(StreamGap)  # connection B: its own sequence, every book update applied
    for ticker in others:
        assert got_b.counts[BookUpdate, ticker] == len(rec.books[ticker])
        assert rebuilt(got_b.of(BookUpdate), ticker).top(DEPTH) == rec.book(ticker).top(DEPTH)
        assert [t.trade_id for t in got_b.of(Tick, ticker)] == [t[0] for t in rec.trades[ticker]]
    assert sum(conn_a.stats.malformed.values()) == sum(conn_b.stats.malformed.values()) == 0
    print(f"\nbitfinex fault: 1 {symbol_of(FAULTED)} level dropped (connection sequence {dropped}), gaps for "
          f"{sorted(synced)} on its connection, resubscribed; other connection {len(got_b.of(BookUpdate))} book "
          "updates, 0 gaps")


def test_keepalive_checksums_and_bad_frames_offline(data_dir: Path) -> None:
    rec = Recorded(data_dir)
    adapter = BitfinexLive(TICKERS[:2], "ws://127.0.0.1:1/ws/2", "http://127.0.0.1:1")
    frames = [orjson.loads(f) for f in adapter.subscribe_frames()]
    assert frames[0] == {"event": "conf", "flags": 65536 + 131072}
    assert frames[1:] == [{"event": "subscribe", "channel": c, "symbol": s, **({"prec": "P0", "freq": "F0", "len": "100"}
                                                                              if c == "book" else {})}
                          for c in ("ticker", "book", "trades") for s in ("tBFTUSD", "tIOTETH")]
    assert (orjson.loads(adapter.keepalive.ping_frame or "")["event"], adapter.keepalive.ping_interval_s) == ("ping", 20.0)
    assert adapter.is_pong('{"event":"pong","ts":1,"cid":1}') and not adapter.is_pong('[17,"hb",3]')
    assert adapter.on_frame('{"event":"info","version":2,"platform":{"status":1}}', 0) == []
    assert adapter.on_frame('{"event":"conf","status":"OK","flags":196608}', 0) == []
    for chan, symbol in ((17, "tBFTUSD"), (18, "tIOTETH")):
        ack = {"event": "subscribed", "channel": "book", "chanId": chan, "symbol": symbol, "len": "100"}
        assert adapter.on_frame(orjson.dumps(ack), 0) == []
    snap = rec.books[TICKERS[0]][0][1]
    assert [type(e) for e in adapter.on_frame(f'[17,{json.dumps(snap).replace(chr(34), "")},1]', 0)] == [BookUpdate]
    assert adapter.on_frame('[17,"hb",2]', 0) == []  # a heartbeat is a numbered frame: not a pong
    book = adapter.books.books["tBFTUSD"]
    assert adapter.on_frame(f'[17,"cs",{book_checksum(book.book)},3]', 0) == [] and adapter.outgoing() == []
    gap = adapter.on_frame('[17,"cs",12345,4]', 0)  # a checksum mismatch: that symbol alone resubscribes
    assert [(e.ticker, e.how) for e in gap if isinstance(e, StreamGap)] == [(TICKERS[0], "checksum_mismatch")] and \
        len(gap) == 1
    assert [orjson.loads(f) for f in adapter.outgoing()] == [
        {"event": "unsubscribe", "chanId": 17}, {"event": "subscribe", "channel": "book", "symbol": "tBFTUSD",
                                                 "prec": "P0", "freq": "F0", "len": "100"}]
    snap2 = rec.books[TICKERS[1]][0][1]
    assert [type(e) for e in adapter.on_frame(f'[18,{json.dumps(snap2).replace(chr(34), "")},5]', 0)] == [BookUpdate]
    causes = []
    for frame in (replay_for("BITFINEX").malformed, '{"event":"error","msg":"symbol: invalid","code":10300}', "[1]",
                  '[18,[1,2],6]', '[18,"cs","x",7]'):
        with pytest.raises(FrameParseError) as exc:
            adapter.on_frame(frame, 0)
        causes.append(exc.value.cause)
    assert causes == ["json", "subscription_error", "schema", "schema", "schema"]
    jump = adapter.on_frame('[18,"hb",9]', 0)  # 8 never came: every synced book of the connection
    assert [(e.ticker, e.how) for e in jump if isinstance(e, StreamGap)] == [(TICKERS[1], "sequence_jump")]
    assert [orjson.loads(f)["event"] for f in adapter.outgoing()] == ["unsubscribe", "subscribe"]
    adapter.on_frame(f'[18,{json.dumps(snap2).replace(chr(34), "")},10]', 0)
    gaps = adapter.on_disconnect(7)
    assert [(g.ticker, g.how, g.detected_at_ns) for g in gaps if isinstance(g, StreamGap)] == [
        (TICKERS[1], "reconnect", 7)] and len(gaps) == 1
    assert adapter.on_connect(8) == [] and not adapter.books.books and adapter.outgoing() == []
