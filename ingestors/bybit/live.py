"""Bybit v5 public websocket live adapter: publicTrade, orderbook.200 books (u continuity) and tickers tops.

https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook — one connection per category,
the category is the URL's last segment (wss://stream.bybit.com/v5/public/spot | linear | ...).
{"op":"subscribe","args":[...]} (at most 10 args a frame, Bybit's spot limit) for publicTrade,
orderbook.200 and tickers of the configured symbols ("BYBIT:BTC/USDT" -> BTCUSDT; a linear
perpetual "BYBIT:BTC/USDTPERP" -> BTCUSDT on the linear URL):
- publicTrade → Tick: id "i", price "p" and size "v" as sent, time "T" (ms); "S" is the taker's
  side, so "Sell" means the buyer was the maker;
- orderbook → ingestors/bybit/book.BybitBooks: BookUpdate snapshot=True on every snapshot (and
  restart, u = 1), one delta per applied delta (size "0" deletes; Bybit's deltas keep the book at
  the subscribed depth, so plain deltas are exact). A u jump is a StreamGap and only that topic
  resubscribes (`outgoing`: unsubscribe + subscribe, which makes Bybit send a new snapshot);
- tickers → TopOfBook whenever the merged bid1/ask1 state is complete (linear/inverse: spot
  tickers carry no best bid/ask, so a spot feed has no TopOfBook);
- keep-alive: {"op":"ping"} every 20 s; the answer is {"success":true,"ret_msg":"pong",...}
  (spot, linear) or {"op":"pong",...} (option).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import orjson

from ingestors.book import book_levels
from ingestors.bybit.book import BybitBook, BybitBooks, BybitParseError, Outcome
from ingestors.bybit.config import BOOK_DEPTHS, EXCHANGE, PERPETUAL_QUOTE_SUFFIX, category_for_url
from ingestors.gaps import GapEvent, stream_gap
from ingestors.live.adapter import FrameParseError, KeepAlive, LiveEvent, SnapshotRequest
from live_relay.messages import BookUpdate, Tick, TopOfBook
from live_relay.topics import parse_ticker

__all__ = ["BybitLive", "ws_symbol"]

BOOK_DEPTH = 200  # orderbook.200: every category but option (which gets its deepest, 100)
MAX_ARGS = 10  # args per subscribe frame (Bybit spot's limit)
_MS = 1_000_000


def ws_symbol(ticker: str) -> str:
    """"BYBIT:BTC/USDT" -> "BTCUSDT"; "BYBIT:BTC/USDTPERP" -> "BTCUSDT" (the linear perpetual)."""
    t = parse_ticker(ticker)
    return t.base + t.quote.removesuffix(PERPETUAL_QUOTE_SUFFIX)


def _instrument(ticker: str) -> dict[str, str]:
    t = parse_ticker(ticker)
    perpetual = t.quote.endswith(PERPETUAL_QUOTE_SUFFIX)
    return {"baseCoin": t.base, "quoteCoin": t.quote.removesuffix(PERPETUAL_QUOTE_SUFFIX),
            "contractType": "Perpetual" if perpetual else ""}  # fmt: skip


class BybitTrade(msgspec.Struct, gc=False):
    """One element of a publicTrade message's data (other fields ignored)."""

    T: int  # trade time, ms
    s: str  # symbol
    S: str  # taker side: "Sell" means the buyer was the maker
    v: str
    p: str
    i: str  # trade id


class _TradesMessage(msgspec.Struct, gc=False):
    data: list[BybitTrade]


_TRADES = msgspec.json.Decoder(_TradesMessage)
# A publicTrade message as Bybit writes it starts so; a frame that does not takes the general path, which reads
# trades too: the prefix only picks the fast path, it never decides what a frame means.
_TRADES_PREFIXES = ('{"topic":"publicTrade.', b'{"topic":"publicTrade.')
_PREFIX_LEN = len(_TRADES_PREFIXES[0])


class BybitLive:
    exchange = EXCHANGE

    def __init__(self, tickers: Sequence[str], ws_url: str, rest_url: str) -> None:
        self.url = ws_url
        self.category = category_for_url(ws_url)
        depths = BOOK_DEPTHS[self.category]
        self.depth = BOOK_DEPTH if BOOK_DEPTH in depths else max(depths)
        self.instruments = {ws_symbol(t): _instrument(t) for t in tickers}
        self.symbols = list(self.instruments)
        self.keepalive = KeepAlive(ping_interval_s=20.0, ping_frame=orjson.dumps({"op": "ping"}).decode(),
                                   pong_timeout_s=10.0, max_lifetime_s=None)  # fmt: skip
        self._gaps: list[GapEvent] = []  # recorded by the books (BybitBooks on_gap), sent with the frame's events
        self.books = BybitBooks(self.category, instruments=self.instruments, on_gap=self._gaps.append)
        self._outgoing: list[str] = []
        self._resubscribing: set[str] = set()  # orderbook topics asked for a new snapshot

    def ws_url(self) -> str:
        return self.url

    def _frames(self, op: str, topics: Sequence[str]) -> list[str]:
        return [orjson.dumps({"op": op, "args": list(topics[i:i + MAX_ARGS])}).decode()
                for i in range(0, len(topics), MAX_ARGS)]  # fmt: skip

    def subscribe_frames(self) -> Sequence[str]:
        topics = [f"{channel}.{s}" for channel in ("publicTrade", f"orderbook.{self.depth}", "tickers") for s in self.symbols]
        return self._frames("subscribe", topics)

    def on_connect(self, recv_ns: int) -> list[LiveEvent]:
        # every book starts from its snapshot
        self.books = BybitBooks(self.category, instruments=self.instruments, on_gap=self._gaps.append)
        self._outgoing.clear()
        self._resubscribing.clear()
        return []

    def on_disconnect(self, recv_ns: int) -> list[LiveEvent]:
        self.books.on_disconnect(recv_ns)
        return self._drain_gaps()

    def _drain_gaps(self) -> list[LiveEvent]:
        gaps: list[LiveEvent] = [stream_gap(g) for g in self._gaps]
        self._gaps.clear()
        return gaps

    def is_pong(self, data: str | bytes) -> bool:
        raw = data.encode() if isinstance(data, str) else data
        return b'"ret_msg":"pong"' in raw or b'"op":"pong"' in raw

    def outgoing(self) -> Sequence[str]:
        out, self._outgoing = self._outgoing, []
        return out

    def on_frame(self, data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        if data[:_PREFIX_LEN] in _TRADES_PREFIXES:  # the busiest channel, decoded typed in one pass (msgspec)
            try:
                return self._ticks(_TRADES.decode(data).data, recv_ns)
            except (msgspec.DecodeError, ValueError):
                pass  # not the documented shape: the general path below says what is wrong
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FrameParseError("json", str(exc)) from None
        if not isinstance(msg, dict):
            raise FrameParseError("schema", f"not a JSON object: {str(data)[:120]}")
        topic = msg.get("topic")
        if not isinstance(topic, str):
            if msg.get("success") is False:
                raise FrameParseError("subscription_error", f"{msg.get('op')}: {msg.get('ret_msg')}")
            return []  # subscribe/unsubscribe answers, pongs
        try:
            if topic.startswith("publicTrade."):
                return self._ticks(msgspec.convert(msg.get("data"), list[BybitTrade]), recv_ns)
            if topic.startswith(("orderbook.", "tickers.")):
                book, outcome = self.books.on_message(msg, recv_ns)
                return self._book(book, outcome, msg, recv_ns)
        except BybitParseError as exc:
            for lost in self.books.wanting_resubscribe():  # an unreadable book message: that book needs a new snapshot
                self._resubscribe(lost)
            raise FrameParseError("schema", str(exc), self._drain_gaps()) from None
        except (KeyError, IndexError, TypeError, ValueError) as exc:  # msgspec.ValidationError too
            raise FrameParseError("schema", f"{topic}: {type(exc).__name__} {exc}") from None
        raise FrameParseError("unknown_channel", topic)

    def _ticks(self, trades: list[BybitTrade], recv_ns: int) -> list[LiveEvent]:
        return [Tick(ticker=self.books.ticker_of(t.s), trade_id=t.i, price=t.p, size=t.v, buyer_is_maker=t.S == "Sell",
                     exchange_time_ns=t.T * _MS, receive_time_ns=recv_ns) for t in trades]  # fmt: skip

    def _book(self, book: BybitBook | None, outcome: Outcome, msg: dict[str, Any], recv_ns: int) -> list[LiveEvent]:
        if outcome is Outcome.TICKER and (t := self.books.ticker) is not None:
            return [TopOfBook(ticker=self.books.ticker_of(t.symbol), bid_price=t.bid_price, bid_size=t.bid_size,
                              ask_price=t.ask_price, ask_size=t.ask_size, exchange_time_ns=t.ts_ms * _MS,
                              receive_time_ns=recv_ns, sequence=t.cross_seq)]  # fmt: skip
        if book is None:
            return []
        if outcome is Outcome.GAP:
            self._resubscribe(f"orderbook.{book.depth}.{book.symbol}")
            return self._drain_gaps()
        if outcome not in (Outcome.SNAPSHOT, Outcome.RESTART, Outcome.APPLIED):
            return []  # IGNORED_OLD, SKIPPED (waiting for the snapshot)
        snapshot = outcome is not Outcome.APPLIED  # a snapshot goes out as the book kept (at most `depth` a side)
        if snapshot:
            self._resubscribing.discard(f"orderbook.{book.depth}.{book.symbol}")
        bids, asks = (book.book.bids(), book.book.asks()) if snapshot else (msg["data"]["b"], msg["data"]["a"])
        return [BookUpdate(ticker=book.ticker, snapshot=snapshot, bids=book_levels(bids), asks=book_levels(asks),
                           exchange_time_ns=int(msg.get("ts") or 0) * _MS, receive_time_ns=recv_ns,
                           update_id=book.book.update_id, sequence=book.cross_seq)]  # fmt: skip

    def _resubscribe(self, topic: str) -> None:
        if topic not in self._resubscribing:
            self._resubscribing.add(topic)
            self._outgoing += self._frames("unsubscribe", [topic]) + self._frames("subscribe", [topic])

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        return ()  # snapshots come in-stream

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        return []
