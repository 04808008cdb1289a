"""The Binance replay server over real HTTP and websockets: recorded data served field for field,
deterministic synthesis elsewhere, Binance's errors and limits, and the fault hooks."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidMessage
from websockets.sync.client import connect

from ingestors.binance.config import SYMBOL_SPECS
from ingestors.binance.replay import FaultConfig, ReplayServer
from marketlake.kafka_broker import free_port, port_open
from marketlake.settings import REPO_ROOT

T2354 = 1723161240000  # 2024-08-08 23:54 UTC: the recording starts inside this minute
T0001 = 1723161660000  # 2024-08-09 00:01 UTC: first minute after the recording
SYNTH_DAY = 1709251200000  # 2024-03-01, far from any recording


@pytest.fixture(scope="module")
def base(data_dir: Path) -> Iterator[str]:
    with ReplayServer(data_dir).running() as url:
        yield url


def get(url: str, **params: Any) -> httpx.Response:
    return httpx.get(url, params=params, timeout=30)


def recorded(data_dir: Path, name: str) -> list[str]:
    """Payloads of a recording, in order, exactly as stored."""
    with gzip.open(data_dir / "binance" / name, "rt", encoding="utf-8") as fh:
        return [line.rstrip("\n").split(" ", 1)[1] for line in fh]


def recorded_trades(data_dir: Path) -> list[dict[str, Any]]:
    return [orjson.loads(p)["data"] for p in recorded(data_dir, "spot_btcusdt_20240808.gz") if "@trade" in p]


def d8(x: Decimal | int) -> str:
    return f"{Decimal(x).quantize(Decimal('0.00000001'), rounding=ROUND_DOWN):.8f}"


def offline_klines(trades: list[dict[str, Any]], start: int, end: int, step: int, prev: str) -> list[list[Any]]:
    """Binance klines computed here, independently, from raw trades (empty periods flat at the last close)."""
    rows: list[list[Any]] = []
    for k in range(start, end, step):
        ts = [t for t in trades if k <= t["T"] < k + step]
        if not ts:
            rows.append([k, prev, prev, prev, prev, "0.00000000", k + step - 1, "0.00000000", 0, "0.00000000",
                         "0.00000000", "0"])
            continue
        q = [(Decimal(t["p"]), Decimal(t["q"]), t["m"]) for t in ts]
        buys = [(p, v) for p, v, maker in q if not maker]
        rows.append([k, ts[0]["p"], max(ts, key=lambda t: Decimal(t["p"]))["p"],
                     min(ts, key=lambda t: Decimal(t["p"]))["p"], ts[-1]["p"], d8(sum(v for _, v, _ in q)),
                     k + step - 1, d8(sum(p * v for p, v, _ in q)), len(ts), d8(sum(v for _, v in buys)),
                     d8(sum(p * v for p, v in buys)), "0"])
        prev = ts[-1]["p"]
    return rows


def test_recorded_minute_klines_equal_offline_computation_from_trades(base: str, data_dir: Path) -> None:
    trades = recorded_trades(data_dir)
    rows = get(f"{base}/api/v3/klines", symbol="BTCUSDT", interval="1m", startTime=T2354, endTime=T0001 - 1).json()
    assert len(rows) == 7  # 23:54 .. 00:00, the two boundary minutes served from the recorded trades alone
    assert rows == offline_klines(trades, T2354, T0001, 60_000, "unused")


def test_recorded_second_klines_include_flat_empty_seconds(base: str, data_dir: Path) -> None:
    trades = recorded_trades(data_dir)
    rows = get(f"{base}/api/v3/klines", symbol="BTCUSDT", interval="1s", startTime=T2354, limit=60).json()
    # Before 23:54:15.342 nothing is recorded: Binance-style zero-volume candles at the previous close,
    # which the synthetic minute 23:53 ends on (anchored to the first recorded price).
    assert rows == offline_klines(trades, T2354, T2354 + 60_000, 1000, trades[0]["p"])
    assert rows[0][8] == 0 and rows[15][8] > 0


def test_recorded_agg_trades_follow_binance_aggregation(base: str, data_dir: Path) -> None:
    trades = recorded_trades(data_dir)
    expected: list[dict[str, Any]] = []
    for t in trades:  # same taker order: consecutive id, same price, side and millisecond
        e = expected[-1] if expected else None
        if e and e["l"] + 1 == t["t"] and (e["p"], e["m"], e["T"]) == (t["p"], t["m"], t["T"]):
            e["l"], e["q"] = t["t"], d8(Decimal(e["q"]) + Decimal(t["q"]))
        else:
            expected.append({"p": t["p"], "q": t["q"], "f": t["t"], "l": t["t"], "T": t["T"], "m": t["m"]})
    first = SYMBOL_SPECS["BTCUSDT"].recorded_first_agg_id
    got: list[dict[str, Any]] = []
    while len(got) < len(expected):
        got += get(f"{base}/api/v3/aggTrades", symbol="BTCUSDT", fromId=first + len(got), limit=1000).json()
    got = got[: len(expected)]
    assert [g["a"] for g in got] == list(range(first, first + len(expected)))
    assert [{k: g[k] for k in ("p", "q", "f", "l", "T", "m")} for g in got] == expected
    assert all(g["M"] is True for g in got)


def test_synthesis_is_continuous_across_the_recording_boundaries(base: str) -> None:
    rows = get(f"{base}/api/v3/klines", symbol="BTCUSDT", interval="1m", startTime=T2354 - 120_000,
               endTime=T0001 + 60_000).json()
    by_open = {r[0]: r for r in rows}
    assert by_open[T2354 - 60_000][4] == by_open[T2354][1]  # synthetic 23:53 closes at the first recorded price
    assert by_open[T0001 - 60_000][4] == by_open[T0001][1]  # synthetic 00:01 opens at the last recorded price
    aggs: list[dict[str, Any]] = get(f"{base}/api/v3/aggTrades", symbol="BTCUSDT", startTime=T2354 - 120_000,
                                     limit=1000).json()
    while aggs[-1]["T"] < T0001 + 60_000:
        aggs += get(f"{base}/api/v3/aggTrades", symbol="BTCUSDT", fromId=aggs[-1]["a"] + 1, limit=1000).json()
    assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + len(aggs)))
    assert all(y["f"] == x["l"] + 1 for x, y in zip(aggs, aggs[1:], strict=False))  # trade ids too
    assert all(x["T"] <= y["T"] for x, y in zip(aggs, aggs[1:], strict=False))


def test_synthetic_answers_are_byte_identical_across_requests_and_servers(base: str, data_dir: Path) -> None:
    params = {"symbol": "SOLUSDT", "interval": "5m", "startTime": SYNTH_DAY, "limit": 300}
    first = get(f"{base}/api/v3/klines", **params).content
    assert get(f"{base}/api/v3/klines", **params).content == first
    with ReplayServer(data_dir).running() as other:
        assert get(f"{other}/api/v3/klines", **params).content == first
        trades = {"symbol": "SOLUSDT", "startTime": SYNTH_DAY, "limit": 700}
        assert get(f"{other}/api/v3/aggTrades", **trades).content == get(f"{base}/api/v3/aggTrades", **trades).content


def test_synthetic_range_split_in_two_requests_equals_one_request(base: str) -> None:
    url, one = f"{base}/api/v3/klines", {"symbol": "ETHUSDT", "interval": "1m"}
    whole = get(url, **one, startTime=SYNTH_DAY, endTime=SYNTH_DAY + 600 * 60_000 - 1, limit=1000).json()
    head = get(url, **one, startTime=SYNTH_DAY, limit=250).json()
    tail = get(url, **one, startTime=head[-1][0] + 60_000, endTime=SYNTH_DAY + 600 * 60_000 - 1).json()
    assert len(whole) == 600 and head + tail == whole
    trades = get(f"{base}/api/v3/aggTrades", symbol="ETHUSDT", startTime=SYNTH_DAY, limit=1000).json()
    part = get(f"{base}/api/v3/aggTrades", symbol="ETHUSDT", startTime=SYNTH_DAY, limit=400).json()
    rest = get(f"{base}/api/v3/aggTrades", symbol="ETHUSDT", fromId=part[-1]["a"] + 1, limit=600).json()
    assert part + rest == trades


def test_synthetic_candles_are_plausible_and_chained(base: str) -> None:
    rows = get(f"{base}/api/v3/klines", symbol="BTCUSDT", interval="1m", startTime=SYNTH_DAY, limit=1000).json()
    assert all(a[4] == b[1] for a, b in zip(rows, rows[1:], strict=False))  # close(t) == open(t+1)
    for r in rows:
        o, h, lo, c, v = (Decimal(x) for x in r[1:6])
        assert lo <= min(o, c) <= max(o, c) <= h and v > 0 and r[8] > 0 and Decimal(r[9]) <= v
        assert Decimal(30000) < lo < h < Decimal(120000)  # around the symbol's level
    hour = get(f"{base}/api/v3/klines", symbol="BTCUSDT", interval="1h", startTime=SYNTH_DAY, limit=1).json()[0]
    assert hour[1] == rows[0][1] and hour[4] == rows[59][4] and hour[8] == sum(r[8] for r in rows[:60])


def test_only_closed_candles_and_past_trades_relative_to_server_now(data_dir: Path) -> None:
    now = SYNTH_DAY + 12 * 3_600_000 + 30_500  # 12:00:30.5
    with ReplayServer(data_dir, now_ms=now).running() as url:
        latest = get(f"{url}/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=3).json()
        assert [r[0] for r in latest] == [now - 30_500 - k * 60_000 for k in (3, 2, 1)]
        hours = get(f"{url}/api/v3/klines", symbol="BTCUSDT", interval="1h", limit=1).json()
        assert hours[0][6] == now - 30_500 - 1  # 11:00 closed at 11:59:59.999; 12:00 is still open
        assert get(f"{url}/api/v3/klines", symbol="BTCUSDT", interval="1m", startTime=now - 30_500).json() == []
        trades = get(f"{url}/api/v3/aggTrades", symbol="BTCUSDT").json()
        assert len(trades) == 500 and max(t["T"] for t in trades) <= now
        httpx.post(f"{url}/_sim/clock", json={"now_ms": now + 60_000}).raise_for_status()
        assert get(f"{url}/api/v3/time").json() == {"serverTime": now + 60_000}
        moved = get(f"{url}/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=1).json()
        assert moved[0][0] == now - 30_500


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [("klines", {"symbol": "FOOUSDT", "interval": "1m"}, 400, -1121),
     ("klines", {"symbol": "BTCUSDT", "interval": "7m"}, 400, -1120),
     ("klines", {"symbol": "BTCUSDT"}, 400, -1102),
     ("klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": "ten"}, 400, -1100),
     ("aggTrades", {"symbol": "BTCUSDT", "startTime": 0, "endTime": 3_600_001}, 400, -1127),
     ("depth", {}, 400, -1102),
     ("exchangeInfo", {"symbol": "FOOUSDT"}, 400, -1121)],
)
def test_bad_requests_get_binance_error_json(base: str, path: str, params: dict[str, Any], status: int,
                                            code: int) -> None:
    r = get(f"{base}/api/v3/{path}", **params)
    assert r.status_code == status and r.json()["code"] == code and r.json()["msg"]
    assert r.headers["X-MBX-USED-WEIGHT-1M"].isdigit()


def test_exchange_info_has_binance_fields(base: str) -> None:
    info = get(f"{base}/api/v3/exchangeInfo").json()
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert {"BTCUSDT", "ETHUSDT"} <= set(symbols) and len(symbols) >= 4
    filters = {f["filterType"]: f for f in symbols["BTCUSDT"]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000" and filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert info["rateLimits"][0] == {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                                     "limit": 6000}
    one = get(f"{base}/api/v3/exchangeInfo", symbols='["ETHUSDT"]').json()
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]


def test_depth_of_recorded_symbol_is_the_recorded_snapshot(base: str, data_dir: Path) -> None:
    snapshot = next(p for p in recorded(data_dir, "spot_btcusdt_20240808.gz") if p.startswith('{"lastUpdateId"'))
    assert get(f"{base}/api/v3/depth", symbol="BTCUSDT", limit=1000).text == snapshot
    top = get(f"{base}/api/v3/depth", symbol="BTCUSDT", limit=5).json()
    assert top["bids"] == orjson.loads(snapshot)["bids"][:5]
    book = get(f"{base}/api/v3/ticker/bookTicker", symbol="BTCUSDT").json()
    assert (book["bidPrice"], book["askPrice"]) == (top["bids"][0][0], top["asks"][0][0])


def test_websocket_combined_stream_replays_recorded_frames_exactly(base: str, data_dir: Path) -> None:
    frames = [p for p in recorded(data_dir, "spot_btcusdt_20240808.gz") if p.startswith('{"stream"')]
    streams = "btcusdt@trade/btcusdt@depth@100ms/btcusdt@bookTicker"
    with connect(f"{base.replace('http', 'ws')}/stream?streams={streams}", max_size=None) as ws:
        got = [ws.recv(timeout=10) for _ in frames]
    assert got == frames


def test_websocket_raw_stream_sends_data_only(base: str, data_dir: Path) -> None:
    events = [orjson.loads(p)["data"] for p in recorded(data_dir, "spot_ethusdt_20240808.gz") if "@trade" in p]
    with connect(f"{base.replace('http', 'ws')}/ws/ethusdt@trade") as ws:
        got = [orjson.loads(ws.recv(timeout=10)) for _ in events]
    assert got == events


def test_websocket_subscribe_method_then_frames(base: str) -> None:
    with connect(f"{base.replace('http', 'ws')}/ws") as ws:
        ws.send('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":7}')
        assert orjson.loads(ws.recv(timeout=10)) == {"result": None, "id": 7}
        event = orjson.loads(ws.recv(timeout=10))
        ws.send('{"method":"LIST_SUBSCRIPTIONS","id":8}')
        while (reply := orjson.loads(ws.recv(timeout=10))).get("id") != 8:
            pass
    assert event["e"] == "aggTrade" and event["a"] == SYMBOL_SPECS["BTCUSDT"].recorded_first_agg_id
    assert reply["result"] == ["btcusdt@aggTrade"]


def test_websocket_close_after_n_frames_then_reconnect_replays_from_start(data_dir: Path) -> None:
    server = ReplayServer(data_dir, FaultConfig(ws_close_after_frames=3, drop_next=1))
    with server.running() as url:
        ws_url = f"{url.replace('http', 'ws')}/ws/btcusdt@trade"
        with pytest.raises((InvalidMessage, EOFError, OSError)):  # drop_next: the upgrade gets no answer
            connect(ws_url, open_timeout=10).close()
        for _ in range(2):
            with connect(ws_url) as ws:
                got = [orjson.loads(ws.recv(timeout=10))["t"] for _ in range(3)]
                with pytest.raises(ConnectionClosedOK) as closed:
                    ws.recv(timeout=10)
            assert got == [3735683259, 3735683260, 3735683261]
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
        assert server.state.stats()["ws_connections"] == 2


def test_websocket_abort_fault_drops_the_connection_without_close_frame(data_dir: Path) -> None:
    server = ReplayServer(data_dir, FaultConfig(ws_close_after_frames=2, ws_abort=True))
    with server.running() as url, connect(f"{url.replace('http', 'ws')}/ws/btcusdt@bookTicker") as ws:
        got = [ws.recv(timeout=10) for _ in range(2)]
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=10)
    assert all('"s":"BTCUSDT"' in g for g in got) and closed.value.rcvd is None  # no close frame: dropped


def test_paced_replay_depth_snapshot_syncs_with_the_stream(data_dir: Path) -> None:
    recorded_id = 50093239218
    server = ReplayServer(data_dir, deterministic=False, speed=20.0)
    with server.running() as url, connect(f"{url.replace('http', 'ws')}/ws/btcusdt@depth@100ms") as ws:
        started = time.monotonic()
        first = orjson.loads(ws.recv(timeout=10))
        snap = get(f"{url}/api/v3/depth", symbol="BTCUSDT", limit=1000).json()
        events = [first]
        while events[-1]["u"] <= snap["lastUpdateId"]:
            events.append(orjson.loads(ws.recv(timeout=10)))
        nxt = [orjson.loads(ws.recv(timeout=10)) for _ in range(20)]
        elapsed = time.monotonic() - started
    assert snap["lastUpdateId"] > recorded_id  # rebuilt at the replay clock, not the stale recording
    applied = events[-1]  # Binance's sync rule: first event kept spans lastUpdateId + 1
    assert applied["U"] <= snap["lastUpdateId"] + 1 <= applied["u"]
    assert elapsed >= (nxt[-1]["E"] - first["E"]) / 1000 / 20.0 * 0.5  # paced, not as fast as possible


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_replay_server_shuts_down_cleanly_on_signal(data_dir: Path, sig: signal.Signals) -> None:
    port = free_port()
    code = ("import sys; from pathlib import Path; from ingestors.binance.replay import run_replay_server; "
            f"run_replay_server('127.0.0.1', {port}, Path(sys.argv[1]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(data_dir)], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port):
            assert proc.poll() is None and time.monotonic() < deadline, "replay server did not come up"
            time.sleep(0.05)  # polling a starting process's port, with a deadline
        with connect(f"ws://127.0.0.1:{port}/ws/btcusdt@trade") as ws:
            ws.recv(timeout=10)
            proc.send_signal(sig)
            with pytest.raises(ConnectionClosedOK) as closed:
                while True:
                    ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001  # going away
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
