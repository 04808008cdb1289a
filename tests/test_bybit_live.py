"""The Bybit live feed against the Bybit replay server: every recorded trade, gap-free books, ticker tops, a dropped delta.

Real websocket on loopback, the real BYBIT recording (v5 public spot and linear, orderbook.200).
Expected values come from the recording read here, independently of the server and the adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from ingestors.book import OrderBook
from ingestors.bybit.live import BybitLive, ws_symbol
from ingestors.gaps import GapHow
from ingestors.live.adapter import FrameParseError
from ingestors.replay.exchanges import replay_for
from ingestors.replay.server import ReplayServer
from live_relay.messages import BookUpdate, StreamGap, Tick, TopOfBook
from marketlake.kafka_broker import free_port

from .live_fixtures import Collected, run_feed
from .replay_fixtures import load

TICKERS = {"spot": ["BYBIT:BTC/USDT", "BYBIT:ETH/USDT"],
           "linear": ["BYBIT:BTC/USDTPERP", "BYBIT:ETH/USDTPERP", "BYBIT:SOL/USDTPERP", "BYBIT:DOGE/USDTPERP"]}
BBO = ("bid1Price", "bid1Size", "ask1Price", "ask1Size")


@dataclass
class Recorded:
    """One symbol on one category's recorded connection."""

    trades: list[tuple[str, str, str, bool]] = field(default_factory=list)  # (id, price, size, buyer is maker)
    tops: list[tuple[str, ...]] = field(default_factory=list)  # merged bid1/ask1 after each push that changed them
    snapshot_u: list[int] = field(default_factory=list)
    deltas: list[int] = field(default_factory=list)  # u of each delta
    book: OrderBook = field(default_factory=lambda: OrderBook(""))


def recorded(data_dir: Path, category: str, tickers: Sequence[str]) -> dict[str, Recorded]:
    out = {ws_symbol(t): Recorded() for t in tickers}
    merged: dict[str, dict[str, str]] = {}
    conn = next(c for c in load(data_dir, "BYBIT").conns if c.path == f"/v5/public/{category}")
    for frame in conn.recvs:
        msg = orjson.loads(frame)
        channel, _, symbol = str(msg.get("topic", "")).rpartition(".")
        if symbol not in out:
            continue
        r, data = out[symbol], msg["data"]
        if channel == "publicTrade":
            r.trades += [(t["i"], t["p"], t["v"], t["S"] == "Sell") for t in data]
        elif channel == "orderbook.200":
            if msg["type"] == "snapshot":
                r.snapshot_u.append(data["u"])
                r.book.apply_snapshot(data["b"], data["a"])
            else:
                r.deltas.append(data["u"])
                r.book.apply_delta(data["b"], data["a"])
        elif channel == "tickers":
            changed = {k: data[k] for k in BBO if k in data}  # a snapshot replaces, a delta changes some fields
            if msg["type"] == "snapshot" or symbol in merged:
                merged[symbol] = {**merged.get(symbol, {}), **changed} if msg["type"] == "delta" else changed
            top = merged.get(symbol, {})
            if changed and len(top) == len(BBO):
                r.tops.append(tuple(top[k] for k in BBO))
    return out


def published_book(updates: list[BookUpdate]) -> OrderBook:
    """The book a subscriber builds from the BookUpdates; never crossed after any of them."""
    book = OrderBook("")
    for u in updates:
        levels = ([(x.price, x.size) for x in u.bids], [(x.price, x.size) for x in u.asks])
        (book.apply_snapshot if u.snapshot else book.apply_delta)(*levels)
        assert not book.is_crossed(), u
    return book


@pytest.mark.parametrize("category", ["spot", "linear"])
def test_every_recorded_trade_top_and_book_update_arrives_without_a_gap(data_dir: Path, category: str) -> None:
    tickers = TICKERS[category]
    rec = recorded(data_dir, category, tickers)
    server = ReplayServer(replay_for("BYBIT"), data_dir, deterministic=True)
    with server.running(port=free_port()) as base:
        adapter = BybitLive(tickers, base.replace("http://", "ws://") + f"/v5/public/{category}", base)

        def complete(c: Collected, _conn: object) -> bool:
            return all(c.counts[Tick, t] >= len(r.trades) and c.counts[TopOfBook, t] >= len(r.tops)
                       and c.counts[BookUpdate, t] >= 1 + len(r.deltas) for t, r in zip(tickers, rec.values(), strict=True))

        collected, conn = run_feed(adapter, complete)
    assert not collected.of(StreamGap) and sum(conn.stats.malformed.values()) == 0
    for ticker, r in zip(tickers, rec.values(), strict=True):
        assert len(r.snapshot_u) == 1 and r.deltas == list(range(r.snapshot_u[0] + 1, r.snapshot_u[0] + 1 + len(r.deltas)))
        ticks = collected.of(Tick, ticker)
        assert [(t.trade_id, t.price, t.size, t.buyer_is_maker) for t in ticks] == r.trades
        assert len({t.trade_id for t in ticks}) == len(ticks)
        assert [(t.bid_price, t.bid_size, t.ask_price, t.ask_size) for t in collected.of(TopOfBook, ticker)] == r.tops
        updates = collected.of(BookUpdate, ticker)
        assert [u.snapshot for u in updates] == [True] + [False] * len(r.deltas)
        assert [u.update_id for u in updates] == r.snapshot_u + r.deltas
        book = published_book(updates)
        assert book.bids() == r.book.bids() and book.asks() == r.book.asks()
        stats = next(b.stats for b in adapter.books.books.values() if b.ticker == ticker)
        assert (stats.updates_applied, stats.skipped, stats.ignored_old) == (len(r.deltas), 0, 0)
        print(f"{ticker}: {len(ticks)} trades, {len(updates)} book updates ({len(r.deltas)} deltas), 0 gaps, "
              f"{len(r.tops)} tops; best {book.best_bid()} / {book.best_ask()}")


class RecordingBybitLive(BybitLive):
    """BybitLive remembering the frames the runner sent from `outgoing()` (the resubscribes)."""

    def __init__(self, tickers: Sequence[str], ws_url: str, rest_url: str) -> None:
        super().__init__(tickers, ws_url, rest_url)
        self.sent: list[str] = []

    def outgoing(self) -> Sequence[str]:
        out = super().outgoing()
        self.sent += out
        return out


def test_a_dropped_delta_is_one_gap_only_that_topic_resubscribes_and_malformed_frames_are_counted(data_dir: Path) -> None:
    tickers = TICKERS["spot"]
    btc, eth = tickers
    rec = recorded(data_dir, "spot", tickers)
    server = ReplayServer(replay_for("BYBIT"), data_dir, deterministic=True)
    server.state.set_faults(drop_diffs=1, fault_symbol="BTCUSDT", malformed_frames=2)  # the first BTCUSDT delta is lost
    with server.running(port=free_port()) as base:
        adapter = RecordingBybitLive(tickers, base.replace("http://", "ws://") + "/v5/public/spot", base)

        def complete(c: Collected, _conn: object) -> bool:  # (skipped BTC deltas emit nothing: not a condition)
            return all(c.counts[Tick, t] >= len(rec[ws_symbol(t)].trades) for t in tickers) \
                and c.counts[BookUpdate, eth] >= 1 + len(rec["ETHUSDT"].deltas)

        collected, conn = run_feed(adapter, complete)
        skipped = adapter.books.books["orderbook.200.BTCUSDT"].stats.skipped
    assert server.state.stats()["dropped"] == 1 and conn.stats.malformed == {"json": 2} and conn.stats.connects == 1
    u0 = rec["BTCUSDT"].snapshot_u[0]
    gaps = collected.of(StreamGap)
    assert [(g.ticker, g.how, g.last_seen, g.first_missing, g.next_received) for g in gaps] == \
        [(btc, GapHow.SEQUENCE_JUMP.value, u0, u0 + 1, u0 + 2)]
    assert [orjson.loads(f) for f in adapter.sent] == [{"op": "unsubscribe", "args": ["orderbook.200.BTCUSDT"]},
                                                       {"op": "subscribe", "args": ["orderbook.200.BTCUSDT"]}]
    assert [u.snapshot for u in collected.of(BookUpdate, btc)] == [True]  # nothing published while BTC is out of sync
    assert 0 < skipped <= len(rec["BTCUSDT"].deltas) - 2  # BTC deltas kept coming and waited for a snapshot
    eth_updates = collected.of(BookUpdate, eth)
    book = published_book(eth_updates)
    assert book.bids() == rec["ETHUSDT"].book.bids() and book.asks() == rec["ETHUSDT"].book.asks()
    gap_at = collected.events.index(gaps[0])
    assert any(isinstance(e, BookUpdate) and e.ticker == eth for e in collected.events[gap_at:]), "ETH stopped"
    for ticker in tickers:
        assert [(t.trade_id, t.price, t.size) for t in collected.of(Tick, ticker)] == \
            [r[:3] for r in rec[ws_symbol(ticker)].trades]
    print(f"bybit drop fault: 1 gap ({btc} u {u0} -> {u0 + 2}), resubscribed orderbook.200.BTCUSDT only, "
          f"{len(eth_updates)} {eth} book updates, {skipped} BTC deltas waited for a snapshot")


def test_subscriptions_are_chunked_pongs_recognised_and_a_refused_subscription_is_an_error() -> None:
    adapter = BybitLive([f"BYBIT:{b}/USDT" for b in ("BTC", "ETH", "SOL", "XRP")], "ws://127.0.0.1:1/v5/public/spot", "")
    frames = [orjson.loads(f) for f in adapter.subscribe_frames()]
    assert [len(f["args"]) for f in frames] == [10, 2] and {f["op"] for f in frames} == {"subscribe"}
    assert adapter.is_pong('{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}')
    assert adapter.is_pong('{"op":"pong","args":["1737000000000"],"conn_id":"c"}')
    assert adapter.on_frame('{"success":true,"ret_msg":"","conn_id":"c","op":"subscribe"}', 1) == []
    with pytest.raises(FrameParseError) as refused:
        adapter.on_frame('{"success":false,"ret_msg":"error:handler not found","conn_id":"c","op":"subscribe"}', 1)
    assert refused.value.cause == "subscription_error"


def test_trades_read_the_same_on_the_typed_fast_path_and_the_general_path(data_dir: Path) -> None:
    # publicTrade messages as Bybit writes them take the typed path; the same message with its keys in another order
    # takes the general path: both give the same Ticks, and a mistyped field is a schema error on either.
    adapter = BybitLive(TICKERS["spot"], "ws://127.0.0.1:1/v5/public/spot", "")
    conn = next(c for c in load(data_dir, "BYBIT").conns if c.path == "/v5/public/spot")
    frames = [f for f in conn.recvs if f.startswith('{"topic":"publicTrade.')]
    assert frames
    for text in frames:
        msg = orjson.loads(text)
        reordered = orjson.dumps({"data": msg["data"], "topic": msg["topic"], "ts": msg["ts"], "type": msg["type"]})
        fast, general = adapter.on_frame(text, 5), adapter.on_frame(reordered, 5)
        assert fast == general and [(t.trade_id, t.price, t.size, t.buyer_is_maker) for t in fast] == [
            (d["i"], d["p"], d["v"], d["S"] == "Sell") for d in msg["data"]]
    bad = '{"topic":"publicTrade.BTCUSDT","ts":1,"type":"snapshot","data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"1",' \
          '"p":65114.2,"i":"x"}]}'
    with pytest.raises(FrameParseError, match=r"Expected `str`, got `float` - at `\$\[0\].p`") as exc:
        adapter.on_frame(bad, 0)
    assert exc.value.cause == "schema"
    print(f"bybit: {len(frames)} spot trade messages equal on both paths")
