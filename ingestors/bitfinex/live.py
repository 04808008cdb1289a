"""Bitfinex websocket v2 live adapter: trades, book P0 (SEQ_ALL sequence, CRC32 checksums) and ticker tops.

https://docs.bitfinex.com/docs/ws-general — one connection (wss://api-pub.bitfinex.com/ws/2): first
{"event":"conf","flags":SEQ_ALL|OB_CHECKSUM}, then one {"event":"subscribe",...} per channel and symbol
("BITFINEX:BTC/USD" -> tBTCUSD, "BITFINEX:TESTBTC/TESTUSD" -> tTESTBTC:TESTUSD, USDT -> UST). Frames name
only their chanId: ingestors/bitfinex/book.BitfinexBooks maps them, keeps every number's exact text, and
checks the connection's SEQ_ALL number:
- trades → Tick: the snapshot's rows (in the order Bitfinex sends them, newest first) and each "te";
  id ID, price PRICE, size |AMOUNT| as sent, time MTS (ms); AMOUNT < 0 is a taker sell, so the buyer
  was the maker ("tu" repeats a "te" and is skipped);
- book (P0, F0, len 100) → BookUpdate snapshot=True on every snapshot (the book as kept, at most `len`
  a side), then one delta per level frame (COUNT 0: size "0"). Bitfinex does not delete the level pushed
  past `len`: a consumer keeps `len` levels a side, as BitfinexBook does. A checksum mismatch is a
  StreamGap for that symbol, which alone resubscribes (`outgoing`: unsubscribe its chanId + subscribe,
  and Bitfinex sends a new snapshot). A SEQ_ALL jump cannot name the channel that lost a frame: every
  synced book of the connection gets a StreamGap and resubscribes;
- ticker → TopOfBook (BID, BID_SIZE, ASK, ASK_SIZE; no exchange time without the TIMESTAMP flag);
- keep-alive: {"event":"ping"} every 20 s, answered {"event":"pong"}. Bitfinex's per-channel [chanId,
  "hb"] heartbeats are not pongs here: with SEQ_ALL they carry a sequence number, so they go to on_frame.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from ingestors.bitfinex.book import BitfinexBook, BitfinexBooks, BitfinexParseError, Outcome, load_frame
from ingestors.bitfinex.config import BOOK_CHANNEL, EXCHANGE, LIVE_FLAGS, TICKER_CHANNEL, TRADES_CHANNEL, ticker_for
from ingestors.bitfinex.rest import symbol_of
from ingestors.book import book_levels
from ingestors.gaps import GapEvent, stream_gap
from ingestors.live.adapter import FrameParseError, KeepAlive, LiveEvent, SnapshotRequest
from live_relay.messages import BookLevel, BookUpdate, Tick, TopOfBook

__all__ = ["BOOK_LEN", "BitfinexLive", "symbol_of"]

BOOK_LEN = 100  # levels a side: 1, 25, 100 or 250
PING = orjson.dumps({"event": "ping", "cid": 1}).decode()
_MS = 1_000_000
_CHAN_ID = re.compile(r"\[\s*(\d+)\s*,")


class BitfinexLive:
    exchange = EXCHANGE

    def __init__(self, tickers: Sequence[str], ws_url: str, rest_url: str) -> None:
        self.symbols = [symbol_of(t) for t in tickers]
        self.url = ws_url
        self.keepalive = KeepAlive(ping_interval_s=20.0, ping_frame=PING, pong_timeout_s=10.0, max_lifetime_s=None)
        self._gaps: list[GapEvent] = []  # gaps the books reported during the current call
        self.books = BitfinexBooks(on_gap=self._gaps.append)
        self._outgoing: list[str] = []
        self._resubscribing: set[str] = set()  # book symbols asked for a new snapshot

    def ws_url(self) -> str:
        return self.url

    def _subscribe(self, channel: str, symbol: str) -> str:
        extra = {"prec": "P0", "freq": "F0", "len": str(BOOK_LEN)} if channel == BOOK_CHANNEL else {}
        return orjson.dumps({"event": "subscribe", "channel": channel, "symbol": symbol, **extra}).decode()

    def subscribe_frames(self) -> Sequence[str]:
        return [orjson.dumps({"event": "conf", "flags": LIVE_FLAGS}).decode()] + [
            self._subscribe(c, s) for c in (TICKER_CHANNEL, BOOK_CHANNEL, TRADES_CHANNEL) for s in self.symbols]

    def on_connect(self, recv_ns: int) -> list[LiveEvent]:
        self._gaps.clear()
        self.books = BitfinexBooks(on_gap=self._gaps.append)  # a new connection starts every book from its snapshot
        self._outgoing.clear()
        self._resubscribing.clear()
        return []

    def on_disconnect(self, recv_ns: int) -> list[LiveEvent]:
        self.books.on_disconnect(recv_ns)
        gaps, self._gaps[:] = list(self._gaps), []
        return [stream_gap(g) for g in gaps]

    def is_pong(self, data: str | bytes) -> bool:
        raw = data.encode() if isinstance(data, str) else data
        return raw.startswith(b"{") and b'"event":"pong"' in raw

    def outgoing(self) -> Sequence[str]:
        out, self._outgoing = self._outgoing, []
        return out

    def on_frame(self, data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        if data[:1] in ("{", b"{"):
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise FrameParseError("json", str(exc)) from None
            if isinstance(event, dict) and event.get("event") == "error":
                raise FrameParseError("subscription_error", f"{event.get('code')} {event.get('msg')}")
        self.books.ticker, self.books.trades = None, []
        try:
            book, outcome = self.books.on_frame(data, recv_ns)
        except BitfinexParseError as exc:
            gaps: list[LiveEvent] = [stream_gap(g) for g in self._gaps]  # a sequence jump, or the book it broke
            for gap in self._gaps:
                self._resubscribe(self._book_of[gap.ticker])
            self._gaps.clear()
            chan = _CHAN_ID.match(data if isinstance(data, str) else data.decode(errors="replace"))
            for lost in self.books.books.values():  # an unreadable snapshot: that book needs another one
                if chan is not None and lost.chan_id == int(chan[1]) and not lost.synced:
                    self._resubscribe(lost)
            raise FrameParseError("json" if str(exc).startswith("not JSON") else "schema", str(exc), gaps) from None
        out: list[LiveEvent] = [stream_gap(g) for g in self._gaps]  # a sequence jump gaps every synced book
        for gap in self._gaps:
            self._resubscribe(self._book_of[gap.ticker])
        self._gaps.clear()
        # The trades or ticker of the frame (also when a sequence jump masks the frame's own outcome)
        out += [Tick(ticker=ticker_for(t.symbol), trade_id=t.trade_id, price=t.price, size=t.size,
                     buyer_is_maker=t.side == "sell", exchange_time_ns=t.mts * _MS, receive_time_ns=recv_ns,
                     sequence=self.books.seq or 0) for t in self.books.trades]  # fmt: skip
        if (t := self.books.ticker) is not None:
            out.append(TopOfBook(ticker=ticker_for(t.symbol), bid_price=t.bid_price, bid_size=t.bid_size,
                                 ask_price=t.ask_price, ask_size=t.ask_size, exchange_time_ns=0,
                                 receive_time_ns=recv_ns, sequence=self.books.seq or 0))  # fmt: skip
        if book is not None and outcome in (Outcome.SNAPSHOT, Outcome.APPLIED):
            out.append(self._book(book, outcome, data, recv_ns))
        return out

    @property
    def _book_of(self) -> dict[str, BitfinexBook]:
        return {b.ticker: b for b in self.books.books.values()}

    def _resubscribe(self, book: BitfinexBook) -> None:
        if book.symbol not in self._resubscribing:
            self._resubscribing.add(book.symbol)
            unsubscribe = [orjson.dumps({"event": "unsubscribe", "chanId": book.chan_id}).decode()] \
                if book.chan_id is not None else []
            self._outgoing += unsubscribe + [self._subscribe(BOOK_CHANNEL, book.symbol)]

    def _book(self, book: BitfinexBook, outcome: Outcome, data: str | bytes, recv_ns: int) -> BookUpdate:
        self._resubscribing.discard(book.symbol)
        if outcome is Outcome.SNAPSHOT:
            bids, asks = book_levels(book.book.bids()), book_levels(book.book.asks())
        else:
            price, count, amount = load_frame(data)[1]  # [chanId, [PRICE, COUNT, AMOUNT](, SEQ)]
            level = (BookLevel(price, amount.lstrip("-") if int(count) > 0 else "0"),)
            bids, asks = ((), level) if amount.startswith("-") else (level, ())
        return BookUpdate(ticker=book.ticker, snapshot=outcome is Outcome.SNAPSHOT, bids=bids, asks=asks,
                          exchange_time_ns=0, receive_time_ns=recv_ns, update_id=book.book.update_id,
                          sequence=book.seq or 0)  # fmt: skip

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        return ()  # snapshots come in-stream

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        return []
