"""The recorded-session replay servers' REST side: recorded answers by path and query, 429 with
Retry-After, and the candles/trades endpoints derived from the recorded trades, with each exchange's
paging, checked against trades read independently from the recording."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from .replay_fixtures import Recording, find, replay, sim

__all__ = ["replay", "sim"]  # fixtures used by the tests below


def test_rest_answers_429_with_retry_after_then_serves(replay: Any) -> None:
    exchange, _server, base, rec = replay
    path, body = rec.http[0]
    assert httpx.post(f"{base}/_sim/faults", json={"fail_429": 2, "retry_after_seconds": 3}).status_code == 200
    answers = [httpx.get(base + path, timeout=30) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert [a.headers.get("Retry-After") for a in answers[:2]] == ["3", "3"]
    assert answers[2].text == body
    stats = httpx.get(f"{base}/_sim/stats").json()
    print(f"\n{exchange}: 429 x2 then 200; stats statuses {stats['statuses']}")


def test_recorded_rest_answers_are_served_by_path_and_query(replay: Any) -> None:
    exchange, _server, base, rec = replay
    first: dict[str, str] = {}
    for url, body in rec.http:
        first.setdefault(url, body)
    for url, body in first.items():
        assert httpx.get(base + url, timeout=30).text == body, url
    print(f"\n{exchange}: {len(first)} recorded REST answers served")


# ---- derived history endpoints: independent expectations from the recorded trade frames ----

def recorded_trades(rec: Recording, pick: Callable[[Any], list[Any]]) -> list[Any]:
    out: list[Any] = []
    for conn in rec.conns:
        for text in conn.recvs:
            try:
                out += pick(orjson.loads(text))
            except (AttributeError, KeyError, TypeError, IndexError):
                continue
    return out


@pytest.mark.parametrize("sim", ["OKX"], indirect=True)
def test_okx_history_trades_page_backwards_by_trade_id(replay: Any) -> None:
    _exchange, _server, base, rec = replay
    trades = recorded_trades(rec, lambda m: m["data"] if m["arg"]["channel"] == "trades" else [])
    btc = sorted((t for t in trades if t["instId"] == "BTC-USDT"), key=lambda t: -int(t["tradeId"]))
    pages: list[list[dict[str, Any]]] = []
    after = ""
    while True:
        data = httpx.get(f"{base}/api/v5/market/history-trades",
                         params={"instId": "BTC-USDT", "limit": "4", "after": after}).json()["data"]
        if not data:
            break
        pages.append(data)
        after = data[-1]["tradeId"]
    got = [t for p in pages for t in p]
    print(f"\nOKX BTC-USDT: {len(btc)} recorded trades in {len(pages)} pages of <= 4")
    assert [(t["tradeId"], t["px"], t["sz"], t["side"], t["ts"]) for t in got] == \
        [(t["tradeId"], t["px"], t["sz"], t["side"], t["ts"]) for t in btc]
    assert all(len(p) == 4 for p in pages[:-1])
    candles = httpx.get(f"{base}/api/v5/market/history-candles", params={"instId": "BTC-USDT", "bar": "1m"}).json()["data"]
    minute = int(candles[0][0])
    in_minute = sorted((t for t in btc if minute <= int(t["ts"]) < minute + 60_000), key=lambda t: int(t["tradeId"]))
    assert candles[0][1] == in_minute[0]["px"] and candles[0][4] == in_minute[-1]["px"]
    assert Decimal(candles[0][5]) == sum(Decimal(t["sz"]) for t in in_minute)
    older = httpx.get(f"{base}/api/v5/market/history-candles",
                      params={"instId": "BTC-USDT", "after": str(minute)}).json()["data"]
    assert all(int(c[0]) < minute for c in older)


@pytest.mark.parametrize("sim", ["KRAKEN"], indirect=True)
def test_kraken_trades_page_forward_with_since_and_last(replay: Any) -> None:
    _exchange, _server, base, rec = replay
    trades = recorded_trades(rec, lambda m: m[1] if m[-2] == "trade" and m[-1] == "XMR/USD" else [])
    got: list[list[Any]] = []
    since = "0"
    for _ in range(len(trades) + 1):
        result = httpx.get(f"{base}/0/public/Trades", params={"pair": "XMRUSD", "since": since, "count": "3"}).json()
        rows = result["result"]["XXMRZUSD"]
        if not rows:
            break
        got += rows
        since = result["result"]["last"]
    print(f"\nKRAKEN XMR/USD: {len(trades)} recorded trades, {len(got)} served in pages of 3")
    assert [(r[0], r[1], f"{r[2]:.6f}", r[3]) for r in got] == [(t[0], t[1], t[2], t[3]) for t in trades]
    ohlc = httpx.get(f"{base}/0/public/OHLC", params={"pair": "XMR/USD", "interval": "1"}).json()["result"]
    assert ohlc["last"] == ohlc["XXMRZUSD"][-1][0] and ohlc["XXMRZUSD"][-1][7] == len(trades)


@pytest.mark.parametrize("sim", ["BYBIT"], indirect=True)
def test_bybit_kline_pages_back_with_end_and_limit(replay: Any) -> None:
    _exchange, _server, base, rec = replay
    linear = find(rec, "BYBIT.ws.2")
    trades = recorded_trades(Recording([linear], []), lambda m: m["data"] if m["topic"] == "publicTrade.BTCUSDT" else [])
    url = f"{base}/v5/market/kline"
    newest = httpx.get(url, params={"category": "linear", "symbol": "BTCUSDT", "interval": "1", "limit": "1"}).json()
    rows = newest["result"]["list"]
    assert newest["retCode"] == 0 and len(rows) == 1
    older = httpx.get(url, params={"category": "linear", "symbol": "BTCUSDT", "interval": "1", "limit": "1",
                                   "end": str(int(rows[0][0]) - 1)}).json()["result"]["list"]
    assert len(older) == 1 and int(older[0][0]) == int(rows[0][0]) - 60_000
    whole = httpx.get(url, params={"category": "linear", "symbol": "BTCUSDT", "interval": "1"}).json()["result"]["list"]
    assert sum(Decimal(r[5]) for r in whole) == sum(Decimal(t["v"]) for t in trades)
    recent = httpx.get(f"{base}/v5/market/recent-trade", params={"category": "linear", "symbol": "BTCUSDT",
                                                                "limit": "5"}).json()["result"]["list"]
    assert [r["execId"] for r in recent] == [t["i"] for t in sorted(trades, key=lambda t: t["T"])][::-1][:5]
    print(f"\nBYBIT linear BTCUSDT: {len(trades)} trades, {len(whole)} 1m klines")


@pytest.mark.parametrize("sim", ["COINBASE"], indirect=True)
def test_coinbase_candles_and_ticker_trades_by_time_window(replay: Any) -> None:
    _exchange, _server, base, rec = replay
    trades = recorded_trades(rec, lambda m: [t for e in m["events"] for t in e["trades"]]
                             if m["channel"] == "market_trades" else [])
    btc = list({t["trade_id"]: t for t in trades if t["product_id"] == "BTC-USD"}.values())

    def second(t: dict[str, Any]) -> int:
        return calendar.timegm(time.strptime(t["time"][:19], "%Y-%m-%dT%H:%M:%S"))

    start, end = 1786309550, 1786309560  # [start, end): a window inside the recording
    window = sorted((t for t in btc if start <= second(t) < end), key=lambda t: (t["time"], int(t["trade_id"])), reverse=True)
    product = f"{base}/api/v3/brokerage/market/products/BTC-USD"
    page = httpx.get(f"{product}/ticker", params={"limit": "1000", "start": str(start), "end": str(end)}).json()
    assert [(t["trade_id"], t["price"], t["size"], t["side"], t["time"]) for t in page["trades"]] == \
        [(t["trade_id"], t["price"], t["size"], t["side"], t["time"]) for t in window]
    limited = httpx.get(f"{product}/ticker", params={"limit": "2"}).json()["trades"]
    assert len(limited) == 2 and limited[0]["time"] >= limited[1]["time"]
    too_many = httpx.get(f"{product}/candles", params={"start": "0", "end": "1786309800", "granularity": "ONE_MINUTE"})
    assert too_many.status_code == 400 and too_many.json()["error"] == "INVALID_ARGUMENT"
    candles = httpx.get(f"{product}/candles", params={"start": "1786309000", "end": "1786310000",
                                                      "granularity": "ONE_MINUTE"}).json()["candles"]
    starts = [int(c["start"]) for c in candles]
    assert starts and starts == sorted(starts, reverse=True)
    in_first = [t for t in btc if starts[-1] <= second(t) < starts[-1] + 60]
    assert Decimal(candles[-1]["volume"]) == sum(Decimal(t["size"]) for t in in_first)
    print(f"\nCOINBASE BTC-USD: {len(btc)} trades, {len(window)} in the window, {len(candles)} 1m candles")
