"""MEXC spot push frames <-> plain values: decode what the websocket sends, encode what the replay server sends.

Binary frames are one PushDataV3ApiWrapper (proto/mexc_push.proto, MEXC's published field
numbers) whose `body` is aggre.deals, aggre.depth or aggre.bookTicker; text frames are JSON
(subscription answers {"id":0,"code":0,"msg":...} and PONG). Prices and quantities stay the
exact strings sent; versions (fromVersion/toVersion, strings on the wire) become ints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from google.protobuf.message import DecodeError

from ingestors.mexc import config as cfg
from ingestors.mexc.proto import mexc_push_pb2 as pb

__all__ = ["BookTickerPush", "Deal", "DealsPush", "DepthPush", "MexcCodecError", "decode_json", "decode_push",
           "encode_book_ticker", "encode_deals", "encode_depth"]

TAKER_BUY, TAKER_SELL = 1, 2  # PublicAggreDealsV3ApiItem.tradeType


class MexcCodecError(ValueError):
    """A frame that is not what MEXC documents."""


class Deal(NamedTuple):
    price: str
    quantity: str
    trade_type: int  # the taker's side: 1 buy, 2 sell
    time_ms: int


class DealsPush(NamedTuple):
    channel: str
    symbol: str
    send_ms: int
    deals: tuple[Deal, ...]


class DepthPush(NamedTuple):
    channel: str
    symbol: str
    send_ms: int
    from_version: int
    to_version: int
    bids: list[list[str]]  # [[price, quantity], ...]: absolute quantities, "0" removes
    asks: list[list[str]]


class BookTickerPush(NamedTuple):
    channel: str
    symbol: str
    send_ms: int
    bid_price: str
    bid_quantity: str
    ask_price: str
    ask_quantity: str


Push = DealsPush | DepthPush | BookTickerPush


def decode_push(data: bytes) -> Push:
    """One binary websocket frame."""
    msg = pb.PushDataV3ApiWrapper()
    try:
        msg.ParseFromString(data)
    except DecodeError as exc:
        raise MexcCodecError(f"not a PushDataV3ApiWrapper ({exc}): {data[:80]!r}") from None
    body = msg.WhichOneof("body")
    try:
        kind, _interval, chan_symbol = cfg.channel_parts(msg.channel)
    except ValueError as exc:
        raise MexcCodecError(f"{exc} (body {body})") from None
    symbol = msg.symbol if msg.HasField("symbol") else chan_symbol
    send_ms = msg.sendTime if msg.HasField("sendTime") else msg.createTime
    if body == "publicAggreDeals" and kind == cfg.DEALS_KIND:
        deals = tuple(Deal(d.price, d.quantity, d.tradeType, d.time) for d in msg.publicAggreDeals.deals)
        for d in deals:
            if d.trade_type not in (TAKER_BUY, TAKER_SELL) or not d.price or not d.quantity or d.time_ms <= 0:
                raise MexcCodecError(f"{msg.channel}: deal without price, quantity, time or side 1/2: {d}")
        return DealsPush(msg.channel, symbol, send_ms, deals)
    if body == "publicAggreDepths" and kind == cfg.DEPTH_KIND:
        d = msg.publicAggreDepths
        try:
            first, last = int(d.fromVersion), int(d.toVersion)
        except ValueError:
            raise MexcCodecError(f"{msg.channel}: versions {d.fromVersion!r}..{d.toVersion!r} are not integers") from None
        if first > last:
            raise MexcCodecError(f"{msg.channel}: fromVersion {first} > toVersion {last}")
        return DepthPush(msg.channel, symbol, send_ms, first, last, [[x.price, x.quantity] for x in d.bids],
                         [[x.price, x.quantity] for x in d.asks])
    if body == "publicAggreBookTicker" and kind == cfg.BOOK_TICKER_KIND:
        t = msg.publicAggreBookTicker
        return BookTickerPush(msg.channel, symbol, send_ms, t.bidPrice, t.bidQuantity, t.askPrice, t.askQuantity)
    raise MexcCodecError(f"channel {msg.channel!r} with body {body!r}: not a deals, depth or bookTicker push")


def decode_json(text: str | bytes) -> dict[str, Any]:
    """A text frame: {"id", "code", "msg"} (subscription answer, PONG)."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise MexcCodecError(f"text frame is not JSON ({exc}): {text[:120]!r}") from None
    if not isinstance(msg, dict) or "code" not in msg:
        raise MexcCodecError(f"text frame is not an answer {{id, code, msg}}: {text[:120]!r}")
    return msg


def _wrapper(channel: str, symbol: str, send_ms: int) -> pb.PushDataV3ApiWrapper:
    return pb.PushDataV3ApiWrapper(channel=channel, symbol=symbol, sendTime=send_ms)


def _event_type(channel: str) -> str:
    return channel.rpartition("@")[0]  # "spot@public.aggre.deals.v3.api.pb@100ms", as MEXC sends it


def encode_deals(channel: str, symbol: str, deals: Sequence[Deal], send_ms: int) -> bytes:
    msg = _wrapper(channel, symbol, send_ms)
    body = msg.publicAggreDeals
    body.eventType = _event_type(channel)
    for d in deals:
        body.deals.add(price=d.price, quantity=d.quantity, tradeType=d.trade_type, time=d.time_ms)
    return msg.SerializeToString()


def encode_depth(channel: str, symbol: str, from_version: int, to_version: int, bids: Sequence[Sequence[str]],
                 asks: Sequence[Sequence[str]], send_ms: int) -> bytes:
    msg = _wrapper(channel, symbol, send_ms)
    body = msg.publicAggreDepths
    body.eventType, body.fromVersion, body.toVersion = _event_type(channel), str(from_version), str(to_version)
    for price, qty in bids:
        body.bids.add(price=price, quantity=qty)
    for price, qty in asks:
        body.asks.add(price=price, quantity=qty)
    return msg.SerializeToString()


def encode_book_ticker(channel: str, symbol: str, bid_price: str, bid_qty: str, ask_price: str, ask_qty: str,
                       send_ms: int) -> bytes:
    msg = _wrapper(channel, symbol, send_ms)
    t = msg.publicAggreBookTicker
    t.bidPrice, t.bidQuantity, t.askPrice, t.askQuantity = bid_price, bid_qty, ask_price, ask_qty
    return msg.SerializeToString()
