"""KuCoin spot websocket live adapter: /market/match trades, /market/level2 books (REST snapshot + sequences), tickers.

https://www.kucoin.com/docs/websocket/basic-info/apply-connect-token — the websocket URL is not fixed:
POST {rest_url}/api/v1/bullet-public answers a token and instanceServers (endpoint, pingInterval,
pingTimeout); `ws_url()` asks for it before every (re)connect (a blocking request, at most 5 s; the
runner calls ws_url() in a thread, so other feeds do not wait) and connects to endpoint?token=...&connectId=...; when the request
fails it connects to the configured ws_url instead (the replay server serves both). One connection,
{"type":"subscribe","topic":"/market/match:A,B,...","response":true} frames (at most 100 symbols a
topic) for match, ticker and level2 of the configured symbols ("KUCOIN:BTC/USDT" -> BTC-USDT):
- trade.l3match → Tick: id tradeId, price and size as sent, time (ns); side is the taker's, so
  "sell" means the buyer was the maker;
- trade.l2update → ingestors/kucoin/book.KucoinBooks: pushes are buffered until the symbol's REST
  snapshot (`snapshot_requests`, fetched by the runner: GET /api/v3/market/orderbook/level2 by default,
  the full book, which real KuCoin serves with an API key only; pass snapshot_path=".../level2_100" for
  the public 100-level one), then BookUpdate snapshot=True for the book (the snapshot with the buffer
  replayed onto it) and one delta per applied push (changes past the book's sequence; size "0"
  deletes; price "0" only moves the sequence). A sequenceStart past the book's sequence + 1 is a
  StreamGap and only that symbol fetches a new snapshot;
- trade.ticker → TopOfBook (bestBid/bestBidSize/bestAsk/bestAskSize, time ms);
- keep-alive: {"id":..,"type":"ping"} every pingInterval (18 s), answered {"type":"pong"}.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from ingestors.book import book_levels
from ingestors.gaps import GapEvent, stream_gap
from ingestors.kucoin.book import KucoinBook, KucoinBooks, KucoinParseError, Outcome
from ingestors.kucoin.config import (
    EXCHANGE,
    L2_SUBJECT,
    LEVEL2_TOPIC,
    MATCH_SUBJECT,
    MATCH_TOPIC,
    NO_PRICE,
    OK_CODE,
    SNAPSHOT_PATHS,
    TICKER_SUBJECT,
    TICKER_TOPIC,
    ticker_for,
)
from ingestors.kucoin.rest import symbol_of
from ingestors.live.adapter import FrameParseError, KeepAlive, LiveEvent, SnapshotRequest
from live_relay.messages import BookUpdate, Tick, TopOfBook

__all__ = ["BULLET_PATH", "KucoinLive", "symbol_of"]

log = logging.getLogger(__name__)

BULLET_PATH = "/api/v1/bullet-public"
SNAPSHOT_PATH = SNAPSHOT_PATHS[2]  # /api/v3/market/orderbook/level2: the full book
MAX_SYMBOLS = 100  # symbols a subscribe topic may name
PING = orjson.dumps({"id": "marketlake", "type": "ping"}).decode()
_MS = 1_000_000


class KucoinLive:
    exchange = EXCHANGE

    def __init__(self, tickers: Sequence[str], ws_url: str, rest_url: str, *, snapshot_path: str = SNAPSHOT_PATH) -> None:
        self.symbols = [symbol_of(t) for t in tickers]
        self.url = ws_url
        self.rest_url = rest_url.rstrip("/")
        self.snapshot_path = snapshot_path
        self.keepalive = KeepAlive(ping_interval_s=18.0, ping_frame=PING, pong_timeout_s=10.0, max_lifetime_s=None)
        self._gaps: list[GapEvent] = []  # gaps the books reported during the current call
        self.books = KucoinBooks(on_gap=self._gaps.append)
        self._announced: set[str] = set()  # symbols whose synced book went out as a snapshot BookUpdate

    def ws_url(self) -> str:
        try:
            answer = httpx.post(self.rest_url + BULLET_PATH, timeout=5.0).json()
            if answer.get("code") != OK_CODE:
                raise ValueError(f"KuCoin error {answer.get('code')}: {answer.get('msg')}")
            data = answer["data"]
            server = data["instanceServers"][0]
            ping_s, timeout_s = int(server["pingInterval"]) / 1000, int(server["pingTimeout"]) / 1000
            url = f"{server['endpoint']}?token={data['token']}&connectId={uuid.uuid4().hex}"
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            log.warning("KUCOIN: bullet-public failed (%s): connecting to the configured %s", exc, self.url)
            return self.url
        self.keepalive = KeepAlive(ping_interval_s=ping_s, ping_frame=PING, pong_timeout_s=timeout_s, max_lifetime_s=None)
        return url

    def subscribe_frames(self) -> Sequence[str]:
        chunks = [self.symbols[i:i + MAX_SYMBOLS] for i in range(0, len(self.symbols), MAX_SYMBOLS)]
        topics = [f"{topic}:{','.join(c)}" for topic in (MATCH_TOPIC, TICKER_TOPIC, LEVEL2_TOPIC) for c in chunks]
        return [orjson.dumps({"id": str(n), "type": "subscribe", "topic": topic, "privateChannel": False,
                              "response": True}).decode() for n, topic in enumerate(topics, 1)]  # fmt: skip

    def on_connect(self, recv_ns: int) -> list[LiveEvent]:
        self._gaps.clear()
        self.books = KucoinBooks(on_gap=self._gaps.append)  # every book starts again from a new snapshot
        self._announced.clear()
        return []

    def on_disconnect(self, recv_ns: int) -> list[LiveEvent]:
        self.books.on_disconnect(recv_ns)
        return self._drain()

    def _drain(self) -> list[LiveEvent]:
        gaps, self._gaps[:] = list(self._gaps), []
        self._announced.difference_update(symbol_of(g.ticker) for g in gaps)
        return [stream_gap(g) for g in gaps]

    def is_pong(self, data: str | bytes) -> bool:
        raw = data.encode() if isinstance(data, str) else data
        return b'"type":"pong"' in raw

    def outgoing(self) -> Sequence[str]:
        return ()  # resyncs use REST snapshots, not resubscriptions

    def on_frame(self, data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FrameParseError("json", str(exc)) from None
        if not isinstance(msg, dict):
            raise FrameParseError("schema", f"not a KuCoin message: {str(data)[:120]}")
        if msg.get("type") == "error":
            raise FrameParseError("subscription_error", f"{msg.get('code')} {msg.get('data')}")
        if msg.get("type") != "message":
            return []  # welcome, acks
        subject, d = msg.get("subject"), msg.get("data")
        if subject not in (L2_SUBJECT, TICKER_SUBJECT, MATCH_SUBJECT):
            raise FrameParseError("unknown_channel", f"{subject} {msg.get('topic')}")
        known = self.books.books.get(d.get("symbol", "")) if isinstance(d, dict) else None
        prev = known.seq if known is not None and known.synced else None  # the sequence the push continues
        try:
            book, outcome = self.books.on_frame(data, recv_ns)
            out = self._drain()
            if outcome is Outcome.TRADE and (t := self.books.trade) is not None:
                out.append(Tick(ticker=ticker_for(t.symbol), trade_id=t.trade_id, price=t.price, size=t.size,
                                buyer_is_maker=t.side == "sell", exchange_time_ns=t.time_ns, receive_time_ns=recv_ns,
                                sequence=t.sequence))  # fmt: skip
            elif outcome is Outcome.TICKER and (k := self.books.ticker) is not None:
                out.append(TopOfBook(ticker=ticker_for(k.symbol), bid_price=k.bid_price, bid_size=k.bid_size,
                                     ask_price=k.ask_price, ask_size=k.ask_size, exchange_time_ns=k.time_ms * _MS,
                                     receive_time_ns=recv_ns, sequence=k.sequence))  # fmt: skip
            elif outcome is Outcome.APPLIED and book is not None and prev is not None and isinstance(d, dict):
                # A book synced without its snapshot going out (a buffered push broke on_snapshot): the whole book
                out.append(self._delta(book, d, prev, recv_ns) if book.symbol in self._announced
                           else self._snapshot_update(book, int(d.get("time") or 0) * _MS, recv_ns))
            return out
        except KucoinParseError as exc:
            raise FrameParseError("schema", str(exc)) from None

    def _delta(self, book: KucoinBook, data: Mapping[str, Any], prev: int, recv_ns: int) -> BookUpdate:
        changes = data["changes"]
        bids, asks = ([c for c in sorted(changes[side], key=lambda c: int(c[2])) if int(c[2]) > prev and c[0] != NO_PRICE]
                      for side in ("bids", "asks"))  # fmt: skip
        return BookUpdate(ticker=book.ticker, snapshot=False, bids=book_levels(bids), asks=book_levels(asks),
                          exchange_time_ns=int(data.get("time") or 0) * _MS, receive_time_ns=recv_ns,
                          update_id=book.seq, sequence=book.seq)  # fmt: skip

    def snapshot_requests(self) -> Sequence[SnapshotRequest]:
        return [SnapshotRequest(s, f"{self.rest_url}{self.snapshot_path}?symbol={s}") for s in self.books.wanting_snapshot()]

    def on_snapshot(self, request: SnapshotRequest, body: Any, recv_ns: int) -> list[LiveEvent]:
        try:
            book, outcome = self.books.on_snapshot(request.symbol, orjson.dumps(body), recv_ns)
        except KucoinParseError as exc:
            raise FrameParseError("snapshot", str(exc)) from None
        out = self._drain()  # the buffered pushes replayed onto the snapshot can reveal a gap
        if outcome is Outcome.SNAPSHOT:
            data = body.get("data", {}) if isinstance(body, dict) else {}
            out.append(self._snapshot_update(book, int(data.get("time") or 0) * _MS, recv_ns))
        return out

    def _snapshot_update(self, book: KucoinBook, exchange_ns: int, recv_ns: int) -> BookUpdate:
        self._announced.add(book.symbol)
        return BookUpdate(ticker=book.ticker, snapshot=True, bids=book_levels(book.book.bids()),
                          asks=book_levels(book.book.asks()),
                          exchange_time_ns=exchange_ns, receive_time_ns=recv_ns, update_id=book.seq,
                          sequence=book.seq)  # fmt: skip
