"""The HTX live feed against the HTX replay server: every recorded trade, every whole-book push, pings answered.

Real websocket on loopback, the real HUOBI recording (2021-04-17, /ws: depth.step0 and trade.detail of
ten spot symbols, gzip-compressed binary frames, six server pings). Expected values come from the
recording read here with regular expressions over the JSON text (the exchange's number text, exactly),
independently of the server and of the adapter's JSON reading.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from ingestors.book import OrderBook
from ingestors.huobi.live import HuobiLive, ws_symbol
from ingestors.live.adapter import FrameParseError
from ingestors.live.connection import LiveConnection
from ingestors.replay.exchanges import replay_for
from ingestors.replay.server import ReplayServer
from live_relay.messages import BookLevel, BookUpdate, StreamGap, Tick, TopOfBook
from marketlake.kafka_broker import free_port

from .live_fixtures import Collected, run_feed
from .replay_fixtures import load, text_of

TICKERS = ["HUOBI:TRIO/ETH", "HUOBI:BOR/USDT", "HUOBI:OMG/BTC", "HUOBI:XVG/ETH", "HUOBI:YFI/HUSD", "HUOBI:ZEN/ETH",
           "HUOBI:DOGE/ETH", "HUOBI:FIL3S/USDT", "HUOBI:PROPY/ETH", "HUOBI:NEST/ETH"]
FAULTED = "HUOBI:TRIO/ETH"
_NUM = r"(-?[0-9.]+(?:E-?[0-9]+)?)"
_TRADE = re.compile(rf'"tradeId":(\d+),"amount":{_NUM},"price":{_NUM},"direction":"(buy|sell)"')
_LEVEL = re.compile(rf"\[{_NUM},{_NUM}\]")


def _side(text: str, side: str) -> list[tuple[str, str]]:
    found = re.search(rf'"{side}":\[((?:\[[^\]]*\],?)*)\]', text)
    assert found is not None, text[:200]
    return _LEVEL.findall(found.group(1))


class Recorded:
    """Per ticker: the trades (id, price, size, taker side) and the depth pushes (version, bids, asks) in order."""

    def __init__(self, data_dir: Path) -> None:
        names = {ws_symbol(t): t for t in TICKERS}
        self.trades: dict[str, list[tuple[str, str, str, str]]] = {t: [] for t in TICKERS}
        self.pushes: dict[str, list[tuple[int, list[tuple[str, str]], list[tuple[str, str]]]]] = {t: [] for t in TICKERS}
        self.pings: list[int] = []
        for frame in load(data_dir, "HUOBI").conns[0].recvs:
            text = text_of(frame)
            if m := re.match(r'\{"ping":(\d+)\}$', text):
                self.pings.append(int(m.group(1)))
            m = re.match(r'\{"ch":"market\.(\w+)\.([\w.]+)"', text)
            if m is None or m.group(1) not in names:
                continue
            ticker, topic = names[m.group(1)], m.group(2)
            if topic == "trade.detail":
                self.trades[ticker] += [(i, p, a, d) for i, a, p, d in _TRADE.findall(text)]
            elif topic == "depth.step0":
                version = re.search(r'"version":(\d+)', text)
                assert version is not None
                self.pushes[ticker].append((int(version.group(1)), _side(text, "bids"), _side(text, "asks")))
        for ticker in TICKERS:  # versions only grow in this recording: every push is applied
            versions = [v for v, _, _ in self.pushes[ticker]]
            assert versions == sorted(set(versions)) and versions

    def book(self, ticker: str) -> OrderBook:
        book = OrderBook(ticker)
        _, bids, asks = self.pushes[ticker][-1]
        book.apply_snapshot(bids, asks)
        return book


def levels(side: Sequence[BookLevel]) -> list[tuple[str, str]]:
    return [(x.price, x.size) for x in side]


def published(updates: list[BookUpdate], ticker: str) -> OrderBook:
    book = OrderBook(ticker)
    for u in (u for u in updates if u.ticker == ticker):
        (book.apply_snapshot if u.snapshot else book.apply_delta)(levels(u.bids), levels(u.asks))
        assert not book.is_crossed(), u
    return book


class SendsRecorded(HuobiLive):
    """HuobiLive keeping every frame it asked the runner to send (the pong answers)."""

    def __init__(self, tickers: list[str], ws_url: str, rest_url: str) -> None:
        super().__init__(tickers, ws_url, rest_url)
        self.sent: list[dict] = []

    def outgoing(self) -> Sequence[str]:
        out = super().outgoing()
        self.sent += [orjson.loads(f) for f in out]
        return out


def run(data_dir: Path, rec: Recorded, drop: str | None = None) -> tuple[Collected, LiveConnection, SendsRecorded, int]:
    server = ReplayServer(replay_for("HUOBI"), data_dir, deterministic=True)
    if drop is not None:
        server.state.set_faults(drop_diffs=1, fault_symbol=ws_symbol(drop))
    with server.running(port=free_port()) as base:
        adapter = SendsRecorded(TICKERS, base.replace("http://", "ws://") + "/ws", base)

        def complete(c: Collected, _conn: object) -> bool:
            return len(adapter.sent) >= len(rec.pings) and all(
                c.counts[Tick, t] >= len(rec.trades[t])
                and c.counts[BookUpdate, t] >= len(rec.pushes[t]) - (t == drop) for t in TICKERS)

        collected, conn = run_feed(adapter, complete)
        dropped = server.state.stats()["dropped"]
    return collected, conn, adapter, dropped


def test_every_recorded_trade_and_whole_book_arrives_and_every_ping_is_answered(data_dir: Path) -> None:
    rec = Recorded(data_dir)
    collected, conn, adapter, _ = run(data_dir, rec)
    updates = collected.of(BookUpdate)
    for ticker in TICKERS:
        ticks = collected.of(Tick, ticker)
        assert [(t.trade_id, t.price, t.size, "sell" if t.buyer_is_maker else "buy") for t in ticks] == rec.trades[ticker]
        assert len({t.trade_id for t in ticks}) == len(ticks)
        mine = collected.of(BookUpdate, ticker)
        assert [(u.update_id, levels(u.bids), levels(u.asks)) for u in mine] == rec.pushes[ticker]
        assert all(u.snapshot for u in mine)
        book, ours = published(updates, ticker), adapter.books.books[ws_symbol(ticker), "depth.step0"].book
        assert book.top(150) == rec.book(ticker).top(150) == ours.top(150)
    assert not collected.of(StreamGap) and not collected.of(TopOfBook) and sum(conn.stats.malformed.values()) == 0
    assert adapter.sent == [{"pong": p} for p in rec.pings]  # every server ping answered with its own value
    print(f"\nhuobi: {sum(len(v) for v in rec.trades.values())} trades, {len(updates)} book updates (whole books), "
          f"0 gaps, {len(rec.pings)} pings answered")


def test_a_dropped_whole_book_push_loses_nothing_and_is_no_gap(data_dir: Path) -> None:
    """depth.step0 pushes whole books: the replay's drop fault acts on them, and the next push repairs the book."""
    rec = Recorded(data_dir)
    collected, conn, _adapter, dropped = run(data_dir, rec, drop=FAULTED)
    assert dropped == 1 and not collected.of(StreamGap) and sum(conn.stats.malformed.values()) == 0
    updates = collected.of(BookUpdate)
    for ticker in TICKERS:
        expected = rec.pushes[ticker][1:] if ticker == FAULTED else rec.pushes[ticker]
        assert [(u.update_id, levels(u.bids), levels(u.asks)) for u in collected.of(BookUpdate, ticker)] == expected
        assert published(updates, ticker).top(150) == rec.book(ticker).top(150)
        assert [t.trade_id for t in collected.of(Tick, ticker)] == [t[0] for t in rec.trades[ticker]]
    print(f"\nhuobi fault: 1 {ws_symbol(FAULTED)} push dropped, 0 gaps, {len(updates)} book updates, final books equal")


def gz(obj: object) -> bytes:
    return gzip.compress(obj if isinstance(obj, bytes) else orjson.dumps(obj))


def test_pings_pongs_errors_and_a_disconnect_offline(data_dir: Path) -> None:
    rec = Recorded(data_dir)
    adapter = HuobiLive(TICKERS[:2], "ws://127.0.0.1:1/ws", "http://127.0.0.1:1", tops=True)
    assert [orjson.loads(f) for f in adapter.subscribe_frames()] == [
        {"sub": f"market.{s}.{topic}", "id": str(n)} for n, (topic, s) in enumerate(
            [(topic, s) for topic in ("depth.step0", "trade.detail", "bbo") for s in ("trioeth", "borusdt")], 1)]
    assert adapter.keepalive.ping_interval_s == 20.0 and adapter.keepalive.ping_frame is None
    ping = gz({"ping": 1618678073643})
    assert adapter.is_pong(ping) and adapter.outgoing() == ['{"pong":1618678073643}'] and adapter.outgoing() == []
    assert adapter.on_frame(gz({"ping": 7}), 0) == [] and adapter.outgoing() == ['{"pong":7}']  # if passed on
    assert adapter.is_pong(gz({"pong": 5})) and adapter.outgoing() == []
    corrupt = ping[:10] + b"\xff" * 20  # a gzip header, then no deflate stream (zlib.error, not OSError)
    assert not any(adapter.is_pong(f) for f in (corrupt, b"not gzip", gz({"id": "1", "status": "ok"})))
    assert adapter.on_frame(gz({"id": "1", "status": "ok", "subbed": "market.trioeth.depth.step0", "ts": 1}), 0) == []
    bbo = (b'{"ch":"market.trioeth.bbo","ts":2,"tick":{"seqId":9,"ask":9.2E-7,"askSize":100,"bid":9.1E-7,'
           b'"bidSize":5.50,"quoteTime":1618678073000,"symbol":"trioeth"}}')
    assert adapter.on_frame(gz(bbo), 3) == [TopOfBook("HUOBI:TRIO/ETH", "9.1E-7", "5.50", "9.2E-7", "100",
                                                      1618678073000 * 1_000_000, 3, 9)]
    for ticker in TICKERS[:2]:  # both books synced by a recorded push
        version, bids, asks = rec.pushes[ticker][0]
        side = {k: ",".join(f"[{p},{q}]" for p, q in lv) for k, lv in (("bids", bids), ("asks", asks))}
        push = (f'{{"ch":"market.{ws_symbol(ticker)}.depth.step0","ts":1,"tick":{{"bids":[{side["bids"]}],'
                f'"asks":[{side["asks"]}],"version":{version},"ts":1}}}}')
        [update] = adapter.on_frame(gz(push.encode()), 0)
        assert isinstance(update, BookUpdate) and update.snapshot and update.update_id == version
    causes = []
    for frame in (gz(replay_for("HUOBI").malformed.encode()), b"not gzip", corrupt,
                  gz({"status": "error", "err-code": "bad-request", "err-msg": "invalid topic market.x.y", "id": "3"}),
                  gz({"ch": "market.trioeth.trade.detail", "ts": 1, "tick": {"data": [{"price": 1}]}}),
                  gz({"ch": "market.omgbtc.depth.step0", "ts": 1, "tick": {"bids": [["x", 1]], "version": 10**15}}),
                  gz({"ch": "market.trioeth.kline.1min", "ts": 1, "tick": {}}), gz([1, 2])):
        with pytest.raises(FrameParseError) as exc:
            adapter.on_frame(frame, 0)
        causes.append(exc.value.cause)
    assert causes == ["json", "json", "json", "subscription_error", "schema", "schema", "unknown_channel", "schema"]
    gaps = adapter.on_disconnect(7)
    assert [(g.ticker, g.how, g.detected_at_ns, g.last_seen) for g in gaps if isinstance(g, StreamGap)] == [
        (t, "reconnect", 7, rec.pushes[t][0][0]) for t in TICKERS[:2]] and len(gaps) == 2
    assert adapter.on_connect(8) == [] and not adapter.books.books and adapter.outgoing() == []
