"""Coinbase Advanced Trade live adapter: market_trades, level2 books (sequence_num), ticker and heartbeats.

https://docs.cdp.coinbase.com/advanced-trade/docs/ws-channels — one connection subscribed to
market_trades, ticker, level2 and heartbeats for the configured products ("COINBASE:BTC/USD" ->
"BTC-USD"):
- market_trades "update" events → Tick (the "snapshot" event replays trades from before the
  subscription: history, left to REST); `side` is the taker's, so SELL means the buyer was the maker;
- level2 → ingestors/coinbase/book.CoinbaseBooks: BookUpdate snapshot=True on each snapshot, then one
  delta per update event. A sequence_num jump loses every book of the connection (messages cannot be
  attributed to a product): StreamGaps, then those products resubscribe level2 (`outgoing`);
- ticker → TopOfBook; heartbeats keep channels open and prove liveness (websocket pings as well).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ingestors.coinbase.book import CoinbaseBooks, CoinbaseParseError, Outcome
from ingestors.coinbase.config import (
    BID_SIDE,
    EXCHANGE,
    HEARTBEATS_CHANNEL,
    L2_SUBSCRIBE_CHANNEL,
    TICKER_CHANNEL,
    ticker_for,
    time_ns,
)
from ingestors.gaps import GapEvent, stream_gap
from ingestors.live.adapter import FrameParseError, KeepAlive, LiveEvent, SnapshotRequest
from live_relay.messages import BookLevel, BookUpdate, Tick, TopOfBook
from live_relay.topics import parse_ticker

__all__ = ["CoinbaseLive", "product_id"]

CHANNELS = ("market_trades", TICKER_CHANNEL, L2_SUBSCRIBE_CHANNEL, HEARTBEATS_CHANNEL)


def product_id(ticker: str) -> str:
    t = parse_ticker(ticker)
    return f"{t.base}-{t.quote}"


class CoinbaseLive:
    exchange = EXCHANGE

    def __init__(self, tickers: Sequence[str], ws_url: str, rest_url: str) -> None:
        self.products = [product_id(t) for t in tickers]
        self.url = ws_url
        self.keepalive = KeepAlive(ping_interval_s=20.0, ping_frame=None, pong_timeout_s=10.0, max_lifetime_s=None)
        self._new_gaps: list[GapEvent] = []  # recorded by the books (on_gap), sent with the frame's events
        self.books = CoinbaseBooks(on_gap=self._new_gaps.append)
        self._outgoing: list[str] = []

    def ws_url(self) -> str:
        return self.url

    def _frame(self, kind: str, channel: str, products: Sequence[str]) -> str:
        return orjson.dumps({"type": kind, "product_ids": list(products), "channel": channel}).decode()

    def subscribe_frames(self) -> Sequence[str]:
        return [self._frame("subscribe", channel, self.products) for channel in CHANNELS]

    def on_connect(self, recv_ns: int) -> list[LiveEvent]:
        self._outgoing.clear()
        return []

    def on_disconnect(self, recv_ns: int) -> list[LiveEvent]:
        gaps: list[LiveEvent] = [stream_gap(g) for g in self.books.on_disconnect(recv_ns)]
        self._new_gaps.clear()  # returned here, not again with the next frame
        return gaps

    def is_pong(self, data: str | bytes) -> bool:
        return False

    def outgoing(self) -> Sequence[str]:
        out, self._outgoing = self._outgoing, []
        return out

    def on_frame(self, data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        try:
            books, outcome = self.books.on_frame(data, recv_ns)
        except CoinbaseParseError as exc:
            raise FrameParseError("schema", str(exc)) from None
        out: list[LiveEvent] = []
        if self._new_gaps:
            out += [stream_gap(g) for g in self._new_gaps]
            self._new_gaps.clear()
            wanting = self.books.wanting_resubscribe()
            self._outgoing += [self._frame("unsubscribe", L2_SUBSCRIBE_CHANNEL, wanting),
                           self._frame("subscribe", L2_SUBSCRIBE_CHANNEL, wanting)]
        if outcome is Outcome.TICKER:
            out += [TopOfBook(ticker=ticker_for(t.product_id), bid_price=t.bid_price, bid_size=t.bid_size,
                              ask_price=t.ask_price, ask_size=t.ask_size, exchange_time_ns=t.time_ns,
                              receive_time_ns=recv_ns) for t in self.books.tickers]  # fmt: skip
        elif outcome in (Outcome.SNAPSHOT, Outcome.APPLIED) or books:
            out += self._book_updates(self.books.message, recv_ns)
        elif outcome is Outcome.NOT_BOOK and isinstance(self.books.message, dict):
            out += self._trades(self.books.message, recv_ns)
        return out

    def _book_updates(self, msg: dict[str, Any], recv_ns: int) -> list[LiveEvent]:
        out: list[LiveEvent] = []
        for event in msg["events"]:
            book = self.books.books.get(str(event["product_id"]))
            if book is None or not book.synced:
                continue
            bids = tuple(BookLevel(u["price_level"], u["new_quantity"]) for u in event["updates"] if u["side"] == BID_SIDE)
            asks = tuple(BookLevel(u["price_level"], u["new_quantity"]) for u in event["updates"] if u["side"] != BID_SIDE)
            out.append(BookUpdate(ticker=book.ticker, snapshot=event["type"] == "snapshot", bids=bids, asks=asks,
                                  exchange_time_ns=book.last_event_ns, receive_time_ns=recv_ns,
                                  update_id=int(msg["sequence_num"])))  # fmt: skip
        return out

    def _trades(self, msg: dict[str, Any], recv_ns: int) -> list[LiveEvent]:
        if msg.get("channel") != "market_trades":
            return []
        try:
            return [Tick(ticker=ticker_for(t["product_id"]), trade_id=str(t["trade_id"]), price=t["price"], size=t["size"],
                         buyer_is_maker=t["side"] == "SELL", exchange_time_ns=time_ns(t["time"]), receive_time_ns=recv_ns)
                    for e in msg["events"] if e.get("type") == "update" for t in e["trades"]]  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameParseError("schema", f"market_trades: {type(exc).__name__} {exc}") from None

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        return ()

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        return []
