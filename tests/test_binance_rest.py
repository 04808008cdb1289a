"""BinanceRest against the real replay server (pagination, rate limits, retries, errors, ccxt agreement),
and the server's weight accounting and fault hooks on the wire."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import ccxt
import httpx
import pytest

from ingestors.binance.config import SYMBOL_SPECS, UnsupportedIntervalError
from ingestors.binance.replay import FaultConfig, ReplayServer
from ingestors.binance.rest import BinanceRest, ExchangeError
from marketlake.kafka_broker import free_port

DAY_US = 1723075200000 * 1000  # 2024-08-08 00:00 UTC, a day that ends in the real recording
HOUR_US = 3_600_000_000
MIN_US = 60_000_000


def get(url: str, **params: object) -> httpx.Response:
    return httpx.get(url, params=params, timeout=30)  # type: ignore[arg-type]


@pytest.fixture
def server(data_dir: Path) -> ReplayServer:
    return ReplayServer(data_dir)


@pytest.fixture
def base(server: ReplayServer) -> Iterator[str]:
    with server.running() as url:
        yield url


def test_full_day_of_minute_klines_is_1440_rows_in_two_pages(base: str) -> None:
    with BinanceRest(base) as rest:
        pages = list(rest.iter_klines("BINANCE:BTC/USDT", 60, DAY_US, DAY_US + 24 * HOUR_US))
    assert [len(p) for p in pages] == [1000, 440]
    rows = [c for p in pages for c in p]
    assert [c.open_time for c in rows] == [DAY_US + i * MIN_US for i in range(1440)]
    assert all(c.ticker == "BINANCE:BTC/USDT" and c.period_seconds == 60 and c.closed for c in rows)
    assert rows[-1].trade_count > 500  # 23:59 comes from the recording, far busier than synthesis


def test_kline_range_is_half_open_and_starts_at_the_first_whole_period(base: str) -> None:
    with BinanceRest(base) as rest:
        rows = [c for p in rest.iter_klines("ETHUSDT", 300, DAY_US + 1, DAY_US + HOUR_US) for c in p]
    assert [c.open_time for c in rows] == [DAY_US + k * 5 * MIN_US for k in range(1, 12)]


def test_agg_trades_over_an_hour_have_no_gaps_or_duplicates_and_match_klines(base: str) -> None:
    start, end = DAY_US + 23 * HOUR_US, DAY_US + 24 * HOUR_US  # synthetic, then the recording
    with BinanceRest(base) as rest:
        pages = list(rest.iter_agg_trades("BTCUSDT", start, end))
        candles = [c for p in rest.iter_klines("BTCUSDT", 60, start, end) for c in p]
    ticks = [t for p in pages for t in p]
    ids = [int(t.trade_id) for t in ticks]
    assert len(pages) >= 5 and ids == list(range(ids[0], ids[0] + len(ids)))
    assert all(int(b.first_trade_id) == int(a.last_trade_id) + 1 for a, b in zip(ticks, ticks[1:], strict=False))
    assert start <= ticks[0].exchange_time_ns // 1000 and ticks[-1].exchange_time_ns // 1000 < end
    # Nothing missing: the trades add up to the hour's klines.
    assert sum(int(t.last_trade_id) - int(t.first_trade_id) + 1 for t in ticks) == sum(c.trade_count for c in candles)
    assert sum(Decimal(t.size) for t in ticks) == sum(Decimal(c.volume) for c in candles)


def test_agg_trades_walk_continues_past_empty_hours(base: str) -> None:
    listed_us = SYMBOL_SPECS["SOLUSDT"].listed_ms * 1000  # nothing trades before the listing
    with BinanceRest(base) as rest:
        ticks = [t for p in rest.iter_agg_trades("SOLUSDT", listed_us - 150 * MIN_US, listed_us + HOUR_US) for t in p]
        candles = [c for p in rest.iter_klines("SOLUSDT", 60, listed_us, listed_us + HOUR_US) for c in p]
    assert ticks and ticks[0].exchange_time_ns // 1000 >= listed_us
    assert sum(int(t.last_trade_id) - int(t.first_trade_id) + 1 for t in ticks) == sum(c.trade_count for c in candles)


def test_429_twice_then_200_honours_retry_after(server: ReplayServer, base: str) -> None:
    server.state.set_faults(fail_429=2, retry_after_seconds=1)
    with BinanceRest(base) as rest:
        started = time.monotonic()
        assert rest.server_time_ms() > 0
        elapsed = time.monotonic() - started
    log = server.state.stats()["log"]
    assert [r["status"] for r in log] == [429, 429, 200]
    gaps = [b["monotonic"] - a["monotonic"] for a, b in zip(log, log[1:], strict=False)]
    assert all(g >= 1.0 for g in gaps) and elapsed >= 2.0
    assert rest.stats.retries == 2


def test_418_ban_is_waited_out_when_short(server: ReplayServer, base: str) -> None:
    server.state.set_faults(fail_418=1, retry_after_seconds=1)
    with BinanceRest(base) as rest:
        started = time.monotonic()
        rows = rest.klines("BTCUSDT", "1m", limit=2)
        assert len(rows) == 2 and time.monotonic() - started >= 1.0
    assert [r["status"] for r in server.state.stats()["log"]] == [418, 200]


def test_418_ban_longer_than_allowed_raises_without_waiting(server: ReplayServer, base: str) -> None:
    server.state.set_faults(fail_418=1, retry_after_seconds=3600)
    with BinanceRest(base, max_retry_after=60) as rest, pytest.raises(ExchangeError) as err:
        rest.server_time_ms()
    assert err.value.status == 418 and err.value.code == -1003 and "banned for 3600 s" in str(err.value)
    assert rest.stats.slept_seconds == 0


def test_5xx_and_dropped_connections_are_retried_with_backoff(server: ReplayServer, base: str) -> None:
    server.state.set_faults(fail_500=2, drop_next=1)
    with BinanceRest(base, backoff_base=0.05) as rest:
        assert rest.server_time_ms() > 0
    assert [r["status"] for r in server.state.stats()["log"]] == [0, 500, 500, 200]  # 0: dropped, no answer
    assert rest.stats.retries == 3 and rest.stats.slept_seconds > 0


def test_fail_for_good_4xx_raises_exchange_error_at_once(server: ReplayServer, base: str) -> None:
    server.state.set_faults(fail_always_status=400, fail_always_code=-1121, fail_always_msg="Invalid symbol.")
    with BinanceRest(base) as rest, pytest.raises(ExchangeError) as err:
        next(rest.iter_klines("BTCUSDT", 60, DAY_US, DAY_US + HOUR_US))
    assert (err.value.status, err.value.code, err.value.msg) == (400, -1121, "Invalid symbol.")
    assert "not retried" in str(err.value) and server.state.stats()["total"] == 1


def test_fail_for_good_5xx_gives_up_after_max_retries(server: ReplayServer, base: str) -> None:
    server.state.set_faults(fail_always_status=503, fail_always_code=-1001, fail_always_msg="Service unavailable")
    with BinanceRest(base, max_retries=2, backoff_base=0.01) as rest, pytest.raises(ExchangeError) as err:
        rest.server_time_ms()
    assert err.value.status == 503 and "gave up after 3 attempts" in err.value.reason
    assert server.state.stats()["total"] == 3


def test_unreachable_server_raises_exchange_error_with_status_0() -> None:
    rest = BinanceRest(f"http://127.0.0.1:{free_port()}", max_retries=1, backoff_base=0.01, timeout=2)
    with rest, pytest.raises(ExchangeError) as err:
        rest.server_time_ms()
    assert err.value.status == 0 and "no answer after 2 attempts" in str(err.value)


def test_invalid_symbol_raises_binance_code(base: str) -> None:
    with BinanceRest(base) as rest, pytest.raises(ExchangeError) as err:
        next(rest.iter_agg_trades("BINANCE:FOO/USDT", DAY_US, DAY_US + MIN_US))
    assert (err.value.status, err.value.code, err.value.msg) == (400, -1121, "Invalid symbol.")
    assert "/api/v3/aggTrades?symbol=FOOUSDT" in str(err.value)  # the message names the offending value


def test_unsupported_period_fails_before_any_request(server: ReplayServer, base: str) -> None:
    with BinanceRest(base) as rest, pytest.raises(UnsupportedIntervalError, match="7 seconds"):
        next(rest.iter_klines("BTCUSDT", 7, DAY_US, DAY_US + HOUR_US))
    assert server.state.stats()["total"] == 0


def test_client_slows_down_before_the_weight_limit(data_dir: Path) -> None:
    faults = FaultConfig(weight_limit=20, weight_window_seconds=2)
    server = ReplayServer(data_dir, faults)
    with server.running() as url, BinanceRest(url, weight_limit=20, weight_window_seconds=2) as rest:
        for _ in range(20):  # 20 x weight 2 = 40: more than two windows' worth, so a wait is certain
            rest.klines("BTCUSDT", "1m", limit=1)
    assert "429" not in server.state.stats()["statuses"]
    assert rest.stats.throttle_waits >= 1 and rest.stats.retries == 0


def test_ccxt_reads_the_replay_server_like_binance_and_agrees_with_our_client(base: str) -> None:
    exchange = ccxt.binance({
        "urls": {"api": {"public": f"{base}/api/v3"}},  # spot market data lives under urls.api.public
        "options": {"fetchMarkets": {"types": ["spot"]}},  # no futures exchangeInfo: not served
    })
    markets = exchange.load_markets()
    assert {"BTC/USDT", "ETH/USDT"} <= set(markets) and markets["BTC/USDT"]["precision"]["price"] == 0.01
    since_ms = (DAY_US + 24 * HOUR_US - 10 * MIN_US) // 1000
    ohlcv = exchange.fetch_ohlcv("BTC/USDT", "1m", since=since_ms, limit=10)
    trades = exchange.fetch_trades("BTC/USDT", since=since_ms, limit=50)
    with BinanceRest(base) as rest:
        ours = [c for p in rest.iter_klines("BTC/USDT", 60, since_ms * 1000, since_ms * 1000 + 10 * MIN_US) for c in p]
        ticks = next(rest.iter_agg_trades("BTC/USDT", since_ms * 1000, since_ms * 1000 + HOUR_US))[:50]
    assert ohlcv == [[c.open_time // 1000, float(c.open), float(c.high), float(c.low), float(c.close),
                      float(c.volume)] for c in ours]
    assert [(t["id"], t["timestamp"], t["price"], t["amount"], t["side"]) for t in trades] == [
        (x.trade_id, x.exchange_time_ns // 1_000_000, float(x.price), float(x.size),
         "sell" if x.buyer_is_maker else "buy") for x in ticks]


def test_sim_stats_count_requests_by_path(server: ReplayServer, base: str) -> None:
    with BinanceRest(base) as rest:
        rest.exchange_info(["BTCUSDT"])
        rest.depth("BINANCE:ETH/USDT", limit=10)
    stats = httpx.get(f"{base}/_sim/stats").json()
    assert stats["requests"] == {"/api/v3/exchangeInfo": 1, "/api/v3/depth": 1} and stats["statuses"] == {"200": 2}


def test_used_weight_header_counts_endpoint_weights(data_dir: Path) -> None:
    with ReplayServer(data_dir).running() as url:
        weights = [int(get(f"{url}/api/v3/{p}", **q).headers["X-MBX-USED-WEIGHT-1M"]) for p, q in [
            ("ping", {}), ("klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1}),
            ("aggTrades", {"symbol": "BTCUSDT", "limit": 1}), ("depth", {"symbol": "BTCUSDT", "limit": 1000}),
            ("exchangeInfo", {})]]
    assert [b - a for a, b in zip([0, *weights], weights, strict=False)] == [1, 2, 4, 50, 20]


def test_weight_over_the_limit_answers_429_with_retry_after(data_dir: Path) -> None:
    with ReplayServer(data_dir, FaultConfig(weight_limit=10)).running() as url:
        answers = [get(f"{url}/api/v3/aggTrades", symbol="BTCUSDT", limit=1) for _ in range(5)]
    # weight 4 each: the third request inside one minute passes 10 (five cannot spread over three windows)
    assert answers[0].status_code == 200
    limited = next(r for r in answers if r.status_code == 429)
    assert limited.json()["code"] == -1003 and 1 <= int(limited.headers["Retry-After"]) <= 60


def test_latency_fault_delays_rest_answers(data_dir: Path) -> None:
    server = ReplayServer(data_dir)
    with server.running() as url:
        assert httpx.post(f"{url}/_sim/faults", json={"latency_ms": 300}).json()["latency_ms"] == 300
        started = time.monotonic()
        assert get(f"{url}/api/v3/ping").status_code == 200
        assert time.monotonic() - started >= 0.3


def test_fault_endpoint_rejects_unknown_fields(base: str) -> None:
    r = httpx.post(f"{base}/_sim/faults", json={"fail_430": 1})
    assert r.status_code == 400 and "fail_430" in r.json()["error"]
    r = httpx.post(f"{base}/_sim/faults", json={"fail_429": "two"})
    assert r.status_code == 400 and "must be int" in r.json()["error"]
