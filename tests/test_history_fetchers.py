"""REST history clients of eight exchanges against their replay servers (real HTTP, recorded trades).

For each exchange: candles over the recorded window, fetched with a small page size so page
boundaries are crossed, equal the candles computed here from the recorded trades (no
duplicate, none missing); trades in a window cut inside the recording equal the recorded
ones exactly (count, ids, price and size strings, taker side, time); a 429 with
Retry-After is waited out and the answer is still complete; an exchange's error payload
becomes ExchangeApiError with the exchange's code; fetcher_for() builds each from settings.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ingestors.registry import fetcher_for
from ingestors.replay.exchanges import replay_for
from ingestors.replay.faults import FaultConfig
from ingestors.replay.server import ReplayServer
from ingestors.rest_base import ExchangeApiError, HistoryUnavailableError, PagedRest, RateLimit, plain
from live_relay.messages import OHLC, Tick
from live_relay.topics import KNOWN_EXCHANGES
from marketlake.settings import Settings

from .history_recorded import RecCandle, RecTrade, candles_of, recorded_trades

FAST = RateLimit(10_000, 1.0)  # the documented limits would make a test wait minutes (Bitfinex: 15 a minute)


@dataclass(frozen=True)
class Case:
    exchange: str
    client: str  # module:class
    ticker: str
    symbol: str  # as the recording names it
    candle_pages: dict[str, Any] = field(default_factory=dict)  # iter_candles kwargs (a small page size)
    trade_pages: dict[str, Any] = field(default_factory=dict)  # iter_trades kwargs
    float_volume: bool = False  # JSON numbers, not strings: trades compared by value, summed volumes as floats
    bad_call: tuple[str, tuple[Any, ...]] = ("", ())  # a low-level call the exchange refuses
    bad_code: str = ""
    candles: tuple[str, str, int] = ("", "", 60)  # (ticker, recorded symbol, period) with the most candles, when not the above


CASES = [
    Case("COINBASE", "ingestors.coinbase.rest:CoinbaseRest", "COINBASE:BTC/USD", "BTC-USD", {"page_size": 1},
         {"page_size": 25}, bad_call=("candles", ("BTC-USD", "ONE_MINUTE", 0, 400 * 60, 350)), bad_code="INVALID_ARGUMENT"),
    Case("KRAKEN", "ingestors.kraken.rest:KrakenRest", "KRAKEN:SC/EUR", "SC/EUR", {}, {"page_size": 2},
         bad_call=("trades", ("FOOBAR", 0, 10)), bad_code="EQuery"),
    Case("OKX", "ingestors.okx.rest:OkxRest", "OKX:BTC/USDT", "BTC-USDT", {"page_size": 1}, {"page_size": 10},
         bad_call=("history_candles", ("BTC-USDT", "7m", None, None, 10)), bad_code="51000",
         candles=("OKX:BTC/USD220527", "BTC-USD-220527", 60)),
    Case("BYBIT", "ingestors.bybit.rest:BybitRest", "BYBIT:SOL/USDTPERP", "linear:SOLUSDT", {"page_size": 1}, {},
         bad_call=("kline", ("linear", "SOLUSDT", "7", 0, 1, 10)), bad_code="10001",
         candles=("BYBIT:BTC/USDTPERP", "linear:BTCUSDT", 60)),
    Case("GATEIO", "ingestors.gateio.rest:GateioRest", "GATEIO:NEO/BTC", "NEO_BTC", {"page_size": 1}, {"page_size": 2},
         bad_call=("candlesticks", ("NEO_BTC", "7m", 0, 60)), bad_code="INVALID_PARAM_VALUE",
         candles=("GATEIO:NEO/BTC", "NEO_BTC", 10)),
    Case("KUCOIN", "ingestors.kucoin.rest:KucoinRest", "KUCOIN:DAPPT/BTC", "DAPPT-BTC", {"page_size": 1}, {},
         bad_call=("candles", ("DAPPT-BTC", "7min", 0, 60)), bad_code="400100",
         candles=("KUCOIN:BCHSV/USDT", "BCHSV-USDT", 60)),
    Case("BITFINEX", "ingestors.bitfinex.rest:BitfinexRest", "BITFINEX:SNG/USD", "tSNGUSD", {"page_size": 2},
         {"page_size": 5}, float_volume=True, bad_call=("candles_hist", ("tSNGUSD", "7m", 0, 60, 10)), bad_code="10020"),
    Case("HUOBI", "ingestors.huobi.rest:HuobiRest", "HUOBI:FIL3S/USDT", "fil3susdt", {}, {}, float_volume=True,
         bad_call=("kline", ("fil3susdt", "7min", 10)), bad_code="invalid-parameter"),
]


def _client(case: Case, base: str, **options: Any) -> PagedRest:
    module, _, name = case.client.partition(":")
    rest: PagedRest = getattr(importlib.import_module(module), name)(base, rate_limit=FAST, max_retries=3, **options)
    return rest


@pytest.fixture(scope="module", params=CASES, ids=[c.exchange for c in CASES])
def served(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[tuple[Case, ReplayServer, str, list[RecTrade]]]:
    case: Case = request.param
    server = ReplayServer(replay_for(case.exchange), data_dir)
    with server.running() as base:
        yield case, server, base, recorded_trades(data_dir, case.exchange, case.symbol)


@pytest.fixture
def sim(served: tuple[Case, ReplayServer, str, list[RecTrade]]) -> Iterator[tuple[Case, ReplayServer, str, list[RecTrade]]]:
    yield served
    served[1].state.set_faults(**dataclasses.asdict(FaultConfig()))


def _window(trades: list[RecTrade], period: int) -> tuple[int, int]:
    """One empty period before the first trade's through one after the last's, in µs."""
    step = period * 1_000_000
    return (trades[0].ts_ns // 1000 // step - 1) * step, (trades[-1].ts_ns // 1000 // step + 2) * step


def _same_candles(got: list[OHLC], want: list[RecCandle], float_volume: bool) -> None:
    assert [c.open_time for c in got] == [c.open_time_us for c in want]
    for g, w in zip(got, want, strict=True):
        assert (Decimal(g.open), Decimal(g.high), Decimal(g.low), Decimal(g.close)) == (w.open, w.high, w.low, w.close), g
        assert (float(g.volume) == float(w.volume)) if float_volume else Decimal(g.volume) == w.volume, (g, w)
        assert g.closed and g.trade_count in (0, w.count)


def _same_trades(got: list[Tick], want: list[RecTrade], numbers: bool = False) -> None:
    """Same ids, prices, sizes, sides and times. numbers: the exchange sends JSON numbers, whose text is not
    kept by a JSON encoder (the replay writes Bitfinex's 276 as 276.0): compare their values, still exactly."""
    assert [t.trade_id for t in got] == [t.trade_id for t in want]
    norm = (lambda x: Decimal(x)) if numbers else plain
    assert [(norm(t.price), norm(t.size), t.buyer_is_maker, t.exchange_time_ns) for t in got] == \
        [(norm(t.price), norm(t.size), t.buyer_is_maker, t.ts_ns) for t in want]


def test_candles_over_the_recorded_window_page_without_duplicates_or_gaps(
        sim: tuple[Case, ReplayServer, str, list[RecTrade]], data_dir: Path) -> None:
    case, _server, base, trades = sim
    ticker, period = case.candles[0] or case.ticker, case.candles[2]
    if case.candles[1]:
        trades = recorded_trades(data_dir, case.exchange, case.candles[1])
    start, end = _window(trades, period)
    with _client(case, base) as rest:
        pages = list(rest.iter_candles(ticker, period, start, end, **case.candle_pages))
        got = [c for p in pages for c in p]
        requests = rest.stats.requests
    want = candles_of(trades, period)
    print(f"{case.exchange} {ticker} {period} s: {len(trades)} recorded trades -> {len(want)} candles; "
          f"fetched {len(got)} in {len(pages)} pages, {requests} requests ({case.candle_pages or 'one request'})")
    assert len({c.open_time for c in got}) == len(got), "duplicate candle"
    assert all(start <= c.open_time < end for c in got)
    _same_candles(got, want, case.float_volume)


def test_trades_in_a_window_cut_inside_the_recording_equal_the_recorded_ones(
        sim: tuple[Case, ReplayServer, str, list[RecTrade]]) -> None:
    case, _server, base, trades = sim
    q = len(trades) // 4
    start, end = trades[q].ts_ns // 1000, trades[len(trades) - 1 - q].ts_ns // 1000
    want = [t for t in trades if start * 1000 <= t.ts_ns < end * 1000]
    with _client(case, base) as rest:
        pages = list(rest.iter_trades(case.ticker, start, end, **case.trade_pages))
        whole = [t for p in rest.iter_trades(case.ticker, trades[0].ts_ns // 1000, trades[-1].ts_ns // 1000 + 1,
                                             **case.trade_pages) for t in p]
        requests = rest.stats.requests
    got = [t for p in pages for t in p]
    print(f"{case.exchange} {case.ticker}: window holds {len(want)} of {len(trades)} recorded trades; fetched {len(got)} "
          f"in {len(pages)} pages; whole recording {len(whole)}; {requests} requests ({case.trade_pages or 'no paging'})")
    assert want and len(want) < len(trades)
    _same_trades(got, want, case.float_volume)
    _same_trades(whole, trades, case.float_volume)
    assert all(t.ticker == case.ticker for t in got)


def test_429_with_retry_after_is_waited_out_and_the_answer_is_complete(
        sim: tuple[Case, ReplayServer, str, list[RecTrade]]) -> None:
    case, server, base, trades = sim
    server.state.set_faults(fail_429=1, retry_after_seconds=1)
    start, end = trades[0].ts_ns // 1000, trades[-1].ts_ns // 1000 + 1
    with _client(case, base) as rest:
        began = time.monotonic()
        got = [t for p in rest.iter_trades(case.ticker, start, end, **case.trade_pages) for t in p]
        elapsed = time.monotonic() - began
        stats = rest.stats
    print(f"{case.exchange}: 429 Retry-After 1 -> waited {elapsed:.2f} s, {stats.rate_limited} rate limited, "
          f"{stats.requests} requests, {len(got)} trades")
    assert server.state.stats()["statuses"].get("429") == 1
    assert stats.rate_limited == 1 and stats.retries == 1
    assert elapsed >= 1.0 and stats.slept_seconds >= 1.0
    _same_trades(got, trades, case.float_volume)


def test_5xx_answers_are_retried_with_backoff_and_the_answer_is_complete(
        sim: tuple[Case, ReplayServer, str, list[RecTrade]]) -> None:
    case, server, base, trades = sim
    server.state.set_faults(fail_500=2)
    with _client(case, base, backoff_base=0.02) as rest:
        got = [t for p in rest.iter_trades(case.ticker, trades[0].ts_ns // 1000, trades[-1].ts_ns // 1000 + 1,
                                           **case.trade_pages) for t in p]
        stats = rest.stats
    print(f"{case.exchange}: two 500s -> {stats.retries} retries, slept {stats.slept_seconds:.3f} s, {len(got)} trades")
    assert server.state.stats()["statuses"].get("500") == 2
    assert stats.retries == 2 and stats.rate_limited == 0 and stats.slept_seconds > 0
    _same_trades(got, trades, case.float_volume)


def test_an_exchange_error_payload_becomes_exchange_api_error_with_its_code(
        sim: tuple[Case, ReplayServer, str, list[RecTrade]]) -> None:
    case, _server, base, _trades = sim
    method, args = case.bad_call
    with _client(case, base) as rest, pytest.raises(ExchangeApiError) as info:
        getattr(rest, method)(*args)
    err = info.value
    print(f"{case.exchange}: {err}")
    assert err.exchange == case.exchange and err.code.startswith(case.bad_code) and err.msg
    assert rest.stats.retries == 0 and "not retried" in err.reason


def test_fetcher_for_builds_each_exchange_from_its_settings_url(sim: tuple[Case, ReplayServer, str, list[RecTrade]]) -> None:
    case, _server, base, trades = sim
    assert case.exchange in KNOWN_EXCHANGES
    settings = Settings(**{f"{case.exchange.lower()}_rest_url": base})  # type: ignore[arg-type]
    fetcher = fetcher_for(case.exchange, settings)
    got = [t for p in fetcher.pages(case.ticker, 0, trades[0].ts_ns // 1000, trades[-1].ts_ns // 1000 + 1) for t in p]
    assert [t.trade_id for t in got if isinstance(t, Tick)] == [t.trade_id for t in trades]


@pytest.mark.parametrize(("exchange", "client", "ticker", "symbol", "limit"), [
    ("BYBIT", "ingestors.bybit.rest:BybitRest", "BYBIT:SOL/USDTPERP", "linear:SOLUSDT", 20),
    ("HUOBI", "ingestors.huobi.rest:HuobiRest", "HUOBI:FIL3S/USDT", "fil3susdt", 10),
])
def test_recent_only_trades_refuse_a_range_older_than_what_the_exchange_lists(
        data_dir: Path, exchange: str, client: str, ticker: str, symbol: str, limit: int) -> None:
    trades = recorded_trades(data_dir, exchange, symbol)
    server = ReplayServer(replay_for(exchange), data_dir)
    paging = {"page_size": limit}  # how many of the most recent trades to ask for
    with server.running() as base, _client(Case(exchange, client, ticker, symbol), base) as rest:
        with pytest.raises(HistoryUnavailableError, match="most recent"):
            list(rest.iter_trades(ticker, trades[0].ts_ns // 1000, trades[-1].ts_ns // 1000 + 1, **paging))
        newest = [t for p in rest.iter_trades(ticker, trades[-5].ts_ns // 1000, trades[-1].ts_ns // 1000 + 1, **paging)
                  for t in p]
    print(f"{exchange}: {len(trades)} recorded, the latest {limit} listed; the last 5 fetched: {len(newest)}")
    assert [t.trade_id for t in newest] == [t.trade_id for t in trades[-5:]]
