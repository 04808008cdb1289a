"""The two-frame envelope of seed 000: every type round-trips, bad frames give countable causes."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from live_relay import codec
from live_relay import messages as m

SAMPLES: list[m.Message] = [
    m.DataRequest(request_id="r", client_id="c", ticker="BINANCE:BTC/USDT", period_seconds=60, start_time=1, end_time=2,
                  notification_topic="RESPONSE:c", submitted_at=3),
    m.IngestorControl(action=m.ControlAction.CANCEL, exchange="BINANCE", request_id="r", config={"k": "v"}),
    m.Tick(ticker="BINANCE:BTC/USDT", trade_id="42", price="60000.01000000", size="0.00100000", buyer_is_maker=True,
           exchange_time_ns=1_723_161_253_000_000_000, receive_time_ns=1_723_161_253_001_234_567),
    m.OHLC(ticker="BINANCE:BTC/USDT", period_seconds=60, open_time=1, open="1.10", high="2", low="0.9", close="1",
           volume="3.000", trade_count=7, closed=True),
    m.Market(ticker="BINANCE:BTC/USDT", exchange_symbol="BTCUSDT", base="BTC", quote="USDT", price_tick="0.01"),
    m.CEPTriggerRequest(trigger_id="t", client_id="c", ticker="BINANCE:BTC/USDT", kind=m.TriggerKind.PRICE_CROSS,
                        level="60000"),
    m.CEPTriggerAck(trigger_id="t", status=m.Status.OK, notification_topic="RESPONSE:c"),
    m.CEPTriggerEvent(trigger_id="t", ticker="BINANCE:BTC/USDT", value="60000.5", event_time_ns=5),
    m.OHLCBatch(kind=m.BatchKind.ROWS, batch_id="b", request_id="r", sequence=1,
                rows=(m.OHLC(ticker="X", open="1"), m.OHLC(ticker="Y", close="2")), ticks=(m.Tick(price="3"),)),
    m.SubmitHistoricalRequest(request_id="r", client_id="c", ticker="BINANCE:BTC/USDT", period_seconds=0,
                              start_time=1, end_time=2, notify=m.NotifyPattern.PER_REQUEST),
    m.SubmitResponse(request_id="r", status=m.Status.ERROR, error_message="why", notification_topic=""),
    m.HistoryReadyNotification(request_id="r", client_id="c", status=m.Status.OK, ticker="BINANCE:BTC/USDT",
                               period_seconds=60, start_time=1, end_time=2, row_count=1440, table="market.ohlc",
                               snapshot_id=-5, completed_at=9),
    m.BookUpdate(ticker="KRAKEN:BTC/USD", snapshot=True, bids=(m.BookLevel("60000.1", "0.5"),),
                 asks=(m.BookLevel("60000.2", "0"),), exchange_time_ns=1, receive_time_ns=2, update_id=3, sequence=4),
    m.TopOfBook(ticker="OKX:BTC/USDT", bid_price="1", bid_size="2", ask_price="3", ask_size="4", sequence=1),
    m.BboWorldView(pair="BTC/USDT", venues=(m.TopOfBook(ticker="OKX:BTC/USDT", bid_price="1"),),
                   best_bid_ticker="OKX:BTC/USDT", best_bid_price="1", crossed=True, event_time_ns=7),
    m.Heatmap(ticker="BYBIT:BTC/USDT", bucket_size="10", buckets=(m.HeatmapBucket("60000", "1.5", "0", 0.25),)),
    m.BookImbalance(ticker="BYBIT:BTC/USDT", depth=10, bid_volume="3", ask_volume="1", imbalance=0.5),
    m.StreamGap(exchange="OKX", ticker="OKX:BTC/USDT", detected_at_ns=9, how="sequence_jump", last_seen=-1),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda x: type(x).__name__)
def test_every_sendable_type_round_trips_through_frames_and_records(msg: m.Message) -> None:
    frames = codec.encode(msg)
    assert frames[0] == bytes([codec.PROTOCOL_VERSION])
    assert frames[1][0] == m.TYPE_OF_CLASS[type(msg)]
    assert codec.decode(frames) == msg
    assert codec.decode_record(codec.encode_record(msg)) == msg
    topic, decoded = codec.decode_sub(codec.encode_pub("RESPONSE:c", msg))
    assert (topic, decoded) == ("RESPONSE:c", msg)


def test_type_ids_are_those_of_seed_000() -> None:
    assert {t.name: int(t) for t in m.MessageType} == {
        "DATA_REQUEST": 1, "DATA_RESPONSE": 2, "INGESTOR_CONTROL": 3, "TICK": 4, "OHLC": 5, "MARKET": 6,
        "OHLC_REQUEST": 7, "RESPONSE": 8, "CEP_TRIGGER_REQUEST": 9, "CEP_TRIGGER_ACK": 10, "CEP_TRIGGER_EVENT": 11,
        "OHLC_BATCH": 12, "SUBMIT_HISTORICAL_REQUEST": 16, "SUBMIT_RESPONSE": 17, "HISTORY_READY": 18,
        # live market data, after seed 000's own ids
        "BOOK_UPDATE": 13, "TOP_OF_BOOK": 14, "BBO_WORLD_VIEW": 15, "HEATMAP": 19, "BOOK_IMBALANCE": 20,
        "STREAM_GAP": 21,
    }  # fmt: skip
    assert set(m.TYPE_OF_CLASS.values()) == set(m.MessageType)


@pytest.mark.parametrize("msg", [m.DataResponse(request_id="r"), m.OHLCRequest(request_id="r"), m.Response(request_id="r")])
def test_deprecated_types_are_decoded_but_never_sent(msg: m.Message) -> None:
    with pytest.raises(codec.DeprecatedMessageError):
        codec.encode(msg)
    from live_relay.proto import marketlake_pb2 as pb

    pb_msg = getattr(pb, type(msg).__name__)(request_id="r")
    payload = bytes([m.TYPE_OF_CLASS[type(msg)]]) + pb_msg.SerializeToString()
    assert codec.decode([codec.VERSION_FRAME, payload]) == msg


@pytest.mark.parametrize(
    ("frames", "cause"),
    [
        ([b"\x01"], "frame_count"),
        ([b"", b"\x10"], "truncated"),
        ([b"\x01\x01", b"\x10"], "malformed"),
        ([b"\x02", b"\x10"], "version_mismatch"),
        ([b"\x01", b""], "truncated"),
        ([b"\x01", b"\x7f"], "unknown_type"),
        ([b"\x01", b"\x10\xff\xff\xff"], "malformed"),
    ],
)
def test_bad_frames_raise_frame_error_with_a_countable_cause(frames: list[bytes], cause: str) -> None:
    with pytest.raises(codec.FrameError) as info:
        codec.decode(frames)
    assert info.value.cause == cause


@given(st.lists(st.binary(max_size=64), min_size=0, max_size=4))
def test_random_frames_never_raise_anything_but_frame_error(frames: list[bytes]) -> None:
    try:
        decoded = codec.decode(frames)
    except codec.FrameError as exc:
        assert exc.cause in {"frame_count", "truncated", "malformed", "version_mismatch", "unknown_type", "unknown_enum"}
    else:
        assert type(decoded) in m.TYPE_OF_CLASS


@given(price=st.decimals(allow_nan=False, allow_infinity=False, places=8).map(str), ts=st.integers(0, 2**62))
def test_tick_decimal_strings_and_ns_times_round_trip_exactly(price: str, ts: int) -> None:
    tick = m.Tick(price=price, size=price, exchange_time_ns=ts)
    assert codec.decode(codec.encode(tick)) == tick


def test_router_identity_frames_are_split_from_the_envelope() -> None:
    env = codec.encode(m.SubmitResponse(request_id="r"))
    assert codec.split_router([b"id1", b"", *env]) == ([b"id1", b""], env)
    assert codec.split_router([b"id1", *env]) == ([b"id1"], env)


def test_frozen_types_match_the_proto_fields() -> None:
    from live_relay.proto import marketlake_pb2 as pb

    for cls in m.TYPE_OF_CLASS:
        proto_fields = {f.name for f in getattr(pb, cls.__name__).DESCRIPTOR.fields}
        assert {f.name for f in msgspec.structs.fields(cls)} == proto_fields, cls.__name__
