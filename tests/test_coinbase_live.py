"""The Coinbase Advanced Trade live feed against the Coinbase replay server: trades, level2 books, ticker tops.

Real websocket on loopback, the real COINBASE recording (2026-08-09, BTC-USD and ETH-USD).
Expected values come from the recording read here, independently of the server and the adapter.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson

from ingestors.book import OrderBook
from ingestors.coinbase.live import CoinbaseLive
from ingestors.replay.exchanges import replay_for
from ingestors.replay.server import ReplayServer
from live_relay.messages import BookUpdate, StreamGap, Tick, TopOfBook
from marketlake.kafka_broker import free_port

from .live_fixtures import Collected, run_feed
from .replay_fixtures import load

TICKERS = ["COINBASE:BTC/USD", "COINBASE:ETH/USD"]


def recorded(data_dir: Path) -> tuple[dict[str, list[tuple[str, str, str]]], Counter[str], dict[str, OrderBook]]:
    """Live trades (id, price, size), ticker and level2 events (keys "top:T", "l2:T") per ticker, final books."""
    trades: dict[str, list[tuple[str, str, str]]] = {t: [] for t in TICKERS}
    events: Counter[str] = Counter()
    books = {t: OrderBook(t) for t in TICKERS}
    for conn in load(data_dir, "COINBASE").conns:
        for frame in conn.recvs:
            msg = orjson.loads(frame)
            for e in msg.get("events", []):
                if msg["channel"] == "market_trades" and e["type"] == "update":
                    for t in e["trades"]:
                        trades["COINBASE:" + t["product_id"].replace("-", "/")].append((t["trade_id"], t["price"], t["size"]))
                elif msg["channel"] == "ticker":
                    for t in e["tickers"]:
                        events["top:COINBASE:" + t["product_id"].replace("-", "/")] += 1
                elif msg["channel"] == "l2_data":
                    book = books["COINBASE:" + e["product_id"].replace("-", "/")]
                    events[f"l2:{book.ticker}"] += 1
                    levels = ([(u["price_level"], u["new_quantity"]) for u in e["updates"] if u["side"] == "bid"],
                              [(u["price_level"], u["new_quantity"]) for u in e["updates"] if u["side"] == "offer"])
                    (book.apply_snapshot if e["type"] == "snapshot" else book.apply_delta)(*levels)
    return trades, events, books


def test_every_recorded_trade_and_top_arrives_and_the_books_equal_the_recorded_ones(data_dir: Path) -> None:
    trades, tops, expected_books = recorded(data_dir)
    server = ReplayServer(replay_for("COINBASE"), data_dir, deterministic=True)
    with server.running(port=free_port()) as base:
        adapter = CoinbaseLive(TICKERS, base.replace("http://", "ws://") + "/", base)

        def complete(c: Collected, _conn: object) -> bool:
            return all(c.counts[Tick, t] >= len(trades[t]) and c.counts[TopOfBook, t] >= tops[f"top:{t}"]
                       and c.counts[BookUpdate, t] >= tops[f"l2:{t}"] for t in TICKERS)

        collected, conn = run_feed(adapter, complete)
        got = collected.events
    for ticker in TICKERS:
        ticks = [e for e in got if isinstance(e, Tick) and e.ticker == ticker]
        assert [(t.trade_id, t.price, t.size) for t in ticks] == trades[ticker]
        book = OrderBook(ticker)
        for u in (e for e in got if isinstance(e, BookUpdate) and e.ticker == ticker):
            levels = ([(x.price, x.size) for x in u.bids], [(x.price, x.size) for x in u.asks])
            (book.apply_snapshot if u.snapshot else book.apply_delta)(*levels)
        assert book.bids(50) == expected_books[ticker].bids(50) and book.asks(50) == expected_books[ticker].asks(50)
        assert not book.is_crossed()
        updates = collected.counts[BookUpdate, ticker]
        print(f"{ticker}: {len(ticks)} trades, {updates} book updates, {tops['top:' + ticker]} tops; "
              f"best {book.best_bid()} / {book.best_ask()}")
    assert not [e for e in got if isinstance(e, StreamGap)] and sum(conn.stats.malformed.values()) == 0


def test_a_dropped_level2_message_is_a_sequence_gap_for_the_books_of_that_connection_and_they_resubscribe(
    data_dir: Path,
) -> None:
    """Advanced Trade numbers every message of a connection in one sequence_num: a lost message could have been any
    product's, so every synced book of the connection is a gap (sequence_jump) and resubscribes level2."""
    trades, _events, _books = recorded(data_dir)
    server = ReplayServer(replay_for("COINBASE"), data_dir, deterministic=True)
    server.state.set_faults(drop_diffs=1, fault_symbol="BTC-USD")
    with server.running(port=free_port()) as base:
        adapter = CoinbaseLive(TICKERS, base.replace("http://", "ws://") + "/", base)
        sent: list[dict] = []

        def complete(c: Collected, _conn: object) -> bool:
            sent.extend(orjson.loads(f) for f in adapter.outgoing())  # what the runner would send now
            return all(c.counts[Tick, t] >= len(trades[t]) for t in TICKERS) and bool(c.gapped)

        collected, conn = run_feed(adapter, complete)
        assert server.state.stats()["dropped"] == 1
    gaps = collected.of(StreamGap)
    assert {g.how for g in gaps} == {"sequence_jump"} and len({g.ticker for g in gaps}) == len(gaps) >= 1
    assert all(g.next_received == g.first_missing + 1 for g in gaps)  # exactly one message lost
    resubscribed = {p for m in sent for p in m["product_ids"] if m["channel"] == "level2"}
    assert resubscribed == {g.ticker.split(":")[1].replace("/", "-") for g in gaps}
    assert [m["type"] for m in sent] == ["unsubscribe", "subscribe"]
    for ticker in TICKERS:  # trades keep flowing: no trade lost with the book message
        assert [t.trade_id for t in collected.of(Tick, ticker)] == [t[0] for t in trades[ticker]]
    assert sum(conn.stats.malformed.values()) == 0
    print(f"coinbase fault: 1 BTC-USD level2 message dropped -> {len(gaps)} sequence gap(s) "
          f"{sorted(g.ticker for g in gaps)}, level2 resubscribed for {sorted(resubscribed)}")
