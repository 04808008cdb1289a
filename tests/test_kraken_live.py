"""The Kraken live feed against the Kraken replay server: every recorded trade, checksum-verified books, tops.

Real websocket on loopback, the real KRAKEN recording (websocket v1, 2021-04-17).
Expected counts come from the recording read here, independently of the server.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson

from ingestors.book import OrderBook
from ingestors.kraken.config import ticker_for
from ingestors.kraken.live import KrakenLive, ws_pair
from ingestors.replay.exchanges import replay_for
from ingestors.replay.server import ReplayServer
from live_relay.messages import BookUpdate, StreamGap, Tick, TopOfBook
from marketlake.kafka_broker import free_port

from .live_fixtures import Collected, run_feed
from .replay_fixtures import load

TICKERS = ["KRAKEN:BTC/CHF", "KRAKEN:ETH/CHF", "KRAKEN:XMR/USD"]


def recorded(data_dir: Path) -> tuple[dict[str, list[tuple[str, str]]], Counter[str], int]:
    """(trades per ticker as (price, volume), ticker frames per ticker, book frames) of the recorded pairs."""
    pairs = {ws_pair(t) for t in TICKERS}
    trades: dict[str, list[tuple[str, str]]] = {t: [] for t in TICKERS}
    tops: Counter[str] = Counter()
    books = 0
    for conn in load(data_dir, "KRAKEN").conns:
        for frame in conn.recvs:
            msg = orjson.loads(frame)
            if not isinstance(msg, list) or msg[-1] not in pairs:
                continue
            if msg[-2] == "trade":
                trades[ticker_for(msg[-1])] += [(t[0], t[1]) for t in msg[1]]
            elif msg[-2] == "ticker":
                tops[ticker_for(msg[-1])] += 1
            elif msg[-2].startswith("book"):
                books += 1
    return trades, tops, books


def test_every_recorded_trade_arrives_and_every_book_update_passes_its_checksum(data_dir: Path) -> None:
    trades, tops, books = recorded(data_dir)
    server = ReplayServer(replay_for("KRAKEN"), data_dir, deterministic=True)
    with server.running(port=free_port()) as base:
        adapter = KrakenLive(TICKERS, base.replace("http://", "ws://") + "/", base)

        def complete(c: Collected, _conn: object) -> bool:
            return all(c.counts[Tick, t] >= len(trades[t]) and c.counts[TopOfBook, t] >= tops[t] for t in TICKERS) \
                and sum(n for (k, _), n in c.counts.items() if k is BookUpdate) >= books

        collected, conn = run_feed(adapter, complete)
        got = collected.events
    for ticker in TICKERS:
        ticks = [e for e in got if isinstance(e, Tick) and e.ticker == ticker]
        assert [(t.price, t.size) for t in ticks] == trades[ticker]
        assert len({t.trade_id for t in ticks}) == len(ticks)
    kb = adapter.books.books
    checked = sum(b.stats.checksum_checked for b in kb.values())
    failures = sum(b.stats.checksum_failures for b in kb.values())
    assert checked > 0 and failures == 0 and not [e for e in got if isinstance(e, StreamGap)]
    assert all(not b.book.is_crossed() for b in kb.values())
    assert sum(conn.stats.malformed.values()) == 0
    # A subscriber applying the published BookUpdates (a snapshot, then deltas that include the levels the
    # subscribed depth pushed out) holds exactly the adapter's checksum-verified books, every level.
    mirrored: dict[str, OrderBook] = {}
    deltas = 0
    for e in got:
        if isinstance(e, BookUpdate):
            bids, asks = [(lv.price, lv.size) for lv in e.bids], [(lv.price, lv.size) for lv in e.asks]
            if e.snapshot:
                mirrored[e.ticker] = OrderBook(e.ticker)
                mirrored[e.ticker].apply_snapshot(bids, asks)
            else:
                deltas += 1
                mirrored[e.ticker].apply_delta(bids, asks)
    for b in kb.values():
        assert (mirrored[b.ticker].bids(), mirrored[b.ticker].asks()) == (b.book.bids(), b.book.asks()), b.ticker
    print(f"kraken: {sum(len(v) for v in trades.values())} trades, {books} book frames, {checked} checksums checked, "
          f"0 failures, {sum(tops.values())} tops; {deltas} published deltas rebuild all {len(kb)} books exactly")


def test_a_dropped_update_fails_its_pairs_checksum_and_only_that_pair_resubscribes(data_dir: Path) -> None:
    trades, tops, _books = recorded(data_dir)
    faulted, others = "KRAKEN:XMR/USD", ["KRAKEN:BTC/CHF", "KRAKEN:ETH/CHF"]
    server = ReplayServer(replay_for("KRAKEN"), data_dir, deterministic=True)
    server.state.set_faults(drop_diffs=1, fault_symbol=ws_pair(faulted))
    with server.running(port=free_port()) as base:
        adapter = KrakenLive(TICKERS, base.replace("http://", "ws://") + "/", base)
        sent: list[dict] = []

        def complete(c: Collected, _conn: object) -> bool:
            sent.extend(orjson.loads(f) for f in adapter.outgoing())  # what the runner would send now
            return all(c.counts[Tick, t] >= len(trades[t]) and c.counts[TopOfBook, t] >= tops[t] for t in TICKERS) \
                and faulted in c.gapped

        collected, conn = run_feed(adapter, complete)
        assert server.state.stats()["dropped"] == 1
    gaps = collected.of(StreamGap)
    assert [(g.ticker, g.how) for g in gaps] == [(faulted, "checksum_mismatch")]
    sub = {"name": "book", "depth": 1000}
    assert [(m["event"], m["pair"], m["subscription"]) for m in sent] == [
        ("unsubscribe", [ws_pair(faulted)], sub), ("subscribe", [ws_pair(faulted)], sub)]
    kb = adapter.books.books
    for ticker in others:  # every update of the other pairs applied and checked
        book = next(b for b in kb.values() if b.ticker == ticker)
        assert book.synced and book.stats.checksum_failures == 0 and book.stats.checksum_checked > 0
    assert sum(b.stats.checksum_failures for b in kb.values()) == 1 and sum(conn.stats.malformed.values()) == 0
    print(f"kraken fault: 1 {ws_pair(faulted)} update dropped -> checksum mismatch, only {ws_pair(faulted)} "
          f"resubscribed; others {[next(b for b in kb.values() if b.ticker == t).stats.checksum_checked for t in others]} "
          f"checksums passed")
