"""OKX v5 public websocket live adapter: trades, "books" (seqId/prevSeqId, CRC32 where sent) and tickers tops.

https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel — one connection,
one {"op":"subscribe","args":[...]} frame for trades, books and tickers of the configured instIds
("OKX:BTC/USDT" -> BTC-USDT, "OKX:UNI/USDPERP" -> UNI-USD-SWAP, "OKX:BTC/USD220527" -> BTC-USD-220527):
- trades → Tick: id tradeId, price px and size sz as sent, time ts (ms); side is the taker's, so
  "sell" means the buyer was the maker;
- books → ingestors/okx/book.OkxBooks: BookUpdate snapshot=True on every snapshot, then one delta
  per applied update (size "0" deletes; OKX's updates keep the book at 400 levels themselves, so
  plain deltas are exact). A prevSeqId break or checksum mismatch (checksum 0 = not provided) is a
  StreamGap and only that instId resubscribes its book (`outgoing`: unsubscribe + subscribe, after
  which OKX sends a new snapshot);
- tickers → TopOfBook (bidPx/bidSz/askPx/askSz);
- keep-alive: the text "ping" every 20 s (OKX closes a connection quiet for 30 s), answered "pong".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import orjson

from ingestors.book import book_levels
from ingestors.gaps import GapEvent, stream_gap
from ingestors.live.adapter import FrameParseError, KeepAlive, LiveEvent, SnapshotRequest
from ingestors.okx.book import OkxBook, OkxBooks, OkxParseError, Outcome
from ingestors.okx.config import (
    EXCHANGE,
    TICKER_CHANNEL,
    inst_id,
    ticker_for,
)
from live_relay.messages import BookUpdate, Tick, TopOfBook

__all__ = ["BOOK_CHANNEL", "OkxLive", "inst_id"]

BOOK_CHANNEL = "books"  # 400 levels, snapshot then updates; books-l2-tbt/books50-l2-tbt need a VIP login
TRADES_CHANNEL = "trades"
_MS = 1_000_000
# quote part of a project ticker: QUOTE, QUOTE + PERP (swap), QUOTE + YYMMDD (future), + STRIKE + C|P (option)


class OkxTrade(msgspec.Struct, gc=False):
    """One element of a trades push's data (other fields ignored)."""

    instId: str
    tradeId: str
    px: str
    sz: str
    side: str  # the taker's
    ts: str  # ms, as a string


class _TradesPush(msgspec.Struct, gc=False):
    data: list[OkxTrade]


_TRADES = msgspec.json.Decoder(_TradesPush)
# A trades push as OKX writes it starts so; a frame that does not (other key order, other channel) takes the general
# path, which reads trades too: the prefix only picks the fast path, it never decides what a frame means.
_TRADES_PREFIXES = ('{"arg":{"channel":"trades"', b'{"arg":{"channel":"trades"')
_PREFIX_LEN = len(_TRADES_PREFIXES[0])


class OkxLive:
    exchange = EXCHANGE

    def __init__(self, tickers: Sequence[str], ws_url: str, rest_url: str) -> None:
        self.inst_ids = [inst_id(t) for t in tickers]
        self.url = ws_url
        self.keepalive = KeepAlive(ping_interval_s=20.0, ping_frame="ping", pong_timeout_s=10.0, max_lifetime_s=None)
        self._gaps: list[GapEvent] = []  # recorded by the books (OkxBooks on_gap), sent with the frame's events
        self.books = OkxBooks(on_gap=self._gaps.append)
        self._outgoing: list[str] = []
        self._resubscribing: set[tuple[str, str]] = set()  # (channel, instId) asked for a new snapshot

    def ws_url(self) -> str:
        return self.url

    def _frame(self, op: str, args: Sequence[tuple[str, str]]) -> str:
        return orjson.dumps({"op": op, "args": [{"channel": c, "instId": i} for c, i in args]}).decode()

    def subscribe_frames(self) -> Sequence[str]:
        return [self._frame("subscribe", [(c, i) for c in (TRADES_CHANNEL, BOOK_CHANNEL, TICKER_CHANNEL)
                                          for i in self.inst_ids])]  # fmt: skip

    def on_connect(self, recv_ns: int) -> list[LiveEvent]:
        self.books = OkxBooks(on_gap=self._gaps.append)  # a new connection starts every book from its snapshot
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
        return data in ("pong", b"pong")

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
            raise FrameParseError("schema", f"not an OKX push or event: {str(data)[:120]}")
        if "event" in msg:
            if msg["event"] == "error":
                raise FrameParseError("subscription_error", f"{msg.get('code')} {msg.get('msg')}")
            return []  # subscribe / unsubscribe acks, notices
        arg = msg.get("arg")
        channel = arg.get("channel") if isinstance(arg, dict) else None
        if channel == TRADES_CHANNEL:
            try:
                return self._ticks(msgspec.convert(msg.get("data"), list[OkxTrade]), recv_ns)
            except ValueError as exc:  # msgspec.ValidationError too
                raise FrameParseError("schema", f"trades: {type(exc).__name__} {exc}") from None
        try:
            book, outcome = self.books.on_message(msg, recv_ns)
        except OkxParseError as exc:
            lost = self.books.books.get((str(channel), str(arg.get("instId")))) if isinstance(arg, dict) else None
            if lost is not None and lost.wants_resubscribe:  # an unreadable push: the book needs a new snapshot
                self._resubscribe(lost)
            raise FrameParseError("schema", str(exc), self._drain_gaps()) from None
        if outcome is Outcome.TICKER and self.books.ticker is not None:
            t = self.books.ticker
            return [TopOfBook(ticker=ticker_for(t.inst_id), bid_price=t.bid_price, bid_size=t.bid_size,
                              ask_price=t.ask_price, ask_size=t.ask_size, exchange_time_ns=t.ts_ms * _MS,
                              receive_time_ns=recv_ns)]  # fmt: skip
        if book is not None:
            return self._book(book, outcome, msg, recv_ns)
        if channel is None:
            raise FrameParseError("schema", f"no arg.channel: {str(data)[:120]}")
        raise FrameParseError("unknown_channel", str(channel))

    @staticmethod
    def _ticks(trades: list[OkxTrade], recv_ns: int) -> list[LiveEvent]:
        return [Tick(ticker=ticker_for(t.instId), trade_id=t.tradeId, price=t.px, size=t.sz, buyer_is_maker=t.side == "sell",
                     exchange_time_ns=int(t.ts) * _MS, receive_time_ns=recv_ns) for t in trades]  # fmt: skip

    def _resubscribe(self, book: OkxBook) -> None:
        key = (book.channel, book.inst_id)
        if key not in self._resubscribing:
            self._resubscribing.add(key)
            self._outgoing += [self._frame("unsubscribe", [key]), self._frame("subscribe", [key])]

    def _book(self, book: OkxBook, outcome: Outcome, msg: dict[str, Any], recv_ns: int) -> list[LiveEvent]:
        if outcome in (Outcome.SEQUENCE_GAP, Outcome.CHECKSUM_FAILED):
            self._resubscribe(book)
            return self._drain_gaps()
        if outcome not in (Outcome.SNAPSHOT, Outcome.APPLIED):
            return []  # an update while the book waits for its new snapshot
        self._resubscribing.discard((book.channel, book.inst_id))
        update_id = book.seq_id if book.seq_id is not None else book.stats.updates_applied
        if outcome is Outcome.SNAPSHOT:
            bids, asks = book_levels(book.book.bids()), book_levels(book.book.asks())
        else:
            d = msg["data"][0]
            bids, asks = book_levels(d["bids"]), book_levels(d["asks"])
        return [BookUpdate(ticker=book.ticker, snapshot=outcome is Outcome.SNAPSHOT, bids=bids, asks=asks,
                           exchange_time_ns=book.ts_ms * _MS, receive_time_ns=recv_ns, update_id=update_id)]  # fmt: skip

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        return ()  # snapshots come in-stream

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        return []
