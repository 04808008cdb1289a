"""The project's own frozen message types, one per protobuf message of seed 000.

Only live_relay/codec.py converts these to and from the generated protobuf
classes; everything else in the project works with these. Field names and
meanings are those of live_relay/proto/marketlake.proto.

Each is an immutable msgspec Struct (frozen, gc=False), not a frozen dataclass:
messages are made on the hot path of every feed (a trade, a book update, a
candle update each), and a 10-field Tick costs ~0.1 µs to build as a Struct
against ~1.4 µs as a frozen dataclass. They hold only strings, numbers, enums,
dicts of strings and tuples of messages, never a cycle, so they stay out of the
garbage collector. Use msgspec.structs.replace / asdict / fields on them.
"""

from __future__ import annotations

from enum import IntEnum

import msgspec


class MessageType(IntEnum):
    """Type ids of seed 000 (first byte of frame 2)."""

    DATA_REQUEST = 0x01
    DATA_RESPONSE = 0x02  # deprecated: decoded, never sent
    INGESTOR_CONTROL = 0x03
    TICK = 0x04
    OHLC = 0x05
    MARKET = 0x06
    OHLC_REQUEST = 0x07  # deprecated
    RESPONSE = 0x08  # deprecated
    CEP_TRIGGER_REQUEST = 0x09
    CEP_TRIGGER_ACK = 0x0A
    CEP_TRIGGER_EVENT = 0x0B
    OHLC_BATCH = 0x0C
    BOOK_UPDATE = 0x0D
    TOP_OF_BOOK = 0x0E
    BBO_WORLD_VIEW = 0x0F
    SUBMIT_HISTORICAL_REQUEST = 0x10
    SUBMIT_RESPONSE = 0x11
    HISTORY_READY = 0x12
    HEATMAP = 0x13
    BOOK_IMBALANCE = 0x14
    STREAM_GAP = 0x15


DEPRECATED_TYPES = frozenset({MessageType.DATA_RESPONSE, MessageType.OHLC_REQUEST, MessageType.RESPONSE})


class Status(IntEnum):
    UNSPECIFIED = 0
    OK = 1
    ERROR = 2


class NotifyPattern(IntEnum):
    UNSPECIFIED = 0
    PER_CLIENT = 1
    PER_REQUEST = 2


class RequestKind(IntEnum):
    UNSPECIFIED = 0
    HISTORICAL = 1
    REALTIME = 2


class ControlAction(IntEnum):
    UNSPECIFIED = 0
    CANCEL = 1
    SHUTDOWN = 2
    CONFIG = 3


class TriggerKind(IntEnum):
    UNSPECIFIED = 0
    PRICE_CROSS = 1
    VOLUME_OVER_WINDOW = 2


class BatchKind(IntEnum):
    UNSPECIFIED = 0
    METADATA = 1
    ROWS = 2
    END = 3


class DataRequest(msgspec.Struct, frozen=True, gc=False):
    request_id: str = ""
    client_id: str = ""
    kind: RequestKind = RequestKind.HISTORICAL
    ticker: str = ""
    period_seconds: int = 0
    start_time: int = 0
    end_time: int = 0
    notification_topic: str = ""
    submitted_at: int = 0


class Tick(msgspec.Struct, frozen=True, gc=False):
    ticker: str = ""
    trade_id: str = ""
    price: str = ""
    size: str = ""
    buyer_is_maker: bool = False
    exchange_time_ns: int = 0
    receive_time_ns: int = 0
    first_trade_id: str = ""
    last_trade_id: str = ""
    sequence: int = 0


class OHLC(msgspec.Struct, frozen=True, gc=False):
    ticker: str = ""
    period_seconds: int = 0
    open_time: int = 0
    open: str = ""
    high: str = ""
    low: str = ""
    close: str = ""
    volume: str = ""
    quote_volume: str = ""
    trade_count: int = 0
    taker_buy_volume: str = ""
    taker_buy_quote_volume: str = ""
    closed: bool = False
    sequence: int = 0


class DataResponse(msgspec.Struct, frozen=True, gc=False):
    request_id: str = ""
    status: Status = Status.UNSPECIFIED
    error_message: str = ""
    rows: tuple[OHLC, ...] = ()


class IngestorControl(msgspec.Struct, frozen=True, gc=False):
    action: ControlAction = ControlAction.UNSPECIFIED
    exchange: str = ""
    request_id: str = ""
    config: dict[str, str] = msgspec.field(default_factory=dict)


class Market(msgspec.Struct, frozen=True, gc=False):
    ticker: str = ""
    exchange_symbol: str = ""
    base: str = ""
    quote: str = ""
    price_tick: str = ""
    size_step: str = ""
    min_notional: str = ""
    status: str = ""


class OHLCRequest(msgspec.Struct, frozen=True, gc=False):
    request_id: str = ""
    ticker: str = ""
    period_seconds: int = 0
    start_time: int = 0
    end_time: int = 0


class Response(msgspec.Struct, frozen=True, gc=False):
    request_id: str = ""
    status: Status = Status.UNSPECIFIED
    error_message: str = ""


class CEPTriggerRequest(msgspec.Struct, frozen=True, gc=False):
    trigger_id: str = ""
    client_id: str = ""
    ticker: str = ""
    kind: TriggerKind = TriggerKind.UNSPECIFIED
    level: str = ""
    window_seconds: int = 0
    once: bool = False


class CEPTriggerAck(msgspec.Struct, frozen=True, gc=False):
    trigger_id: str = ""
    status: Status = Status.UNSPECIFIED
    error_message: str = ""
    notification_topic: str = ""


class CEPTriggerEvent(msgspec.Struct, frozen=True, gc=False):
    trigger_id: str = ""
    ticker: str = ""
    value: str = ""
    event_time_ns: int = 0
    detail: str = ""


class OHLCBatch(msgspec.Struct, frozen=True, gc=False):
    kind: BatchKind = BatchKind.UNSPECIFIED
    batch_id: str = ""
    request_id: str = ""
    client_id: str = ""
    ticker: str = ""
    period_seconds: int = 0
    start_time: int = 0
    end_time: int = 0
    notification_topic: str = ""
    source: str = ""
    sequence: int = 0
    rows: tuple[OHLC, ...] = ()
    ticks: tuple[Tick, ...] = ()
    status: Status = Status.UNSPECIFIED
    error_message: str = ""
    row_count: int = 0
    fetched_at: int = 0
    ingestor_id: str = ""


class SubmitHistoricalRequest(msgspec.Struct, frozen=True, gc=False):
    request_id: str = ""
    client_id: str = ""
    ticker: str = ""
    period_seconds: int = 0
    start_time: int = 0
    end_time: int = 0
    notify: NotifyPattern = NotifyPattern.PER_CLIENT


class SubmitResponse(msgspec.Struct, frozen=True, gc=False):
    request_id: str = ""
    status: Status = Status.UNSPECIFIED
    error_message: str = ""
    notification_topic: str = ""


class HistoryReadyNotification(msgspec.Struct, frozen=True, gc=False):
    request_id: str = ""
    client_id: str = ""
    status: Status = Status.UNSPECIFIED
    ticker: str = ""
    period_seconds: int = 0
    start_time: int = 0
    end_time: int = 0
    row_count: int = 0
    table: str = ""
    snapshot_id: int = 0
    error_message: str = ""
    completed_at: int = 0


class BookLevel(msgspec.Struct, frozen=True, gc=False):
    price: str = ""
    size: str = ""


class BookUpdate(msgspec.Struct, frozen=True, gc=False):
    ticker: str = ""
    snapshot: bool = False
    bids: tuple[BookLevel, ...] = ()
    asks: tuple[BookLevel, ...] = ()
    exchange_time_ns: int = 0
    receive_time_ns: int = 0
    update_id: int = 0
    sequence: int = 0


class TopOfBook(msgspec.Struct, frozen=True, gc=False):
    ticker: str = ""
    bid_price: str = ""
    bid_size: str = ""
    ask_price: str = ""
    ask_size: str = ""
    exchange_time_ns: int = 0
    receive_time_ns: int = 0
    sequence: int = 0


class BboWorldView(msgspec.Struct, frozen=True, gc=False):
    pair: str = ""
    venues: tuple[TopOfBook, ...] = ()
    best_bid_ticker: str = ""
    best_bid_price: str = ""
    best_ask_ticker: str = ""
    best_ask_price: str = ""
    crossed: bool = False
    event_time_ns: int = 0
    sequence: int = 0


class HeatmapBucket(msgspec.Struct, frozen=True, gc=False):
    price: str = ""
    bid_size: str = ""
    ask_size: str = ""
    intensity: float = 0.0


class Heatmap(msgspec.Struct, frozen=True, gc=False):
    ticker: str = ""
    bucket_size: str = ""
    event_time_ns: int = 0
    buckets: tuple[HeatmapBucket, ...] = ()
    sequence: int = 0


class BookImbalance(msgspec.Struct, frozen=True, gc=False):
    ticker: str = ""
    depth: int = 0
    bid_volume: str = ""
    ask_volume: str = ""
    imbalance: float = 0.0
    event_time_ns: int = 0
    sequence: int = 0


class StreamGap(msgspec.Struct, frozen=True, gc=False):
    exchange: str = ""
    ticker: str = ""
    detected_at_ns: int = 0
    how: str = ""
    last_seen: int = -1  # -1 = unknown (exchanges without update ids)
    first_missing: int = -1
    next_received: int = -1
    detail: str = ""


Message = (
    DataRequest
    | DataResponse
    | IngestorControl
    | Tick
    | OHLC
    | Market
    | OHLCRequest
    | Response
    | CEPTriggerRequest
    | CEPTriggerAck
    | CEPTriggerEvent
    | OHLCBatch
    | SubmitHistoricalRequest
    | SubmitResponse
    | HistoryReadyNotification
    | BookUpdate
    | TopOfBook
    | BboWorldView
    | Heatmap
    | BookImbalance
    | StreamGap
)

TYPE_OF_CLASS: dict[type, MessageType] = {
    DataRequest: MessageType.DATA_REQUEST,
    DataResponse: MessageType.DATA_RESPONSE,
    IngestorControl: MessageType.INGESTOR_CONTROL,
    Tick: MessageType.TICK,
    OHLC: MessageType.OHLC,
    Market: MessageType.MARKET,
    OHLCRequest: MessageType.OHLC_REQUEST,
    Response: MessageType.RESPONSE,
    CEPTriggerRequest: MessageType.CEP_TRIGGER_REQUEST,
    CEPTriggerAck: MessageType.CEP_TRIGGER_ACK,
    CEPTriggerEvent: MessageType.CEP_TRIGGER_EVENT,
    OHLCBatch: MessageType.OHLC_BATCH,
    SubmitHistoricalRequest: MessageType.SUBMIT_HISTORICAL_REQUEST,
    SubmitResponse: MessageType.SUBMIT_RESPONSE,
    HistoryReadyNotification: MessageType.HISTORY_READY,
    BookUpdate: MessageType.BOOK_UPDATE,
    TopOfBook: MessageType.TOP_OF_BOOK,
    BboWorldView: MessageType.BBO_WORLD_VIEW,
    Heatmap: MessageType.HEATMAP,
    BookImbalance: MessageType.BOOK_IMBALANCE,
    StreamGap: MessageType.STREAM_GAP,
}
CLASS_OF_TYPE: dict[MessageType, type] = {v: k for k, v in TYPE_OF_CLASS.items()}
