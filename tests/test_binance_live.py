"""The Binance live feed end to end: the connection runner and adapter against the replay server's websocket.

Real websocket and REST on loopback, the real recordings (BTCUSDT and ETHUSDT of
2024-08-08): every recorded trade arrives exactly once with its exact strings,
the book built from our BookUpdates equals the exchange's book rebuilt from the
recording, and the faults behave: a dropped diff of one symbol resyncs only that
symbol and is reported as a gap; a disconnect leads to reconnect, resubscribe and
reported gaps; a 429 on the snapshot is honoured with its Retry-After; a
malformed frame is counted and skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestors.binance.depth_sync import SyncState
from ingestors.binance.live import BinanceLive
from ingestors.binance.recording import Recording, load_recordings
from ingestors.binance.replay import ReplayServer
from ingestors.book import OrderBook
from ingestors.live.adapter import LiveEvent, SnapshotRequest
from ingestors.live.connection import LiveConnection
from live_relay.messages import BookUpdate, StreamGap, Tick, TopOfBook
from marketlake.kafka_broker import free_port

from .live_fixtures import Collected
from .live_fixtures import run_feed as run_live_feed

TICKERS = ["BINANCE:BTC/USDT", "BINANCE:ETH/USDT"]


@pytest.fixture(scope="module")
def recordings(data_dir: Path) -> dict[str, Recording]:
    return load_recordings(data_dir)


@pytest.fixture
def server(data_dir: Path) -> Iterator[tuple[ReplayServer, str]]:
    srv = ReplayServer(data_dir, deterministic=True)
    with srv.running(port=free_port()) as base:
        yield srv, base


def run_feed(base: str, until: Callable[[Collected, LiveConnection], bool], **adapter_kw: object,
             ) -> tuple[Collected, LiveConnection]:  # fmt: skip
    adapter = BinanceLive(TICKERS, base.replace("http://", "ws://") + "/ws", base, **adapter_kw)  # type: ignore[arg-type]
    return run_live_feed(adapter, until)


def trades_complete(recs: dict[str, Recording]) -> Callable[[Collected, LiveConnection], bool]:
    """Every recorded trade and top of book has arrived."""
    want = {(kind, f"BINANCE:{s[:-4]}/USDT"): n for s, r in recs.items()
            for kind, n in ((Tick, len(r.trades)), (TopOfBook, sum(f.stream.endswith("@bookTicker") for f in r.frames)))}
    return lambda c, _conn: all(c.counts[key] >= n for key, n in want.items())


def book_from(updates: list[BookUpdate], ticker: str) -> OrderBook:
    book = OrderBook(ticker)
    for u in updates:
        levels = ([(lv.price, lv.size) for lv in u.bids], [(lv.price, lv.size) for lv in u.asks])
        if u.snapshot:
            book.apply_snapshot(*levels, u.update_id)
        else:
            book.apply_delta(*levels)
            book.update_id = u.update_id
    return book


def test_every_recorded_trade_arrives_exactly_and_the_books_equal_the_exchanges(
    server: tuple[ReplayServer, str], recordings: dict[str, Recording]
) -> None:
    _srv, base = server
    collected, conn = run_feed(base, trades_complete(recordings))
    for symbol, rec in recordings.items():
        ticker = f"BINANCE:{symbol[:-4]}/USDT"
        ticks = collected.of(Tick, ticker)
        assert [(t.trade_id, t.price, t.size, t.buyer_is_maker) for t in ticks] == [
            (str(d["t"]), d["p"], d["q"], d["m"]) for d in rec.trades]
        updates = collected.of(BookUpdate, ticker)
        assert updates and updates[0].snapshot and sum(u.snapshot for u in updates) == 1
        ours = book_from(updates, ticker)
        position = max(i for i, f in enumerate(rec.frames) if f.stream.endswith("@depth@100ms")) + 1
        theirs = rec.depth_at(position, 5000)
        assert ours.update_id == theirs["lastUpdateId"]
        assert [(lv.price, lv.size) for lv in ours.bids(20)] == [tuple(x) for x in theirs["bids"][:20]]
        assert [(lv.price, lv.size) for lv in ours.asks(20)] == [tuple(x) for x in theirs["asks"][:20]]
        tops = collected.of(TopOfBook, ticker)
        assert len(tops) == sum(f.stream.endswith("@bookTicker") for f in rec.frames)
        print(f"{ticker}: {len(ticks)} trades, {len(updates)} book updates, {len(tops)} tops, final book id {ours.update_id}")
    assert not collected.of(StreamGap) and conn.stats.gaps == 0
    assert sum(conn.stats.malformed.values()) == 0 and conn.stats.snapshots == 2


def test_a_dropped_diff_resyncs_only_its_symbol_and_is_reported(
    server: tuple[ReplayServer, str], recordings: dict[str, Recording]
) -> None:
    srv, base = server
    srv.state.set_faults(drop_depth_after=2000, drop_depth_count=1, fault_symbol="BTCUSDT")
    complete = trades_complete(recordings)
    collected, conn = run_feed(base, lambda c, conn: complete(c, conn) and "BINANCE:BTC/USDT" in c.resynced)
    [gap] = collected.of(StreamGap)
    assert (gap.ticker, gap.how) == ("BINANCE:BTC/USDT", "sequence_jump")
    assert gap.next_received > gap.first_missing == gap.last_seen + 1
    btc, eth = collected.of(BookUpdate, "BINANCE:BTC/USDT"), collected.of(BookUpdate, "BINANCE:ETH/USDT")
    assert sum(u.snapshot for u in btc) == 2 and sum(u.snapshot for u in eth) == 1  # only BTC resynced
    assert conn.stats.snapshots == 3 and conn.stats.gaps == 1
    eth_after_gap = [u for u in eth if u.receive_time_ns > gap.detected_at_ns]
    assert eth_after_gap, "ETH stopped streaming while BTC resynced"
    print(f"gap {gap.first_missing}..{gap.next_received - 1} on BTC; ETH kept {len(eth_after_gap)} updates meanwhile")


def test_a_disconnect_reconnects_resubscribes_and_reports_gaps(server: tuple[ReplayServer, str]) -> None:
    srv, base = server
    srv.state.set_faults(ws_close_after_frames=30000, ws_close_once=True)

    def reconnected_and_synced(c: Collected, conn: LiveConnection) -> bool:
        return conn.stats.connects >= 2 and c.resynced == set(TICKERS)

    collected, conn = run_feed(base, reconnected_and_synced)
    gaps = collected.of(StreamGap)
    assert {g.ticker for g in gaps} == set(TICKERS) and {g.how for g in gaps} == {"reconnect"}
    assert conn.stats.connects == 2 and conn.stats.reconnects >= 1
    print(f"reconnects {conn.stats.reconnects}, gaps {len(gaps)}, snapshots {conn.stats.snapshots}")


def test_a_429_on_the_snapshot_is_honoured_with_its_retry_after(server: tuple[ReplayServer, str]) -> None:
    srv, base = server
    srv.state.set_faults(fail_429=1, retry_after_seconds=2)
    started = time.monotonic()
    collected, conn = run_feed(base, lambda c, _conn: c.snapshots >= 2)
    depth_calls = [r for r in srv.state.log if r.path == "/api/v3/depth"]
    assert [r.status for r in depth_calls][:1] == [429]
    # The 429 answered one symbol's snapshot; the other's went through at once, the refused one after Retry-After.
    ok = sorted(r.monotonic - depth_calls[0].monotonic for r in depth_calls if r.status == 200)
    assert len(ok) == 2 and ok[0] < 2.0 <= ok[1], ok
    assert time.monotonic() - started >= 2.0 and conn.stats.snapshots == 2
    print(f"depth requests {[r.status for r in depth_calls]}; 200s at {[round(t, 2) for t in ok]}s after the 429 (Retry-After 2)")


def test_a_malformed_frame_is_counted_and_skipped(server: tuple[ReplayServer, str], recordings: dict[str, Recording]) -> None:
    srv, base = server
    srv.state.set_faults(malformed_frames=2)
    collected, conn = run_feed(base, trades_complete(recordings))
    assert conn.stats.malformed == {"not_combined": 2}
    assert len(collected.of(Tick)) == sum(len(r.trades) for r in recordings.values())
    print(f"malformed {dict(conn.stats.malformed)} skipped; {len(collected.of(Tick))} trades still all arrived")


def test_a_stream_that_does_not_continue_an_announced_snapshot_is_reported_as_a_gap(recordings: dict[str, Recording]) -> None:
    """Sans-IO, on recorded frames: the book is announced when its snapshot applies, before the bridging diff;
    if the next diff then starts past lastUpdateId + 1 (here: the bridging diff is lost), that is a gap and a resync."""
    rec = recordings["BTCUSDT"]
    adapter = BinanceLive(["BINANCE:BTC/USDT"], "ws://unused/ws", "http://unused")
    depth = [i for i, f in enumerate(rec.frames) if f.stream.endswith("@depth@100ms") and i > rec.snapshot_position]
    first, after = depth[0], depth[2]  # depth[1], the bridging diff, is never delivered
    assert adapter.on_frame(rec.frames[first].text, 1) == [] and [r.symbol for r in adapter.snapshot_requests()] == ["BTCUSDT"]
    [request] = adapter.snapshot_requests()
    [announced] = adapter.on_snapshot(request, rec.depth_at(first + 1, 5000), 2)  # the book after `first`: bridging
    assert isinstance(announced, BookUpdate) and announced.snapshot and not adapter.books.sync_for("BTCUSDT").is_live
    [gap] = adapter.on_frame(rec.frames[after].text, 3)
    assert isinstance(gap, StreamGap) and (gap.how, gap.last_seen, gap.first_missing) == (
        "sequence_jump", announced.update_id, announced.update_id + 1)
    assert gap.next_received > gap.first_missing and [r.symbol for r in adapter.snapshot_requests()] == ["BTCUSDT"]
    print(f"announced book {announced.update_id}, stream resumed at {gap.next_received}: gap reported, resync requested")


class _NeverSatisfied(BinanceLive):
    """Finds every BTCUSDT snapshot stale (as a lagging exchange cache would make it) and asks for another."""

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        if request.symbol == "BTCUSDT":
            self.rejected = getattr(self, "rejected", 0) + 1
            self.books.sync_for("BTCUSDT").state = SyncState.AWAITING_SNAPSHOT  # buffered diffs still waiting
            return []
        return super().on_snapshot(request, body, recv_ns)


def test_a_symbol_that_keeps_wanting_snapshots_gets_them_no_faster_than_the_minimum_interval(data_dir: Path) -> None:
    srv = ReplayServer(data_dir, deterministic=False, speed=30.0)  # paced: diffs keep coming for ~12 s
    with srv.running(port=free_port()) as base:
        adapter = _NeverSatisfied(["BINANCE:BTC/USDT"], base.replace("http://", "ws://") + "/ws", base)
        run_live_feed(adapter, lambda _c, _conn: getattr(adapter, "rejected", 0) >= 4)
    btc = [r.monotonic for r in srv.state.log if r.path == "/api/v3/depth" and r.status == 200]  # BTCUSDT's only
    spacing = [b - a for a, b in zip(btc, btc[1:], strict=False)]
    print(f"BTCUSDT snapshots every {[round(s, 2) for s in spacing]} s (minimum 0.5 s), {len(btc)} in all")
    assert len(btc) >= 4 and min(spacing) >= 0.45  # the server stamps on receipt: allow its clock's jitter
