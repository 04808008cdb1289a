"""Binance parsers and venue facts, checked against the real recorded frames (data/binance)."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from ingestors.binance import config as cfg
from ingestors.binance.parse import (
    BOOK_TICKER,
    TRADE,
    BinanceParseError,
    decode_event,
    decode_frame,
    parse_agg_trade,
    parse_combined_frame,
    parse_kline,
    parse_recorded_line,
    parse_trade_event,
    trade_tick,
)
from ingestors.binance.recording import aggregate_trades, load_recordings
from ingestors.binance.schemas import fmt_e8, to_e8

BTC = "BINANCE:BTC/USDT"


def recorded_payloads(data_dir: Path, name: str) -> list[tuple[int, str]]:
    with gzip.open(data_dir / "binance" / name, "rt", encoding="utf-8") as fh:
        return [parse_recorded_line(line) for line in fh]


def test_every_recorded_btc_trade_parses_with_exact_strings(data_dir: Path) -> None:
    trades = 0
    for recv_ns, payload in recorded_payloads(data_dir, "spot_btcusdt_20240808.gz"):
        if '"btcusdt@trade"' not in payload:
            continue
        stream, data = parse_combined_frame(payload)
        tick = parse_trade_event(data, BTC, recv_ns)
        frame = decode_frame(payload)  # the live adapter's typed path gives the same Tick
        assert frame.stream == stream and trade_tick(decode_event(TRADE, frame), BTC, recv_ns) == tick
        raw = orjson.loads(payload)["data"]
        assert stream == "btcusdt@trade"
        assert (tick.price, tick.size, tick.trade_id) == (raw["p"], raw["q"], str(raw["t"]))
        assert tick.exchange_time_ns == raw["T"] * 1_000_000 and tick.receive_time_ns == recv_ns
        assert tick.buyer_is_maker is raw["m"]
        trades += 1
    assert trades == 9757  # the data README: about 9.7k trades


def test_price_strings_round_trip_through_fixed_point(data_dir: Path) -> None:
    rec = load_recordings(data_dir)["BTCUSDT"]
    for t in rec.trades:
        assert fmt_e8(to_e8(t["p"])) == t["p"] and fmt_e8(to_e8(t["q"])) == t["q"]


def test_parse_kline_keeps_decimal_strings_and_uses_microseconds() -> None:
    row = [1723161300000, "61828.00000000", "61860.80000000", "61780.00000000", "61782.25000000",
           "15.07702000", 1723161359999, "932148.06446410", 1255, "6.63029000", "409957.59142730", "0"]
    c = parse_kline(row, BTC, 60)
    assert (c.open, c.high, c.low, c.close, c.volume) == tuple(row[1:6])
    assert (c.quote_volume, c.trade_count, c.taker_buy_volume, c.taker_buy_quote_volume) == (
        row[7], 1255, row[9], row[10])
    assert c.open_time == 1723161300000 * 1000 and c.period_seconds == 60 and c.closed and c.ticker == BTC


@pytest.mark.parametrize(
    ("row", "reason"),
    [([1723161300000, "1", "1"], "unexpected shape"),
     ([1723161300000, "1", "1", "1", "1", "1", 1723161300999, "1", 1, "1", "1", "0"], "spans 1000 ms, not 60 s")],
)
def test_parse_kline_rejects_malformed_rows(row: list[object], reason: str) -> None:
    with pytest.raises(BinanceParseError, match=reason):
        parse_kline(row, BTC, 60)


def test_parse_agg_trade_maps_binance_fields() -> None:
    d = {"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27783, "T": 1498793709153,
         "m": True, "M": True}
    t = parse_agg_trade(d, "BINANCE:ETH/BTC", 5)
    assert (t.trade_id, t.price, t.size, t.first_trade_id, t.last_trade_id) == (
        "26129", "0.01633102", "4.70443515", "27781", "27783")
    assert t.exchange_time_ns == 1498793709153_000_000 and t.buyer_is_maker and t.receive_time_ns == 5
    with pytest.raises(BinanceParseError, match="missing required field `a`"):
        parse_agg_trade({"p": "1"}, BTC)


def test_typed_decoding_names_the_missing_or_mistyped_field() -> None:
    frame = decode_frame('{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":61837.5,"q":"1",'
                         '"T":1,"m":true}}')
    with pytest.raises(BinanceParseError, match=r"btcusdt@trade: Expected `str`, got `float` - at `\$.p`"):
        decode_event(TRADE, frame)
    with pytest.raises(BinanceParseError, match="missing required field `u`"):
        decode_event(BOOK_TICKER, decode_frame('{"stream":"btcusdt@bookTicker","data":{"s":"BTCUSDT"}}'))
    with pytest.raises(BinanceParseError, match="not a combined-stream frame"):
        decode_frame('{"stream":"btcusdt@trade"}')


def test_parse_trade_event_rejects_other_events(data_dir: Path) -> None:
    payload = next(p for _, p in recorded_payloads(data_dir, "spot_btcusdt_20240808.gz") if "bookTicker" in p)
    _, data = parse_combined_frame(payload)
    with pytest.raises(BinanceParseError, match="not a trade event"):
        parse_trade_event(data, BTC)
    with pytest.raises(BinanceParseError, match="not a combined-stream frame"):
        parse_combined_frame('{"lastUpdateId": 1}')


def test_recorded_trades_aggregate_by_binance_rule(data_dir: Path) -> None:
    rec = load_recordings(data_dir)["BTCUSDT"]
    aggs = aggregate_trades(rec.trades, 0)
    by_id = {t["t"]: t for t in rec.trades}
    assert [a.agg_id for a in aggs] == list(range(len(aggs)))
    assert sum(a.last_id - a.first_id + 1 for a in aggs) == len(rec.trades)
    for a in aggs:  # one taker order: same price, side and millisecond, consecutive ids
        members = [by_id[i] for i in range(a.first_id, a.last_id + 1)]
        assert {(t["p"], t["m"], t["T"]) for t in members} == {(fmt_e8(a.price_e8), a.buyer_maker, a.time_ms)}
        assert sum(Decimal(t["q"]) for t in members) == Decimal(fmt_e8(a.qty_e8))
    for x, y in zip(aggs, aggs[1:], strict=False):  # maximal: neighbours could not have been merged
        assert (x.price_e8, x.buyer_maker, x.time_ms) != (y.price_e8, y.buyer_maker, y.time_ms)
    assert len(aggs) < len(rec.trades)


def test_interval_names_and_unsupported_periods() -> None:
    assert [cfg.interval_name(s) for s in (1, 60, 3600, 86400)] == ["1s", "1m", "1h", "1d"]
    with pytest.raises(cfg.UnsupportedIntervalError, match="no kline interval of 7 seconds"):
        cfg.interval_name(7)


@pytest.mark.parametrize("text", ["BINANCE:BTC/USDT", "BTC/USDT", "BTCUSDT", "btcusdt"])
def test_symbol_forms_map_to_binance_symbol_and_back(text: str) -> None:
    assert cfg.exchange_symbol(text) == "BTCUSDT"
    assert cfg.ticker_for(cfg.exchange_symbol(text)) == BTC


def test_symbol_mapping_errors_name_the_value() -> None:
    assert cfg.ticker_for("PEPEFDUSD") == "BINANCE:PEPE/FDUSD"
    with pytest.raises(cfg.SymbolError, match="'BTC-USDT'"):
        cfg.exchange_symbol("BTC-USDT")
    with pytest.raises(cfg.SymbolError, match="'FOO'"):
        cfg.ticker_for("FOO")


def test_every_aggtrade_of_the_cryptofeed_binance_recording_parses_exactly(data_dir: Path) -> None:
    """The 2021 cryptofeed session (aggTrade streams of illiquid pairs): each trade's strings kept as sent."""
    from ingestors.binance.config import ticker_for
    from ingestors.replay.session import read_records

    raw = [orjson.loads(str(r["data"])) for r in read_records(data_dir / "cryptofeed" / "BINANCE.jsonl.zst")
           if r["t"] == "recv" and '@aggTrade"' in str(r.get("data", ""))]  # fmt: skip
    parsed = [parse_agg_trade(parse_combined_frame(orjson.dumps(f).decode())[1], ticker_for(f["data"]["s"])) for f in raw]
    assert [(t.trade_id, t.price, t.size, t.buyer_is_maker, t.exchange_time_ns) for t in parsed] == [
        (str(f["data"]["a"]), f["data"]["p"], f["data"]["q"], f["data"]["m"], f["data"]["T"] * 1_000_000) for f in raw]
    assert parsed and all(t.first_trade_id and t.last_trade_id for t in parsed)
    print(f"\nBINANCE cryptofeed recording: {len(parsed)} aggTrades parsed exactly ({sorted({t.ticker for t in parsed})})")
