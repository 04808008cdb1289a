"""HTX (Huobi) spot websocket live adapter: trade.detail trades, depth.step0 whole books, bbo tops.

https://www.htx.com/en-us/opend/newApiPages/ — one connection to wss://api.huobi.pro/ws, one
{"sub": "market.<symbol>.<topic>", "id": n} frame per topic and symbol ("HUOBI:BTC/USDT" -> btcusdt).
Every server frame is gzip-compressed JSON; prices and sizes are JSON numbers, kept as their exact
text by ingestors/huobi/book.py:
- trade.detail → Tick: id "tradeId", price and amount as sent, time "ts" (ms); "direction" is the
  taker's side, so "sell" means the buyer was the maker;
- depth.step0 → ingestors/huobi/book.HuobiBooks: every push is the whole book (150 levels, a
  growing "version"), so each one goes out as BookUpdate snapshot=True and a lost push loses
  nothing; an older version is ignored. mbp.N books (on /feed, not subscribed here) are handled
  too: the {"req": topic} snapshot is sent from `outgoing`, then one delta per increment, and a
  prevSeqNum break is a StreamGap after which only that symbol asks for a new snapshot;
- bbo → TopOfBook (with tops=True; the recorded sessions have none);
- keep-alive: HTX sends {"ping": n} every 5 s and closes the connection after two unanswered;
  the answer {"pong": n} goes out through `outgoing` and the ping counts as a sign of life. Our own
  keep-alive is a websocket-level ping every 20 s (answered by any RFC 6455 server).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import orjson

from ingestors.gaps import GapEvent, GapHow, stream_gap
from ingestors.huobi.book import HuobiBook, HuobiBooks, HuobiParseError, Outcome, decode_frame, load_frame
from ingestors.huobi.config import EXCHANGE
from ingestors.live.adapter import FrameParseError, KeepAlive, LiveEvent, SnapshotRequest
from live_relay.messages import BookLevel, BookUpdate, Tick, TopOfBook
from live_relay.topics import parse_ticker

__all__ = ["BOOK_TOPIC", "HuobiLive", "ws_symbol"]

BOOK_TOPIC = "depth.step0"  # whole 150-level books, unaggregated prices
TRADES_TOPIC = "trade.detail"
BBO_TOPIC = "bbo"
_MS = 1_000_000


def ws_symbol(ticker: str) -> str:
    """"HUOBI:BTC/USDT" -> "btcusdt"."""
    t = parse_ticker(ticker)
    return (t.base + t.quote).lower()


def _decode(data: str | bytes) -> str:
    """decode_frame, with a corrupt deflate stream (zlib.error, which it lets through) a HuobiParseError too."""
    try:
        return decode_frame(data)
    except zlib.error as exc:
        raise HuobiParseError(f"binary frame that is not gzip-compressed text ({exc}): {data[:60]!r}") from None


def _levels(levels: Sequence[Sequence[Any]]) -> tuple[BookLevel, ...]:
    return tuple(BookLevel(str(lv[0]), str(lv[1])) for lv in levels)


class HuobiLive:
    exchange = EXCHANGE

    def __init__(self, tickers: Sequence[str], ws_url: str, rest_url: str, *, tops: bool = False) -> None:
        self.instruments = {ws_symbol(t): {"base-currency": parse_ticker(t).base.lower(),
                                           "quote-currency": parse_ticker(t).quote.lower()} for t in tickers}  # fmt: skip
        self.symbols = list(self.instruments)
        self.topics = (BOOK_TOPIC, TRADES_TOPIC) + ((BBO_TOPIC,) if tops else ())
        self.url = ws_url
        self.keepalive = KeepAlive(ping_interval_s=20.0, ping_frame=None, pong_timeout_s=10.0, max_lifetime_s=None)
        self.books = HuobiBooks(instruments=self.instruments)
        self._outgoing: list[str] = []
        self._asked: set[tuple[str, str]] = set()  # mbp books whose {"req"} snapshot is on its way
        self._decoded: tuple[bytes | str, str] | None = None  # the last frame is_pong decompressed, and its text

    def ws_url(self) -> str:
        return self.url

    def subscribe_frames(self) -> Sequence[str]:
        subs = [f"market.{s}.{topic}" for topic in self.topics for s in self.symbols]
        return [orjson.dumps({"sub": sub, "id": str(n)}).decode() for n, sub in enumerate(subs, 1)]

    def on_connect(self, recv_ns: int) -> list[LiveEvent]:
        self.books = HuobiBooks(instruments=self.instruments)  # a new connection starts every book again
        self._outgoing.clear()
        self._asked.clear()
        return []

    def on_disconnect(self, recv_ns: int) -> list[LiveEvent]:
        # HuobiBooks reports the mbp books; a whole-book topic's book is stale until its next push: a gap too.
        whole = [GapEvent(EXCHANGE, b.ticker, recv_ns, GapHow.RECONNECT, last_seen=b.seq_num,
                          detail=f"{b.symbol} {b.topic}: connection lost")
                 for b in self.books.books.values() if b.synced and b.kind != "mbp"]  # fmt: skip
        return [stream_gap(g) for g in whole + self.books.on_disconnect(recv_ns)]

    def _text(self, data: str | bytes) -> str:
        if self._decoded is not None and self._decoded[0] is data:
            return self._decoded[1]
        return _decode(data)

    def is_pong(self, data: str | bytes) -> bool:
        """Server pings (answered here: the runner does not pass them to on_frame) and pongs keep us alive."""
        try:
            text = _decode(data)
        except HuobiParseError:
            return False  # on_frame reports it
        self._decoded = (data, text)
        if text.startswith('{"ping"'):
            self._pong(text)
            return True
        return text.startswith('{"pong"')

    def _pong(self, text: str) -> None:
        try:
            ping = orjson.loads(text)["ping"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return  # on_frame reports it
        if isinstance(ping, int) and not isinstance(ping, bool):
            self._outgoing.append(orjson.dumps({"pong": ping}).decode())

    def outgoing(self) -> Sequence[str]:
        for symbol, topic in self.books.wanting_snapshot():
            if (symbol, topic) not in self._asked:
                self._asked.add((symbol, topic))
                self._outgoing.append(orjson.dumps({"req": f"market.{symbol}.{topic}", "id": f"req-{symbol}"}).decode())
        out, self._outgoing = self._outgoing, []
        return out

    def on_frame(self, data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        try:
            text = self._text(data)
            book, outcome = self.books.on_frame(text, recv_ns)
            if outcome is Outcome.NOT_BOOK:
                return self._not_book(load_frame(text))
        except HuobiParseError as exc:
            raise FrameParseError("json" if str(exc).startswith(("not JSON", "binary")) else "schema", str(exc)) from None
        if outcome is Outcome.PING:
            self._pong(text)
            return []
        if outcome is Outcome.TRADE:
            return [Tick(ticker=self.books.ticker_of(t.symbol), trade_id=t.trade_id, price=t.price, size=t.amount,
                         buyer_is_maker=t.side == "sell", exchange_time_ns=t.ts_ms * _MS, receive_time_ns=recv_ns)
                    for t in self.books.trades]  # fmt: skip
        if outcome is Outcome.BBO and (b := self.books.bbo) is not None:
            return [TopOfBook(ticker=self.books.ticker_of(b.symbol), bid_price=b.bid_price, bid_size=b.bid_size,
                              ask_price=b.ask_price, ask_size=b.ask_size, exchange_time_ns=b.quote_time_ms * _MS,
                              receive_time_ns=recv_ns, sequence=b.seq_id)]  # fmt: skip
        return self._book(book, outcome, text, recv_ns) if book is not None else []

    def _not_book(self, msg: Any) -> list[LiveEvent]:
        if msg.get("status") == "error":  # a refused sub / req: {"status":"error","err-code":..,"err-msg":..}
            raise FrameParseError("subscription_error", f"{msg.get('err-code')} {msg.get('err-msg')}")
        if "ch" in msg:
            raise FrameParseError("unknown_channel", str(msg["ch"]))
        return []  # sub / unsub answers, pongs, refused req answers of topics we do not keep

    def _book(self, book: HuobiBook, outcome: Outcome, text: str, recv_ns: int) -> list[LiveEvent]:
        if outcome is Outcome.SEQUENCE_GAP:
            self._asked.discard((book.symbol, book.topic))  # ask for a new snapshot (outgoing)
            return [stream_gap(book.gaps[-1])]
        if outcome not in (Outcome.REFRESH, Outcome.SNAPSHOT, Outcome.APPLIED):
            return []  # BUFFERED, DROPPED (an older version), STALE_SNAPSHOT
        self._asked.discard((book.symbol, book.topic))
        if outcome is Outcome.APPLIED:  # an mbp increment: the levels it changed
            tick = load_frame(text)["tick"]
            bids, asks = _levels(tick.get("bids") or ()), _levels(tick.get("asks") or ())
        else:
            bids, asks = _levels(book.book.bids()), _levels(book.book.asks())
        return [BookUpdate(ticker=book.ticker, snapshot=outcome is not Outcome.APPLIED, bids=bids, asks=asks,
                           exchange_time_ns=book.ts_ms * _MS, receive_time_ns=recv_ns,
                           update_id=book.seq_num or 0)]  # fmt: skip

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        return ()  # whole books come in-stream; mbp snapshots are {"req"} frames (outgoing)

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        return []
