"""The one codec of the wire format (seed 000).

Frame 1 is one byte of protocol version; frame 2 is one byte of message type
id followed by the protobuf payload. SUB receivers get a topic frame first and
ROUTER sockets get identity frames first; `decode_sub` and `decode_router`
peel those. Kafka records carry the same bytes as the two frames, joined
(`encode_record` / `decode_record`).

This is the only module that touches the generated protobuf classes.
"""

from __future__ import annotations

import typing
from enum import IntEnum
from functools import cache
from typing import Any

import msgspec
from google.protobuf.message import DecodeError

from live_relay import messages as m
from live_relay.proto import marketlake_pb2 as pb

PROTOCOL_VERSION = 1
VERSION_FRAME = bytes([PROTOCOL_VERSION])

_PB_CLASS: dict[m.MessageType, Any] = {
    m.MessageType.DATA_REQUEST: pb.DataRequest,
    m.MessageType.DATA_RESPONSE: pb.DataResponse,
    m.MessageType.INGESTOR_CONTROL: pb.IngestorControl,
    m.MessageType.TICK: pb.Tick,
    m.MessageType.OHLC: pb.OHLC,
    m.MessageType.MARKET: pb.Market,
    m.MessageType.OHLC_REQUEST: pb.OHLCRequest,
    m.MessageType.RESPONSE: pb.Response,
    m.MessageType.CEP_TRIGGER_REQUEST: pb.CEPTriggerRequest,
    m.MessageType.CEP_TRIGGER_ACK: pb.CEPTriggerAck,
    m.MessageType.CEP_TRIGGER_EVENT: pb.CEPTriggerEvent,
    m.MessageType.OHLC_BATCH: pb.OHLCBatch,
    m.MessageType.SUBMIT_HISTORICAL_REQUEST: pb.SubmitHistoricalRequest,
    m.MessageType.SUBMIT_RESPONSE: pb.SubmitResponse,
    m.MessageType.HISTORY_READY: pb.HistoryReadyNotification,
    m.MessageType.BOOK_UPDATE: pb.BookUpdate,
    m.MessageType.TOP_OF_BOOK: pb.TopOfBook,
    m.MessageType.BBO_WORLD_VIEW: pb.BboWorldView,
    m.MessageType.HEATMAP: pb.Heatmap,
    m.MessageType.BOOK_IMBALANCE: pb.BookImbalance,
    m.MessageType.STREAM_GAP: pb.StreamGap,
}


class FrameError(ValueError):
    """A frame that cannot be decoded. `cause` is a short stable name used as a drop counter label."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail


class DeprecatedMessageError(ValueError):
    """Raised when code tries to send a deprecated type (they are decoded, never sent)."""


# --- conversion between the message Structs and protobuf ----------------------------------------


_SCALAR, _NESTED, _MAP, _ENUM = range(4)


@cache
def _plan(cls: type) -> tuple[tuple[str, int, Any], ...]:
    """How to read each field of `cls` from protobuf, worked out once per class (decoding is a hot path)."""
    hints = typing.get_type_hints(cls)
    plan = []
    for f in msgspec.structs.fields(cls):
        hint = hints[f.name]
        origin = typing.get_origin(hint)
        if origin is tuple:
            plan.append((f.name, _NESTED, typing.get_args(hint)[0]))
        elif origin is dict:
            plan.append((f.name, _MAP, None))
        elif isinstance(hint, type) and issubclass(hint, IntEnum):
            plan.append((f.name, _ENUM, hint))
        else:
            plan.append((f.name, _SCALAR, None))
    return tuple(plan)


def _to_pb(msg: Any, pb_cls: Any) -> Any:
    out = pb_cls()
    _fill_pb(msg, out)
    return out


def _fill_pb(msg: Any, out: Any) -> None:
    msg_cls: type = type(msg)
    for name, kind, _extra in _plan(msg_cls):
        value = getattr(msg, name)
        if kind == _NESTED:
            target = getattr(out, name)
            for item in value:
                _fill_pb(item, target.add())
        elif kind == _MAP:
            getattr(out, name).update(value)
        elif value is not None:
            setattr(out, name, int(value) if kind == _ENUM else value)


def _from_pb(obj: Any, cls: type) -> Any:
    kwargs: dict[str, Any] = {}
    for name, kind, extra in _plan(cls):
        value = getattr(obj, name)
        if kind == _SCALAR:
            kwargs[name] = value
        elif kind == _NESTED:
            kwargs[name] = tuple(_from_pb(item, extra) for item in value)
        elif kind == _MAP:
            kwargs[name] = dict(value)
        else:
            try:
                kwargs[name] = extra(value)
            except ValueError as exc:  # an enum value this version does not know
                raise FrameError("unknown_enum", f"{cls.__name__}.{name}={value}") from exc
    return cls(**kwargs)


# --- envelope ------------------------------------------------------------------------------------


def encode_payload(msg: m.Message) -> bytes:
    """Frame 2: type id byte + protobuf payload."""
    msg_type = m.TYPE_OF_CLASS[type(msg)]
    if msg_type in m.DEPRECATED_TYPES:
        raise DeprecatedMessageError(f"{msg_type.name} is deprecated: it is decoded, never sent")
    return bytes([msg_type]) + _to_pb(msg, _PB_CLASS[msg_type]).SerializeToString()


def encode(msg: m.Message) -> list[bytes]:
    """The two-frame envelope [version, type + payload]."""
    return [VERSION_FRAME, encode_payload(msg)]


def encode_pub(topic: str, msg: m.Message) -> list[bytes]:
    """[topic, version, type + payload] for PUB sockets."""
    return [topic.encode(), VERSION_FRAME, encode_payload(msg)]


def decode_payload(frame: bytes) -> m.Message:
    if len(frame) < 1:
        raise FrameError("truncated", "empty message frame")
    try:
        msg_type = m.MessageType(frame[0])
    except ValueError as exc:
        raise FrameError("unknown_type", f"type id 0x{frame[0]:02x}") from exc
    parsed = _PB_CLASS[msg_type]()
    try:
        parsed.ParseFromString(frame[1:])
    except DecodeError as exc:
        raise FrameError("malformed", f"{msg_type.name} payload does not parse: {exc}") from exc
    return typing.cast(m.Message, _from_pb(parsed, m.CLASS_OF_TYPE[msg_type]))


def decode(frames: list[bytes]) -> m.Message:
    """Decode the two-frame envelope; raises FrameError with a countable cause."""
    if len(frames) != 2:
        raise FrameError("frame_count", f"expected 2 frames, got {len(frames)}")
    version, payload = frames
    if len(version) != 1:
        raise FrameError("truncated" if not version else "malformed", f"version frame of {len(version)} bytes")
    if version[0] != PROTOCOL_VERSION:
        raise FrameError("version_mismatch", f"version {version[0]}, expected {PROTOCOL_VERSION}")
    return decode_payload(payload)


def decode_sub(frames: list[bytes]) -> tuple[str, m.Message]:
    """SUB side: [topic, version, payload]."""
    if len(frames) != 3:
        raise FrameError("frame_count", f"expected topic + 2 frames, got {len(frames)}")
    try:
        topic = frames[0].decode()
    except UnicodeDecodeError as exc:
        raise FrameError("malformed", "topic frame is not UTF-8") from exc
    return topic, decode(frames[1:])


def split_router(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """ROUTER side: identity frames up to the empty delimiter (REQ peers), then the envelope."""
    try:
        delimiter = frames.index(b"")
    except ValueError:
        # DEALER peers may send no delimiter: the identity is the first frame.
        return frames[:1], frames[1:]
    return frames[: delimiter + 1], frames[delimiter + 1 :]


def encode_record(msg: m.Message) -> bytes:
    """A Kafka record value: the same bytes as the two frames, joined."""
    return VERSION_FRAME + encode_payload(msg)


def decode_record(value: bytes | None) -> m.Message:
    if not value or len(value) < 2:
        raise FrameError("truncated", f"record of {0 if not value else len(value)} bytes")
    return decode([value[:1], value[1:]])
