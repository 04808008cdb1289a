"""What an exchange's replay module tells the generic engine: small data and functions, no I/O.

A recorded frame is tagged with a Kind and the subscription keys (channel, symbol)
it belongs to; a client frame is parsed into keys to (un)subscribe plus any direct
replies (pong, error). Keys are the exchange's own names, e.g. ("books", "BTC-USDT")
on OKX or ("orderbook.200", "BTCUSDT") on Bybit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ingestors.replay.history import TradeHistory
    from ingestors.replay.session import HttpAnswer

Key = tuple[str, str]  # (channel, symbol) as the exchange names them; symbol "" for channel-wide keys


class Kind(Enum):
    DATA = "data"  # market data of the keys in FrameTag.keys
    ACK = "ack"  # a subscribe answer; keys from its content, or (empty) those of the recorded send it answers
    CONN = "conn"  # connection-level (Kraken heartbeat): sent to clients replaying that recorded connection
    GREETING = "greeting"  # sent by the exchange on connect, before any subscribe (Kraken systemStatus)
    SKIP = "skip"  # never replayed (answers to the recorder's own pings, unsubscribe acks)


@dataclass(frozen=True)
class FrameTag:
    kind: Kind
    keys: frozenset[Key] = frozenset()
    diff_symbol: str = ""  # set on incremental book updates: the frames the drop/reorder faults act on


@dataclass(frozen=True)
class ClientFrame:
    """What a client's text frame asks for."""

    subscribe: tuple[Key, ...] = ()
    unsubscribe: tuple[Key, ...] = ()
    replies: tuple[str, ...] = ()  # sent back at once (pong, error) in the exchange's format


@dataclass(frozen=True)
class Trade:
    """One recorded trade, strings exactly as the exchange sent them (for the derived REST history)."""

    symbol: str
    ts_ms: int
    price: str
    size: str
    side: str  # "buy" | "sell": the taker side
    trade_id: str
    ts_text: str = ""  # the exchange's own timestamp text where it has one (Kraken "1618678142.557535")

    @property
    def price_d(self) -> Decimal:
        return Decimal(self.price)

    @property
    def size_d(self) -> Decimal:
        return Decimal(self.size)


RouteFactory = Callable[["TradeHistory", "list[HttpAnswer]"], list[web.RouteDef]]  # (derived trades, recorded REST)


def _no_routes(_history: TradeHistory, _recorded: list[HttpAnswer]) -> list[web.RouteDef]:
    return []


def _no_trades(_path: str, _text: str, _keys: frozenset[Key] = frozenset()) -> list[Trade]:
    return []


@dataclass(frozen=True)
class ExchangeReplay:
    """One exchange's replay description (see ingestors/<x>/replay.py)."""

    exchange: str  # ticker name, e.g. "OKX"
    recording: str  # file name in data/cryptofeed/
    port: int  # default port of `marketlake exchange-sim --exchange X`
    classify: Callable[[str], FrameTag]  # a recorded received frame
    client_frame: Callable[[str], ClientFrame]  # a text frame a client sent
    trades: Callable[[str, str, frozenset[Key]], list[Trade]] = _no_trades  # (ws path, frame, its keys) -> its trades
    new_classifier: Callable[[], Callable[[str], FrameTag]] | None = None  # a stateful classify per recorded connection
    rest_routes: RouteFactory = _no_routes  # derived REST endpoints (candles, trades) in the exchange's format
    error_body: Callable[[int, str], str] = lambda status, msg: f'{{"error":"{msg}"}}'  # REST error in its format
    malformed: str = '{"malformed replay fault frame'  # what the malformed-frame fault sends
    ws_paths: dict[str, str] = field(default_factory=dict)  # extra served path -> recorded path it aliases
    renumber: Callable[[str, int], str | None] | None = None  # frame with its connection sequence set to n; None: has none
    first_sequence: int = 0  # the connection sequence of the first frame a client gets
    decode_binary: Callable[[bytes], str] = lambda raw: raw.decode()  # a recorded binary frame -> text to classify
    encode_reply: Callable[[str], str | bytes] = lambda text: text  # replies and injected frames as the exchange sends
    extend_app: Callable[[web.Application], None] | None = None  # more endpoints (Kraken: websocket v2 at /v2)
