from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    OK: _ClassVar[Status]
    ERROR: _ClassVar[Status]

class NotifyPattern(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTIFY_UNSPECIFIED: _ClassVar[NotifyPattern]
    PER_CLIENT: _ClassVar[NotifyPattern]
    PER_REQUEST: _ClassVar[NotifyPattern]
STATUS_UNSPECIFIED: Status
OK: Status
ERROR: Status
NOTIFY_UNSPECIFIED: NotifyPattern
PER_CLIENT: NotifyPattern
PER_REQUEST: NotifyPattern

class DataRequest(_message.Message):
    __slots__ = ("request_id", "client_id", "kind", "ticker", "period_seconds", "start_time", "end_time", "notification_topic", "submitted_at")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[DataRequest.Kind]
        HISTORICAL: _ClassVar[DataRequest.Kind]
        REALTIME: _ClassVar[DataRequest.Kind]
    KIND_UNSPECIFIED: DataRequest.Kind
    HISTORICAL: DataRequest.Kind
    REALTIME: DataRequest.Kind
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TICKER_FIELD_NUMBER: _ClassVar[int]
    PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_TOPIC_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    client_id: str
    kind: DataRequest.Kind
    ticker: str
    period_seconds: int
    start_time: int
    end_time: int
    notification_topic: str
    submitted_at: int
    def __init__(self, request_id: _Optional[str] = ..., client_id: _Optional[str] = ..., kind: _Optional[_Union[DataRequest.Kind, str]] = ..., ticker: _Optional[str] = ..., period_seconds: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., notification_topic: _Optional[str] = ..., submitted_at: _Optional[int] = ...) -> None: ...

class DataResponse(_message.Message):
    __slots__ = ("request_id", "status", "error_message", "rows")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: Status
    error_message: str
    rows: _containers.RepeatedCompositeFieldContainer[OHLC]
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., error_message: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[OHLC, _Mapping]]] = ...) -> None: ...

class IngestorControl(_message.Message):
    __slots__ = ("action", "exchange", "request_id", "config")
    class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ACTION_UNSPECIFIED: _ClassVar[IngestorControl.Action]
        CANCEL: _ClassVar[IngestorControl.Action]
        SHUTDOWN: _ClassVar[IngestorControl.Action]
        CONFIG: _ClassVar[IngestorControl.Action]
    ACTION_UNSPECIFIED: IngestorControl.Action
    CANCEL: IngestorControl.Action
    SHUTDOWN: IngestorControl.Action
    CONFIG: IngestorControl.Action
    class ConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACTION_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    action: IngestorControl.Action
    exchange: str
    request_id: str
    config: _containers.ScalarMap[str, str]
    def __init__(self, action: _Optional[_Union[IngestorControl.Action, str]] = ..., exchange: _Optional[str] = ..., request_id: _Optional[str] = ..., config: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Tick(_message.Message):
    __slots__ = ("ticker", "trade_id", "price", "size", "buyer_is_maker", "exchange_time_ns", "receive_time_ns", "first_trade_id", "last_trade_id", "sequence")
    TICKER_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BUYER_IS_MAKER_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    FIRST_TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ticker: str
    trade_id: str
    price: str
    size: str
    buyer_is_maker: bool
    exchange_time_ns: int
    receive_time_ns: int
    first_trade_id: str
    last_trade_id: str
    sequence: int
    def __init__(self, ticker: _Optional[str] = ..., trade_id: _Optional[str] = ..., price: _Optional[str] = ..., size: _Optional[str] = ..., buyer_is_maker: _Optional[bool] = ..., exchange_time_ns: _Optional[int] = ..., receive_time_ns: _Optional[int] = ..., first_trade_id: _Optional[str] = ..., last_trade_id: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class OHLC(_message.Message):
    __slots__ = ("ticker", "period_seconds", "open_time", "open", "high", "low", "close", "volume", "quote_volume", "trade_count", "taker_buy_volume", "taker_buy_quote_volume", "closed", "sequence")
    TICKER_FIELD_NUMBER: _ClassVar[int]
    PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OPEN_TIME_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    QUOTE_VOLUME_FIELD_NUMBER: _ClassVar[int]
    TRADE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TAKER_BUY_VOLUME_FIELD_NUMBER: _ClassVar[int]
    TAKER_BUY_QUOTE_VOLUME_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ticker: str
    period_seconds: int
    open_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trade_count: int
    taker_buy_volume: str
    taker_buy_quote_volume: str
    closed: bool
    sequence: int
    def __init__(self, ticker: _Optional[str] = ..., period_seconds: _Optional[int] = ..., open_time: _Optional[int] = ..., open: _Optional[str] = ..., high: _Optional[str] = ..., low: _Optional[str] = ..., close: _Optional[str] = ..., volume: _Optional[str] = ..., quote_volume: _Optional[str] = ..., trade_count: _Optional[int] = ..., taker_buy_volume: _Optional[str] = ..., taker_buy_quote_volume: _Optional[str] = ..., closed: _Optional[bool] = ..., sequence: _Optional[int] = ...) -> None: ...

class Market(_message.Message):
    __slots__ = ("ticker", "exchange_symbol", "base", "quote", "price_tick", "size_step", "min_notional", "status")
    TICKER_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    PRICE_TICK_FIELD_NUMBER: _ClassVar[int]
    SIZE_STEP_FIELD_NUMBER: _ClassVar[int]
    MIN_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ticker: str
    exchange_symbol: str
    base: str
    quote: str
    price_tick: str
    size_step: str
    min_notional: str
    status: str
    def __init__(self, ticker: _Optional[str] = ..., exchange_symbol: _Optional[str] = ..., base: _Optional[str] = ..., quote: _Optional[str] = ..., price_tick: _Optional[str] = ..., size_step: _Optional[str] = ..., min_notional: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class OHLCRequest(_message.Message):
    __slots__ = ("request_id", "ticker", "period_seconds", "start_time", "end_time")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TICKER_FIELD_NUMBER: _ClassVar[int]
    PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    ticker: str
    period_seconds: int
    start_time: int
    end_time: int
    def __init__(self, request_id: _Optional[str] = ..., ticker: _Optional[str] = ..., period_seconds: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("request_id", "status", "error_message")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: Status
    error_message: str
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., error_message: _Optional[str] = ...) -> None: ...

class CEPTriggerRequest(_message.Message):
    __slots__ = ("trigger_id", "client_id", "ticker", "kind", "level", "window_seconds", "once")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[CEPTriggerRequest.Kind]
        PRICE_CROSS: _ClassVar[CEPTriggerRequest.Kind]
        VOLUME_OVER_WINDOW: _ClassVar[CEPTriggerRequest.Kind]
    KIND_UNSPECIFIED: CEPTriggerRequest.Kind
    PRICE_CROSS: CEPTriggerRequest.Kind
    VOLUME_OVER_WINDOW: CEPTriggerRequest.Kind
    TRIGGER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    TICKER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ONCE_FIELD_NUMBER: _ClassVar[int]
    trigger_id: str
    client_id: str
    ticker: str
    kind: CEPTriggerRequest.Kind
    level: str
    window_seconds: int
    once: bool
    def __init__(self, trigger_id: _Optional[str] = ..., client_id: _Optional[str] = ..., ticker: _Optional[str] = ..., kind: _Optional[_Union[CEPTriggerRequest.Kind, str]] = ..., level: _Optional[str] = ..., window_seconds: _Optional[int] = ..., once: _Optional[bool] = ...) -> None: ...

class CEPTriggerAck(_message.Message):
    __slots__ = ("trigger_id", "status", "error_message", "notification_topic")
    TRIGGER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_TOPIC_FIELD_NUMBER: _ClassVar[int]
    trigger_id: str
    status: Status
    error_message: str
    notification_topic: str
    def __init__(self, trigger_id: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., error_message: _Optional[str] = ..., notification_topic: _Optional[str] = ...) -> None: ...

class CEPTriggerEvent(_message.Message):
    __slots__ = ("trigger_id", "ticker", "value", "event_time_ns", "detail")
    TRIGGER_ID_FIELD_NUMBER: _ClassVar[int]
    TICKER_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    trigger_id: str
    ticker: str
    value: str
    event_time_ns: int
    detail: str
    def __init__(self, trigger_id: _Optional[str] = ..., ticker: _Optional[str] = ..., value: _Optional[str] = ..., event_time_ns: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class OHLCBatch(_message.Message):
    __slots__ = ("kind", "batch_id", "request_id", "client_id", "ticker", "period_seconds", "start_time", "end_time", "notification_topic", "source", "sequence", "rows", "ticks", "status", "error_message", "row_count", "fetched_at", "ingestor_id")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[OHLCBatch.Kind]
        METADATA: _ClassVar[OHLCBatch.Kind]
        ROWS: _ClassVar[OHLCBatch.Kind]
        END: _ClassVar[OHLCBatch.Kind]
    KIND_UNSPECIFIED: OHLCBatch.Kind
    METADATA: OHLCBatch.Kind
    ROWS: OHLCBatch.Kind
    END: OHLCBatch.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    TICKER_FIELD_NUMBER: _ClassVar[int]
    PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_TOPIC_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TICKS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    FETCHED_AT_FIELD_NUMBER: _ClassVar[int]
    INGESTOR_ID_FIELD_NUMBER: _ClassVar[int]
    kind: OHLCBatch.Kind
    batch_id: str
    request_id: str
    client_id: str
    ticker: str
    period_seconds: int
    start_time: int
    end_time: int
    notification_topic: str
    source: str
    sequence: int
    rows: _containers.RepeatedCompositeFieldContainer[OHLC]
    ticks: _containers.RepeatedCompositeFieldContainer[Tick]
    status: Status
    error_message: str
    row_count: int
    fetched_at: int
    ingestor_id: str
    def __init__(self, kind: _Optional[_Union[OHLCBatch.Kind, str]] = ..., batch_id: _Optional[str] = ..., request_id: _Optional[str] = ..., client_id: _Optional[str] = ..., ticker: _Optional[str] = ..., period_seconds: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., notification_topic: _Optional[str] = ..., source: _Optional[str] = ..., sequence: _Optional[int] = ..., rows: _Optional[_Iterable[_Union[OHLC, _Mapping]]] = ..., ticks: _Optional[_Iterable[_Union[Tick, _Mapping]]] = ..., status: _Optional[_Union[Status, str]] = ..., error_message: _Optional[str] = ..., row_count: _Optional[int] = ..., fetched_at: _Optional[int] = ..., ingestor_id: _Optional[str] = ...) -> None: ...

class SubmitHistoricalRequest(_message.Message):
    __slots__ = ("request_id", "client_id", "ticker", "period_seconds", "start_time", "end_time", "notify")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    TICKER_FIELD_NUMBER: _ClassVar[int]
    PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    client_id: str
    ticker: str
    period_seconds: int
    start_time: int
    end_time: int
    notify: NotifyPattern
    def __init__(self, request_id: _Optional[str] = ..., client_id: _Optional[str] = ..., ticker: _Optional[str] = ..., period_seconds: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., notify: _Optional[_Union[NotifyPattern, str]] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("request_id", "status", "error_message", "notification_topic")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_TOPIC_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: Status
    error_message: str
    notification_topic: str
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., error_message: _Optional[str] = ..., notification_topic: _Optional[str] = ...) -> None: ...

class HistoryReadyNotification(_message.Message):
    __slots__ = ("request_id", "client_id", "status", "ticker", "period_seconds", "start_time", "end_time", "row_count", "table", "snapshot_id", "error_message", "completed_at")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TICKER_FIELD_NUMBER: _ClassVar[int]
    PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    client_id: str
    status: Status
    ticker: str
    period_seconds: int
    start_time: int
    end_time: int
    row_count: int
    table: str
    snapshot_id: int
    error_message: str
    completed_at: int
    def __init__(self, request_id: _Optional[str] = ..., client_id: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., ticker: _Optional[str] = ..., period_seconds: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., row_count: _Optional[int] = ..., table: _Optional[str] = ..., snapshot_id: _Optional[int] = ..., error_message: _Optional[str] = ..., completed_at: _Optional[int] = ...) -> None: ...

class BookLevel(_message.Message):
    __slots__ = ("price", "size")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    price: str
    size: str
    def __init__(self, price: _Optional[str] = ..., size: _Optional[str] = ...) -> None: ...

class BookUpdate(_message.Message):
    __slots__ = ("ticker", "snapshot", "bids", "asks", "exchange_time_ns", "receive_time_ns", "update_id", "sequence")
    TICKER_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    BIDS_FIELD_NUMBER: _ClassVar[int]
    ASKS_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ticker: str
    snapshot: bool
    bids: _containers.RepeatedCompositeFieldContainer[BookLevel]
    asks: _containers.RepeatedCompositeFieldContainer[BookLevel]
    exchange_time_ns: int
    receive_time_ns: int
    update_id: int
    sequence: int
    def __init__(self, ticker: _Optional[str] = ..., snapshot: _Optional[bool] = ..., bids: _Optional[_Iterable[_Union[BookLevel, _Mapping]]] = ..., asks: _Optional[_Iterable[_Union[BookLevel, _Mapping]]] = ..., exchange_time_ns: _Optional[int] = ..., receive_time_ns: _Optional[int] = ..., update_id: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class TopOfBook(_message.Message):
    __slots__ = ("ticker", "bid_price", "bid_size", "ask_price", "ask_size", "exchange_time_ns", "receive_time_ns", "sequence")
    TICKER_FIELD_NUMBER: _ClassVar[int]
    BID_PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASK_PRICE_FIELD_NUMBER: _ClassVar[int]
    ASK_SIZE_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ticker: str
    bid_price: str
    bid_size: str
    ask_price: str
    ask_size: str
    exchange_time_ns: int
    receive_time_ns: int
    sequence: int
    def __init__(self, ticker: _Optional[str] = ..., bid_price: _Optional[str] = ..., bid_size: _Optional[str] = ..., ask_price: _Optional[str] = ..., ask_size: _Optional[str] = ..., exchange_time_ns: _Optional[int] = ..., receive_time_ns: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class BboWorldView(_message.Message):
    __slots__ = ("pair", "venues", "best_bid_ticker", "best_bid_price", "best_ask_ticker", "best_ask_price", "crossed", "event_time_ns", "sequence")
    PAIR_FIELD_NUMBER: _ClassVar[int]
    VENUES_FIELD_NUMBER: _ClassVar[int]
    BEST_BID_TICKER_FIELD_NUMBER: _ClassVar[int]
    BEST_BID_PRICE_FIELD_NUMBER: _ClassVar[int]
    BEST_ASK_TICKER_FIELD_NUMBER: _ClassVar[int]
    BEST_ASK_PRICE_FIELD_NUMBER: _ClassVar[int]
    CROSSED_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    pair: str
    venues: _containers.RepeatedCompositeFieldContainer[TopOfBook]
    best_bid_ticker: str
    best_bid_price: str
    best_ask_ticker: str
    best_ask_price: str
    crossed: bool
    event_time_ns: int
    sequence: int
    def __init__(self, pair: _Optional[str] = ..., venues: _Optional[_Iterable[_Union[TopOfBook, _Mapping]]] = ..., best_bid_ticker: _Optional[str] = ..., best_bid_price: _Optional[str] = ..., best_ask_ticker: _Optional[str] = ..., best_ask_price: _Optional[str] = ..., crossed: _Optional[bool] = ..., event_time_ns: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class HeatmapBucket(_message.Message):
    __slots__ = ("price", "bid_size", "ask_size", "intensity")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASK_SIZE_FIELD_NUMBER: _ClassVar[int]
    INTENSITY_FIELD_NUMBER: _ClassVar[int]
    price: str
    bid_size: str
    ask_size: str
    intensity: float
    def __init__(self, price: _Optional[str] = ..., bid_size: _Optional[str] = ..., ask_size: _Optional[str] = ..., intensity: _Optional[float] = ...) -> None: ...

class Heatmap(_message.Message):
    __slots__ = ("ticker", "bucket_size", "event_time_ns", "buckets", "sequence")
    TICKER_FIELD_NUMBER: _ClassVar[int]
    BUCKET_SIZE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ticker: str
    bucket_size: str
    event_time_ns: int
    buckets: _containers.RepeatedCompositeFieldContainer[HeatmapBucket]
    sequence: int
    def __init__(self, ticker: _Optional[str] = ..., bucket_size: _Optional[str] = ..., event_time_ns: _Optional[int] = ..., buckets: _Optional[_Iterable[_Union[HeatmapBucket, _Mapping]]] = ..., sequence: _Optional[int] = ...) -> None: ...

class BookImbalance(_message.Message):
    __slots__ = ("ticker", "depth", "bid_volume", "ask_volume", "imbalance", "event_time_ns", "sequence")
    TICKER_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    BID_VOLUME_FIELD_NUMBER: _ClassVar[int]
    ASK_VOLUME_FIELD_NUMBER: _ClassVar[int]
    IMBALANCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ticker: str
    depth: int
    bid_volume: str
    ask_volume: str
    imbalance: float
    event_time_ns: int
    sequence: int
    def __init__(self, ticker: _Optional[str] = ..., depth: _Optional[int] = ..., bid_volume: _Optional[str] = ..., ask_volume: _Optional[str] = ..., imbalance: _Optional[float] = ..., event_time_ns: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class StreamGap(_message.Message):
    __slots__ = ("exchange", "ticker", "detected_at_ns", "how", "last_seen", "first_missing", "next_received", "detail")
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    TICKER_FIELD_NUMBER: _ClassVar[int]
    DETECTED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    HOW_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    FIRST_MISSING_FIELD_NUMBER: _ClassVar[int]
    NEXT_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    exchange: str
    ticker: str
    detected_at_ns: int
    how: str
    last_seen: int
    first_missing: int
    next_received: int
    detail: str
    def __init__(self, exchange: _Optional[str] = ..., ticker: _Optional[str] = ..., detected_at_ns: _Optional[int] = ..., how: _Optional[str] = ..., last_seen: _Optional[int] = ..., first_missing: _Optional[int] = ..., next_received: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...
