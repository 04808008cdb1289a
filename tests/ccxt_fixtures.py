"""ccxt, a widely used independent implementation, pointed at our Coinbase, Kraken, OKX and Bybit replay servers:
what the comparison tests (tests/test_ccxt_<exchange>.py) share.

The pattern of test_ccxt_binance.py for the recorded-session replay servers (ingestors/replay/):
ccxt's REST URLs (exchange.urls["api"]) and ccxt.pro's websocket URLs point at a replay server
(deterministic: each connection replays from the first recorded frame), and what ccxt gets is
compared with what our own code gets from the same server:

- REST: ccxt's fetch_trades / fetch_ohlcv over the recording's window equal our REST client's
  trades (ids, times, prices, sizes, sides) and candles;
- websocket: ccxt.pro's watch_trades receives the trades our live adapter emits (ids, prices,
  sizes), and watch_order_book (ccxt's own snapshot + delta handling of the channel)
  ends at the book built from our adapter's BookUpdates, compared level by level.

Markets: ccxt calls load_markets first. Where the replay server serves the recorded
instruments answer ccxt's own fetch_markets parses it; what the recording lacks (Coinbase's
v2 currencies, Kraken's Assets, Bybit's PreLaunch instruments list) is left out and the
parsed markets are given to each ccxt instance with set_markets.

Kraken: REST here; ccxt.pro 4.5 speaks Kraken's websocket v2 and the recording is v1, so its
websocket comparison runs against the replay server's /v2 (the recording re-encoded) in
tests/test_kraken_v2_ccxt.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ingestors.book import OrderBook
from ingestors.replay.exchanges import replay_for
from ingestors.replay.server import ReplayServer
from live_relay.messages import BookUpdate, Tick
from marketlake.kafka_broker import free_port

from .history_recorded import RecTrade

Row = tuple[Any, ...]




@contextlib.contextmanager
def replay_server(exchange: str, data_dir: Path) -> Iterator[str]:
    with ReplayServer(replay_for(exchange), data_dir, deterministic=True).running(port=free_port()) as base:
        yield base


def ws(base: str) -> str:
    return base.replace("http://", "ws://")


def in_order(rows: list[Row]) -> list[Row]:
    """Trade rows by (time, id): the order of same-millisecond trades is not compared (a Coinbase frame lists its
    trades newest first, Bybit's ids are UUIDs, ccxt re-sorts each answer by time)."""
    return sorted(rows, key=lambda r: (r[1], int(r[0]) if r[0].isdigit() else 0, r[0]))


def ccxt_trade_rows(trades: list[dict[str, Any]]) -> list[Row]:
    """(id, ms, price, amount, side) of ccxt trades."""
    return in_order([(str(t["id"]), t["timestamp"], t["price"], t["amount"], t["side"]) for t in trades])


def our_trade_rows(ticks: list[Tick]) -> list[Row]:
    return in_order([(t.trade_id, t.exchange_time_ns // 1_000_000, float(t.price), float(t.size),
                      "sell" if t.buyer_is_maker else "buy") for t in ticks])


def window_us(trades: list[RecTrade]) -> tuple[int, int]:
    """[first trade, last trade + 1 ms) of the recording, in µs."""
    return trades[0].ts_ns // 1000, trades[-1].ts_ns // 1000 + 1000


def book_rows(book: OrderBook) -> tuple[list[list[float]], list[list[float]]]:
    bids, asks = book.bids(), book.asks()
    return [[float(p), float(s)] for p, s in bids], [[float(p), float(s)] for p, s in asks]


def published_book(updates: list[BookUpdate]) -> OrderBook:
    """The book a subscriber of our adapter builds from its BookUpdates."""
    book = OrderBook("")
    for u in updates:
        levels = ([(x.price, x.size) for x in u.bids], [(x.price, x.size) for x in u.asks])
        (book.apply_snapshot if u.snapshot else book.apply_delta)(*levels)
    return book


async def until(deadline_s: float, done: Callable[[], bool], step: Callable[[], Any]) -> None:
    """Await `step()` (a ccxt.pro watch) until done() or the deadline; a quiet second is not an error."""
    deadline = time.monotonic() + deadline_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("ccxt.pro did not get the whole replay before the deadline")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(step(), timeout=1.0)


def pro_options() -> dict[str, Any]:
    return {"options": {"tradesLimit": 100_000}}  # keep every replayed trade in ccxt's cache


def assert_books_equal(name: str, theirs: dict[str, Any], ours: OrderBook) -> None:
    bids, asks = book_rows(ours)
    print(f"{name}: comparing {len(bids)} bid + {len(asks)} ask levels (the whole book); ccxt has "
          f"{len(theirs['bids'])} + {len(theirs['asks'])}")
    assert bids and asks
    assert (theirs["bids"], theirs["asks"]) == (bids, asks)
