"""The live candle builder: real Binance trades give Binance's candles; updates, closing, late trades, exact decimals."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pyarrow as pa
import pytest
from hypothesis import given, settings, target
from hypothesis import strategies as st

from ingestors.binance.parse import parse_combined_frame, parse_trade_event
from ingestors.binance.replay import ReplayServer
from ingestors.binance.rest import BinanceRest
from live_relay.candles import CandleBuilder, CandleError, format_decimal
from live_relay.messages import OHLC, Tick
from marketlake.recordings import RecordKind, read_session

BTC = "BINANCE:BTC/USDT"
MIN_NS = 60 * 10**9
T0 = 1_723_161_600 * 10**9  # 2024-08-09 00:00 UTC, a minute boundary
DECIMAL_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume")


def trade(tid: int, t_ns: int, price: str, size: str = "1", *, maker: bool = False, ticker: str = BTC) -> Tick:
    return Tick(ticker=ticker, trade_id=str(tid), price=price, size=size, buyer_is_maker=maker, exchange_time_ns=t_ns)


def final_candles(emitted: Iterable[OHLC]) -> dict[tuple[str, int, int], OHLC]:
    """The last final candle of each (ticker, period, open time), without its emission sequence."""
    return {(c.ticker, c.period_seconds, c.open_time): msgspec.structs.replace(c, sequence=0) for c in emitted if c.closed}


def values(c: OHLC) -> tuple[Any, ...]:
    return (c.open_time, c.trade_count, *(Decimal(getattr(c, f)) for f in DECIMAL_FIELDS))


# Real trades --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def btc_path(data_dir: Path) -> Path:
    return data_dir / "binance" / "spot_btcusdt_20240808.gz"


@pytest.fixture(scope="module")
def btc_minutes(btc_path: Path) -> list[OHLC]:
    """1-minute candles of the recording, built from its trade frames in receive order."""
    builder = CandleBuilder([60])
    out: list[OHLC] = []
    for r in read_session([btc_path]).records:
        if r.kind is RecordKind.WS:
            stream, data = parse_combined_frame(r.data)
            if stream.endswith("@trade"):
                out += builder.on_trade(parse_trade_event(data, BTC, r.recv_ns))
    assert builder.stats.trades > 9000 and builder.stats.dropped == 0
    return sorted(final_candles(out + builder.flush()).values(), key=lambda c: c.open_time)


def duckdb_minutes(path: Path) -> list[tuple[Any, ...]]:
    """The same candles computed independently: raw JSON lines -> DuckDB decimals -> GROUP BY minute."""
    rows: dict[str, list[Any]] = {"T": [], "id": [], "p": [], "q": [], "m": []}
    with gzip.open(path, "rt") as fh:
        for line in fh:
            frame = json.loads(line.split(" ", 1)[1])
            if frame.get("stream", "").endswith("@trade"):
                d = frame["data"]
                for k, v in (("T", d["T"]), ("id", d["t"]), ("p", d["p"]), ("q", d["q"]), ("m", d["m"])):
                    rows[k].append(v)
    trades = pa.table(rows)  # noqa: F841 - scanned by name below
    with duckdb.connect() as con:
        return con.sql("""
            WITH t AS (SELECT T, T::HUGEINT * 100000000000 + id AS k, p::DECIMAL(38, 8) AS p, q::DECIMAL(38, 8) AS q, m
                       FROM trades)
            SELECT T // 60000 * 60000000 AS open_time, count(*)::INT AS n, arg_min(p, k), max(p), min(p), arg_max(p, k),
                   sum(q), sum(p * q), coalesce(sum(q) FILTER (NOT m), 0), coalesce(sum(p * q) FILTER (NOT m), 0)
            FROM t GROUP BY ALL ORDER BY open_time""").fetchall()


def test_one_minute_candles_of_the_real_recording_equal_an_independent_duckdb_computation(btc_minutes: list[OHLC],
                                                                                        btc_path: Path) -> None:
    expected = duckdb_minutes(btc_path)
    assert len(expected) == 7  # 23:54 (from :15) through 00:00 (to :01)
    assert [values(c) for c in btc_minutes] == [tuple(Decimal(x) if not isinstance(x, int) else x for x in row)
                                                for row in expected]
    assert all(c.ticker == BTC and c.period_seconds == 60 and c.closed for c in btc_minutes)


def test_fully_covered_minutes_equal_the_klines_of_our_binance_replay_server(btc_minutes: list[OHLC],
                                                                              data_dir: Path) -> None:
    covered = btc_minutes[1:-1]  # the first and last minute are only partly recorded
    with ReplayServer(data_dir).running() as url, BinanceRest(url) as rest:
        klines = [k for page in rest.iter_klines("BTCUSDT", 60, covered[0].open_time, covered[-1].open_time + 60_000_000)
                  for k in page]
    assert len(klines) == len(covered) == 5

    def truncated(c: OHLC) -> tuple[Any, ...]:  # Binance prints quote volumes truncated to 8 decimals
        v = list(values(c))
        for i in (DECIMAL_FIELDS.index("quote_volume") + 2, DECIMAL_FIELDS.index("taker_buy_quote_volume") + 2):
            v[i] = v[i].quantize(Decimal("1e-8"), ROUND_DOWN)
        return tuple(v)

    assert [truncated(c) for c in covered] == [values(k) for k in klines]


# Building, closing, watermark ------------------------------------------------------------------------------


def test_updates_while_open_then_a_final_candle_when_a_later_period_trades() -> None:
    b = CandleBuilder([60])
    u1 = b.on_trade(trade(1, T0 + 1_000_000, "100.50", "2"))
    u2 = b.on_trade(trade(2, T0 + 2_000_000, "101", "1", maker=True))
    u3 = b.on_trade(trade(3, T0 + 3_000_000, "99.5", "0.5"))
    assert [c.closed for c in u1 + u2 + u3] == [False, False, False]
    assert (u3[0].open, u3[0].high, u3[0].low, u3[0].close, u3[0].volume, u3[0].trade_count) == ("100.5", "101", "99.5",
                                                                                                  "99.5", "3.5", 3)
    nxt = b.on_trade(trade(4, T0 + MIN_NS + 5, "102", "1"))
    assert [(c.open_time, c.closed) for c in nxt] == [(T0 // 1000, True), ((T0 + MIN_NS) // 1000, False)]
    final = nxt[0]
    assert msgspec.structs.replace(final, closed=False, sequence=0) == msgspec.structs.replace(u3[0], sequence=0)
    assert final.quote_volume == "351.75" and final.taker_buy_volume == "2.5" and final.taker_buy_quote_volume == "250.75"
    assert [c.sequence for c in u1 + u2 + u3 + nxt] == [1, 2, 3, 4, 5]  # one sequence per topic


def test_watermark_closes_a_quiet_candle_and_flush_closes_the_rest() -> None:
    b = CandleBuilder([60, 300])
    b.on_trade(trade(1, T0 + 10, "5"))
    assert b.advance(BTC, T0 + MIN_NS - 1) == []  # not yet at the end of the minute
    closed = b.advance(BTC, T0 + MIN_NS)
    assert [(c.period_seconds, c.closed) for c in closed] == [(60, True)]
    assert b.advance(BTC, T0) == []  # a watermark never goes back
    rest = b.flush()
    assert [(c.period_seconds, c.open_time, c.closed) for c in rest] == [(300, T0 // 1000, True)]
    assert b.flush() == []


def test_late_trade_within_the_allowed_lateness_reemits_a_corrected_final_candle() -> None:
    b = CandleBuilder([60], allowed_lateness_ns=5 * 10**9)
    b.on_trade(trade(10, T0 + 30 * 10**9, "100"))
    first_final = b.on_trade(trade(12, T0 + MIN_NS + 2 * 10**9, "101"))[0]
    late = b.on_trade(trade(11, T0 + MIN_NS - 1 * 10**9, "90", "3"))  # 3 s older than the newest trade
    assert len(late) == 1 and late[0].closed and late[0].open_time == T0 // 1000
    assert (late[0].open, late[0].low, late[0].close, late[0].volume, late[0].trade_count) == ("100", "90", "90", "4", 2)
    assert late[0].sequence > first_final.sequence
    assert b.stats.late_corrected == 1 and b.stats.dropped == 0
    b.on_trade(trade(13, T0 + 3 * MIN_NS + 1 * 10**9, "102"))  # minute T0 + 2 passes without a trade
    empty_minute = b.on_trade(trade(14, T0 + 3 * MIN_NS - 2 * 10**9, "95"))  # 3 s late, into that empty minute
    assert [(c.open_time, c.close, c.trade_count, c.closed) for c in empty_minute] == [
        ((T0 + 2 * MIN_NS) // 1000, "95", 1, True)]
    exactly = b.on_trade(trade(15, T0 + 3 * MIN_NS - 4 * 10**9, "96"))  # exactly the allowed 5 s: still counted
    assert [(c.trade_count, c.low) for c in exactly] == [(2, "95")] and b.stats.dropped == 0


def test_trade_older_than_the_allowed_lateness_is_dropped_and_counted_per_period() -> None:
    b = CandleBuilder([60, 3600], allowed_lateness_ns=5 * 10**9)
    b.on_trade(trade(1, T0 + 10 * 10**9, "100"))
    b.on_trade(trade(2, T0 + MIN_NS + 20 * 10**9, "100"))
    out = b.on_trade(trade(3, T0 + 50 * 10**9, "1", "7"))  # 30 s late: minute closed; the hour is still open
    assert [(c.period_seconds, c.closed, c.volume, c.low) for c in out] == [(3600, False, "9", "1")]
    assert b.stats.late_dropped == {(BTC, 60): 1} and b.stats.late_corrected == 0


def test_arithmetic_is_exact_and_strings_have_one_normal_form() -> None:
    b = CandleBuilder([60], emit_updates=False)
    b.on_trade(trade(1, T0, "61700.01000000", "0.1"))
    b.on_trade(trade(2, T0 + 1, "0.00000001", "0.2"))
    b.on_trade(Tick(ticker=BTC, trade_id="3", price="1E+2", size="0.00000001", exchange_time_ns=T0 + 2,
                    first_trade_id="40", last_trade_id="44"))
    (c,) = b.flush()
    assert (c.open, c.low, c.close, c.volume) == ("61700.01", "0.00000001", "100", "0.30000001")
    assert c.quote_volume == "6170.001001002"  # 6170.001 + 0.000000002 + 0.000001, no float in sight
    assert c.trade_count == 7  # an aggregate trade of ids 40..44 counts 5 exchange trades
    assert [format_decimal(Decimal(x)) for x in ("0E-8", "1.500", "-0", "120")] == ["0", "1.5", "0", "120"]


@pytest.mark.parametrize("price", ["abc", "NaN", "-1", "Infinity"])
def test_a_trade_with_an_unusable_price_is_refused_with_the_value(price: str) -> None:
    with pytest.raises(CandleError, match=repr(price).replace("[", r"\[")):
        CandleBuilder([60]).on_trade(trade(7, T0, price))


# Arrival order ------------------------------------------------------------------------------------------

LATENESS_NS = 20 * 10**9
trades_and_delays = st.lists(
    st.tuples(st.builds(lambda minute, ms: minute * 60_000 + ms,  # exchange time in ms, near a minute boundary
                        st.integers(1, 2), st.integers(-LATENESS_NS // 10**6, LATENESS_NS // 10**6)),
              st.sampled_from(["99.99", "100", "100.01", "0.5", "250.125"]),
              st.sampled_from(["0.001", "1", "2.5", "0.00000001"]),
              st.booleans(),
              st.one_of(st.just(0), st.just(LATENESS_NS // 10**6), st.integers(0, LATENESS_NS // 10**6)),  # its delay
              st.sampled_from([BTC, "BINANCE:ETH/USDT"])),
    min_size=2, max_size=60)


@settings(max_examples=150, deadline=None)
@given(trades_and_delays)
def test_any_arrival_order_within_the_allowed_lateness_gives_the_same_final_candles(rows: list[tuple[Any, ...]]) -> None:
    ticks = [(trade(i, T0 + ms * 10**6, p, q, maker=m, ticker=tk), delay) for i, (ms, p, q, m, delay, tk) in enumerate(rows)]
    in_order = CandleBuilder([60, 120], allowed_lateness_ns=LATENESS_NS)
    expected = final_candles(in_order.on_trades(sorted((t for t, _ in ticks), key=lambda t: t.exchange_time_ns))
                             + in_order.flush())
    # Arrival = exchange time + delay: no trade arrives after one that is more than the lateness newer.
    arrival = [t for t, delay in sorted(ticks, key=lambda td: td[0].exchange_time_ns + td[1] * 10**6)]
    shuffled = CandleBuilder([60, 120], allowed_lateness_ns=LATENESS_NS)
    got = final_candles(shuffled.on_trades(arrival) + shuffled.flush())
    assert got == expected
    assert shuffled.stats.dropped == 0
    target(shuffled.stats.late_corrected)  # steer towards orders with many late trades
    assert sum(c.trade_count for c in got.values() if c.period_seconds == 120) == len(rows)
