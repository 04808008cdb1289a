"""Kraken websocket v1 live adapter: trades, CRC32-verified L2 books and the ticker's best bid/ask.

https://docs.kraken.com/api/docs/websocket-v1/ — one connection, three subscriptions
(trade, ticker, book-N) for the configured pairs (XBT is Kraken's BTC):
- trade [chanID, [[price, volume, time, side, type, misc], ...], "trade", pair] → Tick. v1 trades carry
  no id: the id is "<time>-<index in the message>", unique and stable for a replayed message;
- book snapshots/updates → ingestors/kraken/book.KrakenBooks (checksum after every update). A snapshot
  goes out as a BookUpdate snapshot of the whole book, each verified update as a delta: its levels as
  Kraken sent them, then a size-0 level for each level the subscribed depth pushed out (Kraken truncates
  without saying so). A checksum mismatch is a StreamGap, and only that pair resubscribes (`outgoing`);
- ticker {"a": [price, whole lot volume, lot volume], "b": [...]} → TopOfBook;
- keep-alive: {"event":"ping"} every 20 s, {"event":"pong"} and heartbeats keep the connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ingestors.book import book_levels
from ingestors.gaps import GapEvent, GapHow, stream_gap
from ingestors.kraken.book import KrakenBooks, KrakenParseError, Outcome
from ingestors.kraken.config import ASSET_ALIASES, EXCHANGE, ticker_for
from ingestors.live.adapter import FrameParseError, KeepAlive, LiveEvent, SnapshotRequest
from live_relay.messages import BookLevel, BookUpdate, Tick, TopOfBook
from live_relay.topics import parse_ticker

__all__ = ["KrakenLive", "ws_pair"]

BOOK_DEPTH = 1000
_KRAKEN_NAME = {v: k for k, v in ASSET_ALIASES.items()}


def ws_pair(ticker: str) -> str:
    """"KRAKEN:BTC/CHF" -> "XBT/CHF" (Kraken's websocket pair name)."""
    t = parse_ticker(ticker)
    return f"{_KRAKEN_NAME.get(t.base, t.base)}/{_KRAKEN_NAME.get(t.quote, t.quote)}"


def _ns(kraken_time: str) -> int:
    seconds, _, fraction = kraken_time.partition(".")
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])


class KrakenLive:
    exchange = EXCHANGE

    def __init__(self, tickers: Sequence[str], ws_url: str, rest_url: str) -> None:
        self.pairs = [ws_pair(t) for t in tickers]
        self.url = ws_url
        self.keepalive = KeepAlive(ping_interval_s=20.0, ping_frame=orjson.dumps({"event": "ping"}).decode(),
                                   pong_timeout_s=10.0, max_lifetime_s=None)  # fmt: skip
        self.books = KrakenBooks()
        self._outgoing: list[str] = []

    def ws_url(self) -> str:
        return self.url

    def _subscribe(self, pairs: Sequence[str], name: str, event: str = "subscribe") -> str:
        sub: dict[str, Any] = {"name": name} if name != "book" else {"name": "book", "depth": BOOK_DEPTH}
        return orjson.dumps({"event": event, "pair": list(pairs), "subscription": sub}).decode()

    def subscribe_frames(self) -> Sequence[str]:
        return [self._subscribe(self.pairs, name) for name in ("trade", "ticker", "book")]

    def on_connect(self, recv_ns: int) -> list[LiveEvent]:
        self.books = KrakenBooks()  # a new connection starts every book from its snapshot
        self._outgoing.clear()
        return []

    def on_disconnect(self, recv_ns: int) -> list[LiveEvent]:
        return [stream_gap(GapEvent(EXCHANGE, kb.ticker, recv_ns, GapHow.RECONNECT, detail=f"{kb.pair}: connection lost"))
                for kb in self.books.books.values() if kb.synced]  # fmt: skip

    def is_pong(self, data: str | bytes) -> bool:
        return b'"event":"pong"' in (data.encode() if isinstance(data, str) else data)

    def outgoing(self) -> Sequence[str]:
        out, self._outgoing = self._outgoing, []
        return out

    def on_frame(self, data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FrameParseError("json", str(exc)) from None
        if isinstance(msg, dict):
            if msg.get("event") == "subscriptionStatus" and msg.get("status") == "error":
                raise FrameParseError("subscription_error", str(msg.get("errorMessage")))
            return []  # systemStatus, subscriptionStatus, heartbeat
        if not isinstance(msg, list) or len(msg) < 4 or not isinstance(msg[-2], str):
            raise FrameParseError("schema", f"not a channel message: {str(data)[:120]}")
        channel, pair = msg[-2], msg[-1]
        try:
            if channel == "trade":
                ticker = ticker_for(pair)
                return [Tick(ticker=ticker, trade_id=f"{t[2]}-{i}", price=t[0], size=t[1], buyer_is_maker=t[3] == "s",
                             exchange_time_ns=_ns(t[2]), receive_time_ns=recv_ns) for i, t in enumerate(msg[1])]  # fmt: skip
            if channel == "ticker":
                d = msg[1]
                return [TopOfBook(ticker=ticker_for(pair), bid_price=d["b"][0], bid_size=d["b"][2], ask_price=d["a"][0],
                                  ask_size=d["a"][2], receive_time_ns=recv_ns)]  # fmt: skip
            if channel.startswith("book"):
                return self._book(msg, recv_ns)
        except KrakenParseError as exc:
            raise FrameParseError("schema", str(exc)) from None
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise FrameParseError("schema", f"{channel} {pair}: {type(exc).__name__} {exc}") from None
        raise FrameParseError("unknown_channel", channel)

    def _book(self, msg: list[Any], recv_ns: int) -> list[LiveEvent]:
        kb, outcome = self.books.on_message(msg, recv_ns)
        if kb is None:
            return []
        if outcome is Outcome.CHECKSUM_FAILED:
            self._outgoing += [self._subscribe([kb.pair], "book", "unsubscribe"), self._subscribe([kb.pair], "book")]
            return [stream_gap(kb.gaps[-1])]
        if outcome is Outcome.SNAPSHOT:
            bids, asks = kb.book.top(kb.book.depth_limit or BOOK_DEPTH)
            return [BookUpdate(ticker=kb.ticker, snapshot=True, bids=book_levels(bids), asks=book_levels(asks),
                               receive_time_ns=recv_ns, update_id=kb.stats.updates_applied)]  # fmt: skip
        if outcome is Outcome.APPLIED:
            # The levels as Kraken sent them, then the ones the subscribed depth pushed out (Kraken drops them
            # without a message): applied in order, a subscriber's book stays equal to ours.
            cut_bids, cut_asks = kb.book.truncated()
            payloads = msg[1:-2]
            set_bids = [BookLevel(lv[0], lv[1]) for p in payloads for lv in p.get("b", ())]
            set_asks = [BookLevel(lv[0], lv[1]) for p in payloads for lv in p.get("a", ())]
            if cut_bids or cut_asks:
                set_bids += [BookLevel(lv.price, "0") for lv in cut_bids]
                set_asks += [BookLevel(lv.price, "0") for lv in cut_asks]
            return [BookUpdate(ticker=kb.ticker, snapshot=False, bids=tuple(set_bids), asks=tuple(set_asks),
                               receive_time_ns=recv_ns, update_id=kb.stats.updates_applied)]  # fmt: skip
        return []

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        return ()  # snapshots come in-stream

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        return []
