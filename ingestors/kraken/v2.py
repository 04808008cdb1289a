"""Kraken websocket v2 wire format, both ways: v1 recorded frames -> v2 pushes, and v2 pushes -> our events.

Kraken websocket v2 (https://docs.kraken.com/api/docs/websocket-v2/book, .../trade):
- book: {"channel":"book","type":"snapshot"|"update","data":[{"symbol","bids":[{"price","qty"}],
  "asks":[...],"checksum","timestamp"}]}, price and qty JSON numbers; a qty of 0 deletes the level,
  and the client keeps only the subscribed depth (10, 25, 100, 500, 1000; default 10);
- the checksum: CRC32 (unsigned) of the top 10 asks (lowest first) then the top 10 bids (highest
  first), each level as its price then its qty, formatted with the pair's precision (price at
  AssetPairs pair_decimals, qty at lot_decimals), the '.' removed and leading zeros stripped;
- trade: {"channel":"trade","type":"snapshot"|"update","data":[{"symbol","side","price","qty",
  "ord_type","trade_id","timestamp"}]}; heartbeat {"channel":"heartbeat"}.
v2 names Bitcoin BTC and Dogecoin DOGE where v1 says XBT and XDG.

V1ToV2 re-encodes the recorded v1 frames of one client connection (book-1000 snapshots and
diffs, trades) into the v2 pushes a client subscribed at depth N would get: it keeps each
pair's whole v1 book (verifying the recorded v1 checksums), and sends the changes of its top
N view, with the v2 checksum of that view. Numbers are written with the pair's precision as
JSON number literals (e.g. 0.042990), so no digit is lost on the wire. v1 trades carry no id:
trade_id is the trade's 1-based position among the pair's recorded trades, as the v1 replay's
REST /0/public/Trades numbers them. A recorded v1 checksum that fails on the transcoder's book (a
replay fault dropped a diff before it) stops that pair's pushes until its next v1 snapshot: the true
book's v2 checksum cannot be known then, and a checksum of the wrong book would hide the gap.

KrakenV2Parser reads v2 pushes (numbers kept as their literal text, never floats) into our
events: Tick, BookUpdate (a snapshot of the top levels after each checksum-verified push)
and StreamGap on a checksum mismatch.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from ingestors.book import Level, OrderBook
from ingestors.gaps import GapEvent, GapHow, stream_gap
from ingestors.kraken.book import KrakenBook, Outcome
from ingestors.kraken.config import ASSET_ALIASES, BOOK_DEPTHS, CHECKSUM_LEVELS, DEFAULT_BOOK_DEPTH, EXCHANGE, ticker_for
from ingestors.live.adapter import LiveEvent
from live_relay.messages import BookLevel, BookUpdate, Tick

__all__ = ["KrakenV2Parser", "PairPrecision", "V1ToV2", "checksum_text", "precisions_from_asset_pairs",
           "precision_from_levels", "v1_pair", "v2_checksum", "v2_symbol"]

_V1_NAME = {v: k for k, v in ASSET_ALIASES.items()}  # BTC -> XBT
_PLAIN = re.compile(r"-?\d+(\.\d+)?")


@dataclass(frozen=True)
class PairPrecision:
    price: int  # decimals of a price (AssetPairs pair_decimals)
    qty: int  # decimals of a quantity (AssetPairs lot_decimals)

    def price_text(self, value: str | Decimal) -> str:
        return fixed(value, self.price)

    def qty_text(self, value: str | Decimal) -> str:
        return fixed(value, self.qty)


def fixed(value: str | Decimal, places: int) -> str:
    """A decimal written with exactly `places` decimals (Kraken's formatting of a number at the pair's precision)."""
    return f"{Decimal(value).quantize(Decimal(1).scaleb(-places)):f}"


def v2_symbol(v1: str) -> str:
    """v1 pair name -> v2 symbol: "XBT/CHF" -> "BTC/CHF"."""
    base, _, quote = v1.partition("/")
    return f"{ASSET_ALIASES.get(base, base)}/{ASSET_ALIASES.get(quote, quote)}"


def v1_pair(symbol: str) -> str:
    """v2 symbol -> v1 pair name: "BTC/CHF" -> "XBT/CHF"."""
    base, _, quote = symbol.partition("/")
    return f"{_V1_NAME.get(base, base)}/{_V1_NAME.get(quote, quote)}"


def precisions_from_asset_pairs(body: str | bytes) -> dict[str, PairPrecision]:
    """v2 symbol -> precision, from a REST /0/public/AssetPairs answer (pair_decimals, lot_decimals)."""
    out: dict[str, PairPrecision] = {}
    for info in (orjson.loads(body).get("result") or {}).values():
        if info.get("wsname") and "pair_decimals" in info and "lot_decimals" in info:
            out[v2_symbol(str(info["wsname"]))] = PairPrecision(int(info["pair_decimals"]), int(info["lot_decimals"]))
    return out


def _places(text: str) -> int:
    return len(text.partition(".")[2])


def precision_from_levels(levels: Iterable[Sequence[str]]) -> PairPrecision | None:
    """The precision a v1 book's level strings are written at (the most decimals seen); None without levels."""
    rows = list(levels)
    if not rows:
        return None
    return PairPrecision(max(_places(r[0]) for r in rows), max(_places(r[1]) for r in rows))


def checksum_text(formatted: str) -> str:
    return formatted.replace(".", "").lstrip("0")


def v2_checksum(asks: Sequence[Level], bids: Sequence[Level], precision: PairPrecision) -> int:
    """Kraken's v2 CRC32 of the top 10 asks (lowest first) then the top 10 bids (highest first)."""
    text = "".join(checksum_text(precision.price_text(lv.price)) + checksum_text(precision.qty_text(lv.size))
                   for lv in [*asks[:CHECKSUM_LEVELS], *bids[:CHECKSUM_LEVELS]])
    return zlib.crc32(text.encode("ascii"))


def iso_time(kraken_time: str) -> str:
    """v1 "1618678142.557535" -> v2 "2021-04-17T16:49:02.557535Z"."""
    seconds, _, fraction = kraken_time.partition(".")
    day = datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{day}.{(fraction + '000000')[:6]}Z"


def _num(text: str) -> str:
    """A decimal string as a JSON number literal, digits as they are."""
    if not _PLAIN.fullmatch(text):
        raise ValueError(f"not a plain decimal number: {text!r}")
    return text


def _levels_json(levels: Iterable[tuple[str, str]]) -> str:
    return "[" + ",".join(f'{{"price":{_num(p)},"qty":{_num(q)}}}' for p, q in levels) + "]"


def book_push(kind: str, symbol: str, bids: Iterable[tuple[str, str]], asks: Iterable[tuple[str, str]], checksum: int,
              timestamp: str | None) -> str:
    """A v2 book push; levels (price text, qty text) as written at the pair's precision."""
    ts = f',"timestamp":{orjson.dumps(timestamp).decode()}' if timestamp else ""
    return (f'{{"channel":"book","type":"{kind}","data":[{{"symbol":{orjson.dumps(symbol).decode()},'
            f'"bids":{_levels_json(bids)},"asks":{_levels_json(asks)},"checksum":{checksum}{ts}}}]}}')


def trade_push(kind: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """A v2 trade push; price and qty of each row are decimal strings, written as number literals."""
    out = []
    for r in rows:
        head = orjson.dumps({"symbol": r["symbol"], "side": r["side"]}).decode()[:-1]
        tail = orjson.dumps({"ord_type": r["ord_type"], "trade_id": r["trade_id"], "timestamp": r["timestamp"]}).decode()[1:]
        out.append(f'{head},"price":{_num(r["price"])},"qty":{_num(r["qty"])},{tail}')
    return f'{{"channel":"trade","type":"{kind}","data":[{",".join(out)}]}}'


HEARTBEAT = '{"channel":"heartbeat"}'


@dataclass
class _Pair:
    book: KrakenBook  # the whole recorded v1 book of the pair
    view: tuple[dict[Decimal, tuple[str, str]], dict[Decimal, tuple[str, str]]] | None = None  # bids, asks last sent


@dataclass
class TranscodeStats:
    book_frames: int = 0  # v1 book frames read
    snapshots: int = 0  # v2 book snapshots sent
    updates: int = 0  # v2 book updates sent
    unchanged: int = 0  # v1 diffs that did not change the top-N view: nothing sent
    trades: int = 0
    v1_checksum_failures: int = 0


class V1ToV2:
    """One client connection's v1 -> v2 re-encoding (every recorded frame of its keys, in order)."""

    def __init__(self, precisions: Mapping[str, PairPrecision] | None = None) -> None:
        self.precisions: dict[str, PairPrecision] = dict(precisions or {})  # v2 symbol -> precision
        self.depths: dict[str, int] = {}  # v2 symbol -> subscribed book depth
        self.pairs: dict[str, _Pair] = {}  # v1 pair -> its book state
        self.trade_numbers: dict[str, int] = {}  # v1 pair -> trades seen
        self.stats = TranscodeStats()

    def set_depth(self, symbol: str, depth: int = DEFAULT_BOOK_DEPTH) -> None:
        if depth not in BOOK_DEPTHS:
            raise ValueError(f"book depth {depth} is not one of {BOOK_DEPTHS}")
        self.depths[symbol] = depth
        pair = self.pairs.get(v1_pair(symbol))
        if pair is not None:
            pair.view = None  # a new subscription starts from a snapshot

    def precision(self, symbol: str, levels: Iterable[Sequence[str]] = ()) -> PairPrecision:
        if symbol not in self.precisions:
            found = precision_from_levels(levels)
            if found is None:
                raise ValueError(f"{symbol}: no precision known (no AssetPairs entry, no levels to read it from)")
            self.precisions[symbol] = found
        return self.precisions[symbol]

    def frame(self, text: str) -> list[str]:
        """The v2 pushes for one recorded v1 frame (none for acks, status, pongs, changes below the view)."""
        msg = orjson.loads(text)
        if isinstance(msg, dict):
            return [HEARTBEAT] if msg.get("event") == "heartbeat" else []
        if not isinstance(msg, list) or len(msg) < 4:
            return []
        channel, pair = str(msg[-2]), str(msg[-1])
        if channel == "trade":
            return self._trades(pair, msg[1])
        if channel.startswith("book"):
            return self._book(pair, [p for p in msg[1:-2] if isinstance(p, dict)])
        return []  # ticker, spread, ohlc: not re-encoded

    def _trades(self, pair: str, rows: list[list[str]]) -> list[str]:
        symbol, out = v2_symbol(pair), []
        precision = self.precisions.get(symbol)
        for r in rows:
            n = self.trade_numbers[pair] = self.trade_numbers.get(pair, 0) + 1
            price, qty = (precision.price_text(r[0]), precision.qty_text(r[1])) if precision else (r[0], r[1])
            out.append({"symbol": symbol, "side": "buy" if r[3] == "b" else "sell", "price": price, "qty": qty,
                        "ord_type": "limit" if r[4] == "l" else "market", "trade_id": n, "timestamp": iso_time(r[2])})
        self.stats.trades += len(out)
        return [trade_push("update", out)] if out else []

    def _book(self, pair: str, payloads: list[Mapping[str, Any]]) -> list[str]:
        symbol = v2_symbol(pair)
        self.stats.book_frames += 1
        state = self.pairs.get(pair)
        if state is None:
            state = self.pairs[pair] = _Pair(KrakenBook(pair, 1000))
        snapshot = any("as" in p or "bs" in p for p in payloads)
        if snapshot:
            state.book.on_snapshot(payloads[0])
            state.view = None
        elif state.book.on_update(payloads, 0) is Outcome.CHECKSUM_FAILED:
            self.stats.v1_checksum_failures += 1
            return []  # the recorded book broke: nothing trustworthy to send until the next snapshot
        if not state.book.synced:
            return []
        depth = self.depths.get(symbol, DEFAULT_BOOK_DEPTH)
        bids, asks = state.book.book.top(depth)
        precision = self.precision(symbol, [*bids, *asks])
        new = ({Decimal(lv.price): (precision.price_text(lv.price), precision.qty_text(lv.size)) for lv in bids},
               {Decimal(lv.price): (precision.price_text(lv.price), precision.qty_text(lv.size)) for lv in asks})
        times = [lv[2] for p in payloads for side in ("a", "b", "as", "bs") for lv in p.get(side, ()) if len(lv) > 2]
        stamp = iso_time(max(times, key=Decimal)) if times else None
        checksum = v2_checksum(asks, bids, precision)
        if state.view is None:
            state.view = new
            self.stats.snapshots += 1
            return [book_push("snapshot", symbol, new[0].values(), new[1].values(), checksum, stamp)]
        changes = []
        for old_side, new_side in zip(state.view, new, strict=True):
            side = [lv for price, lv in new_side.items() if old_side.get(price) != lv]
            side += [(p_text, precision.qty_text("0")) for price, (p_text, _) in old_side.items() if price not in new_side]
            changes.append(side)
        state.view = new
        if not changes[0] and not changes[1]:
            self.stats.unchanged += 1
            return []
        self.stats.updates += 1
        return [book_push("update", symbol, changes[0], changes[1], checksum, stamp)]


# ---------------------------------------------------------------- v2 pushes -> our events


def _ns(iso: str) -> int:
    day, _, rest = iso.rstrip("Z").partition(".")
    seconds = int(datetime.strptime(day, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())
    return seconds * 1_000_000_000 + int((rest + "000000000")[:9])


def loads_exact(text: str | bytes) -> Any:
    """JSON with every number kept as its literal text (a v2 price 0.042990 stays "0.042990")."""
    return json.loads(text, parse_float=str, parse_int=str)


@dataclass
class V2BookStats:
    snapshots: int = 0
    updates: int = 0
    checksum_checked: int = 0
    checksum_failures: int = 0


class KrakenV2Parser:
    """Kraken websocket v2 pushes -> Tick, BookUpdate (after each verified push), StreamGap (checksum mismatch)."""

    def __init__(self, precisions: Mapping[str, PairPrecision], publish_levels: int = 25) -> None:
        self.precisions = dict(precisions)
        self.publish_levels = publish_levels
        self.books: dict[str, OrderBook] = {}  # v2 symbol -> book (levels as our precision-formatted strings)
        self.depths: dict[str, int] = {}
        self.stats = V2BookStats()
        self.gaps: list[GapEvent] = []

    def subscribe(self, symbol: str, depth: int = DEFAULT_BOOK_DEPTH) -> None:
        """The depth a book was subscribed at: the book keeps that many levels a side, as Kraken's client must."""
        self.depths[symbol] = depth

    def on_frame(self, data: str | bytes, recv_ns: int) -> list[LiveEvent]:
        msg = loads_exact(data)
        if not isinstance(msg, dict):
            raise ValueError(f"not a Kraken v2 message: {str(data)[:120]}")
        channel = msg.get("channel")
        if channel == "trade":
            return [self._tick(t, recv_ns) for t in msg.get("data", [])]
        if channel == "book":
            return [e for d in msg.get("data", []) for e in self._book(str(msg.get("type")), d, recv_ns)]
        return []  # heartbeat, status, method answers

    @staticmethod
    def _tick(t: Mapping[str, Any], recv_ns: int) -> Tick:
        return Tick(ticker=ticker_for(str(t["symbol"])), trade_id=str(t["trade_id"]), price=str(t["price"]),
                    size=str(t["qty"]), buyer_is_maker=t["side"] == "sell", exchange_time_ns=_ns(str(t["timestamp"])),
                    receive_time_ns=recv_ns)

    def _book(self, kind: str, d: Mapping[str, Any], recv_ns: int) -> list[LiveEvent]:
        symbol = str(d["symbol"])
        precision = self.precisions[symbol]
        bids = [(precision.price_text(lv["price"]), precision.qty_text(lv["qty"])) for lv in d.get("bids", [])]
        asks = [(precision.price_text(lv["price"]), precision.qty_text(lv["qty"])) for lv in d.get("asks", [])]
        book = self.books.get(symbol)
        if kind == "snapshot":
            book = self.books[symbol] = OrderBook(ticker_for(symbol), depth_limit=self.depths.get(symbol))
            book.apply_snapshot(bids, asks)
            self.stats.snapshots += 1
        elif book is None:
            return []  # an update before any snapshot: wait for one
        else:
            book.apply_delta(bids, asks)
            self.stats.updates += 1
        if "checksum" in d:
            self.stats.checksum_checked += 1
            ours = v2_checksum(book.asks(CHECKSUM_LEVELS), book.bids(CHECKSUM_LEVELS), precision)
            if ours != int(d["checksum"]):
                self.stats.checksum_failures += 1
                gap = GapEvent(EXCHANGE, book.ticker, recv_ns, GapHow.CHECKSUM_MISMATCH,
                               detail=f"{symbol}: Kraken v2 checksum {d['checksum']}, our book's {ours}")
                self.gaps.append(gap)
                del self.books[symbol]
                return [stream_gap(gap)]
        top_bids, top_asks = book.top(self.publish_levels)
        return [BookUpdate(ticker=book.ticker, snapshot=True, bids=tuple(BookLevel(lv.price, lv.size) for lv in top_bids),
                           asks=tuple(BookLevel(lv.price, lv.size) for lv in top_asks), receive_time_ns=recv_ns,
                           update_id=self.stats.snapshots + self.stats.updates)]
