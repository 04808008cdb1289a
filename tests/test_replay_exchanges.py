"""The recorded-session replay servers (Coinbase, Kraken, OKX, Bybit; Gate.io, KuCoin, Bitfinex, HTX) over
real websockets: a client subscribing exactly as the recording's `send` frames did receives the recorded
frames byte for byte, in order; one subscription gets only its frames; ping/pong; the faults (dropped and
reordered book diffs, disconnect, malformed frame); paced mode; the exchange-sim command.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import connect

from ingestors.replay.exchanges import replay_for
from ingestors.replay.server import ReplayServer
from marketlake.kafka_broker import free_port, port_open
from marketlake.settings import REPO_ROOT

from .replay_fixtures import GREETINGS, Wire, find, load, receive, replay, replay_conn, sim, text_of, ws_url

__all__ = ["replay", "sim"]  # fixtures used by the tests below


# Book diffs as each exchange marks them, written independently of the servers' classify():
# (recorded connection, symbol as the exchange writes it, is-this-frame-a-diff-of-that-symbol).
def _kraken_diff(pair: str) -> Callable[[Wire], bool]:
    def diff(frame: Wire) -> bool:
        msg = orjson.loads(frame)
        return (isinstance(msg, list) and str(msg[-2]).startswith("book") and msg[-1] == pair
                and not any("as" in p or "bs" in p for p in msg[1:-2]))
    return diff


BITFINEX_IOT_BOOK = 232955  # chanId of the recording's {"event":"subscribed","channel":"book",...,"symbol":"tIOTETH"}

DIFFS: dict[str, tuple[str, str, Callable[[Wire], bool]]] = {
    "COINBASE": ("COINBASE.ws.2", "BTC-USD", lambda t: text_of(t).startswith('{"channel":"l2_data"')
                 and '"type":"update"' in text_of(t) and '"product_id":"BTC-USD"' in text_of(t)),
    "KRAKEN": ("KRAKEN.ws.50", "XMR/USD", _kraken_diff("XMR/USD")),
    "OKX": ("OKX.ws.1", "BTC-USDT", lambda t: '"channel":"books","instId":"BTC-USDT"' in text_of(t)
            and '"action":"update"' in text_of(t)),
    "BYBIT": ("BYBIT.ws.3", "BTCUSDT", lambda t: text_of(t).startswith('{"topic":"orderbook.200.BTCUSDT"')
              and '"delta"' in text_of(t)),
    "GATEIO": ("GATEIO.ws.1", "HAI_ETH", lambda t: '"channel":"spot.order_book_update","event":"update"' in text_of(t)
               and '"s":"HAI_ETH"' in text_of(t)),
    "KUCOIN": ("KUCOIN.ws.1", "BCHSV-USDT", lambda t: '"topic":"/market/level2:BCHSV-USDT"' in text_of(t)),
    "BITFINEX": ("BITFINEX.ws.11", "tIOTETH", lambda t: text_of(t).startswith(f"[{BITFINEX_IOT_BOOK},[")
                 and not text_of(t).startswith(f"[{BITFINEX_IOT_BOOK},[[")),
    "HUOBI": ("HUOBI.ws.44", "trioeth", lambda t: '"ch":"market.trioeth.depth.step0"' in text_of(t)),
}


def test_subscribing_as_recorded_receives_the_recorded_frames_byte_for_byte(replay: Any) -> None:
    exchange, _server, base, rec = replay
    for conn in rec.conns:
        greeting, got = replay_conn(exchange, base, conn)
        expected = conn.recvs[len(greeting):]
        print(f"\n{exchange} {conn.name} {conn.path}: {len(conn.sends)} sends, {len(got)}/{len(expected)} frames")
        assert got == expected
        # the server greets as the first recorded connection did (Kraken: that connection's connectionID)
        assert greeting == rec.conns[0].recvs[:len(greeting)]


# One key subscribed alone: (recorded connection, subscribe frame, which recorded frames it must get).
def _nth_ack(marker: str, n: int, data: Callable[[str], bool]) -> Callable[[list[Wire]], list[Wire]]:
    def select(frames: list[Wire]) -> list[Wire]:
        acks = [i for i, t in enumerate(frames) if marker in text_of(t)]
        return [t for i, t in enumerate(frames) if data(text_of(t)) or i == acks[n]]
    return select


def _bitfinex_trades(frames: list[Wire]) -> list[Wire]:
    acks = [orjson.loads(t) for t in frames if text_of(t).startswith('{"event":"subscribed","channel":"trades"')]
    chan = next(a["chanId"] for a in acks if a["symbol"] == "tBFTUSD")
    return [t for t in frames if text_of(t).startswith(f"[{chan},") or f'"chanId":{chan},' in text_of(t)]


SINGLE: dict[str, tuple[str, str, Callable[[list[Wire]], list[Wire]]]] = {
    "COINBASE": ("COINBASE.ws.2", '{"type":"subscribe","product_ids":["BTC-USD"],"channel":"market_trades"}',
                 lambda fs: [t for t in fs if (text_of(t).startswith('{"channel":"market_trades"') and '"BTC-USD"' in t)
                             or ('"subscriptions":{"market_trades":' in text_of(t))]),
    "KRAKEN": ("KRAKEN.ws.48", '{"event":"subscribe","pair":["XMR/USD"],"subscription":{"name":"trade"}}',
               lambda fs: [t for t in fs[1:] if text_of(t).endswith(',"trade","XMR/USD"]') or t == '{"event":"heartbeat"}'
                           or ('"pair":"XMR/USD"' in text_of(t) and '"subscriptionStatus"' in text_of(t))]),
    "OKX": ("OKX.ws.1", '{"op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"}]}',
            lambda fs: [t for t in fs if '"arg":{"channel":"trades","instId":"BTC-USDT"}' in text_of(t)]),
    "BYBIT": ("BYBIT.ws.3", '{"op":"subscribe","args":["publicTrade.BTCUSDT"]}',
              _nth_ack('"op":"subscribe"', 3, lambda t: t.startswith('{"topic":"publicTrade.BTCUSDT"'))),
    "GATEIO": ("GATEIO.ws.1", '{"time":1619093532,"channel":"spot.trades","event":"subscribe","payload":["DIS_USDT"]}',
               _nth_ack('"event":"subscribe"', 0, lambda t: '"channel":"spot.trades","event":"update"' in t
                        and '"currency_pair":"DIS_USDT"' in t)),
    "KUCOIN": ("KUCOIN.ws.1", '{"id":1,"type":"subscribe","topic":"/market/match:DAPPT-BTC","response":true}',
               lambda fs: _nth_ack('"type":"ack"', 0, lambda t: '"topic":"/market/match:DAPPT-BTC"' in t)(fs)),
    "BITFINEX": ("BITFINEX.ws.11", '{"event":"subscribe","channel":"trades","symbol":"tBFTUSD"}', _bitfinex_trades),
    "HUOBI": ("HUOBI.ws.44", '{"sub":"market.trioeth.trade.detail","id":11}',
              lambda fs: [t for t in fs if '"market.trioeth.trade.detail"' in text_of(t) or '{"ping":' in text_of(t)]),
}


# Connection-wide sequence numbers: the exchange numbers the frames one client gets (0.. / 1..), so a client
# subscribed to less than the recorder sees them renumbered: (pattern of the number, replacement, first number).
SEQUENCES: dict[str, tuple[str, str, int]] = {
    "COINBASE": (r'"sequence_num":\d+', '"sequence_num":{}', 0),
    "BITFINEX": (r",\d+\]$", ",{}]", 1),
}


def renumbered(exchange: str, frames: list[Wire]) -> list[Wire]:
    if exchange not in SEQUENCES:
        return frames
    pattern, replacement, n = SEQUENCES[exchange]
    out: list[Wire] = []
    for frame in frames:
        text, found = re.subn(pattern, replacement.format(n), text_of(frame), count=1)
        if found and (exchange != "BITFINEX" or text.startswith("[")):
            n += 1
            out.append(text)
        else:
            out.append(frame)
    return out


def test_one_subscription_gets_only_its_frames_and_acks(replay: Any) -> None:
    exchange, _server, base, rec = replay
    conn_name, subscribe, select = SINGLE[exchange]
    conn = find(rec, conn_name)
    expected = renumbered(exchange, select(conn.recvs[GREETINGS.get(exchange, 0):]))
    with connect(ws_url(base, conn.path), max_size=None) as ws:
        greeting = receive(ws, GREETINGS.get(exchange, 0))
        ws.send(subscribe)
        got = receive(ws, len(expected))
    print(f"\n{exchange}: {subscribe} -> {len(got)} of the connection's {len(conn.recvs)} frames")
    assert got == expected and len(greeting) == GREETINGS.get(exchange, 0)


PINGS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "KRAKEN": ('{"event":"ping","reqid":42}', lambda t: orjson.loads(t) == {"event": "pong", "reqid": 42}),
    "OKX": ("ping", lambda t: t == "pong"),
    "BYBIT": ('{"op":"ping","req_id":"7"}', lambda t: orjson.loads(t)["ret_msg"] == "pong"
              and orjson.loads(t)["op"] == "ping" and orjson.loads(t)["req_id"] == "7"),
    "GATEIO": ('{"time":1,"channel":"spot.ping"}', lambda t: orjson.loads(t)["channel"] == "spot.pong"),
    "KUCOIN": ('{"id":"p1","type":"ping"}', lambda t: orjson.loads(t) == {"id": "p1", "type": "pong"}),
    "BITFINEX": ('{"event":"ping","cid":1234}', lambda t: orjson.loads(t)["event"] == "pong"
                 and orjson.loads(t)["cid"] == 1234),
    "HUOBI": ('{"ping":1618678073643}', lambda t: orjson.loads(t) == {"pong": 1618678073643}),
}


def test_ping_is_answered_with_the_exchanges_pong(replay: Any) -> None:
    exchange, _server, base, rec = replay
    if exchange == "COINBASE":  # no ping message: the heartbeats channel keeps the connection alive
        conn = rec.conns[0]
        beats = [t for t in conn.recvs if text_of(t).startswith('{"channel":"heartbeats"')]
        with connect(ws_url(base, conn.path), max_size=None) as ws:
            ws.send(next(s for s in conn.sends if '"heartbeats"' in s))
            got = receive(ws, len(beats) + 1)  # + the subscriptions ack
        assert got[1:] == renumbered(exchange, [got[0], *beats])[1:]  # the beats, numbered 1.. after the ack (0)
        assert text_of(got[0]).startswith('{"channel":"subscriptions"') and '"sequence_num":0,' in text_of(got[0])
        print(f"\nCOINBASE heartbeats channel: {len(beats)} heartbeats")
        return
    ping, is_pong = PINGS[exchange]
    with connect(ws_url(base, rec.conns[0].path), max_size=None) as ws:
        receive(ws, GREETINGS.get(exchange, 0))
        ws.send(ping)
        answer = ws.recv(timeout=10)
    assert is_pong(text_of(answer)), answer


def test_dropped_diffs_are_the_next_n_of_that_symbol(replay: Any) -> None:
    exchange, server, base, rec = replay
    conn_name, symbol, is_diff = DIFFS[exchange]
    conn = find(rec, conn_name)
    server.state.reset_stats()
    server.state.set_faults(drop_diffs=2, fault_symbol=symbol)
    greeting, got = replay_conn(exchange, base, conn, extra=-2)
    recorded = conn.recvs[len(greeting):]
    diffs = [i for i, t in enumerate(recorded) if is_diff(t)]
    expected = [t for i, t in enumerate(recorded) if i not in diffs[:2]]
    stats = server.state.stats()
    print(f"\n{exchange}: {len(diffs)} {symbol} diffs recorded, dropped {stats['dropped']}, frames {stats['ws_frames']}")
    assert len(diffs) >= 2 and got == expected and stats["dropped"] == 2


def test_reorder_swaps_the_next_two_diffs_of_that_symbol(replay: Any) -> None:
    exchange, server, base, rec = replay
    conn_name, symbol, is_diff = DIFFS[exchange]
    conn = find(rec, conn_name)
    server.state.set_faults(reorder_diffs=1, fault_symbol=symbol)
    greeting, got = replay_conn(exchange, base, conn)
    expected = conn.recvs[len(greeting):]
    first, second = [i for i, t in enumerate(expected) if is_diff(t)][:2]
    expected = expected[:first] + expected[first + 1:second + 1] + [expected[first]] + expected[second + 1:]
    assert got == expected


def test_disconnect_after_n_frames_closes_the_websocket(replay: Any) -> None:
    exchange, server, base, rec = replay
    conn = find(rec, DIFFS[exchange][0])
    server.state.set_faults(ws_close_after_frames=10)
    # Only the subscriptions: the recorded keep-alives (HTX's pongs, OKX's pings) would race the server's close
    # (a send after it is a broken pipe, not a clean close, when the close frame has not been read yet).
    subscriptions = [t for t in conn.sends if "ping" not in t.lower() and "pong" not in t.lower()]
    with connect(ws_url(base, conn.path), max_size=None) as ws:
        greeting = receive(ws, GREETINGS.get(exchange, 0))
        for text in subscriptions:
            ws.send(text)
        got = receive(ws, 100)
        assert ws.close_code == 1000
    replies = 1 if exchange == "BITFINEX" else 0  # the answer to {"event":"conf"} is a reply, not a replayed frame
    assert got == conn.recvs[len(greeting):len(greeting) + 10 + replies]


@pytest.mark.parametrize("sim", ["KRAKEN"], indirect=True)
def test_disconnect_once_closes_one_connection_and_the_reconnect_replays_in_full(replay: Any) -> None:
    exchange, server, base, rec = replay
    conn = find(rec, "KRAKEN.ws.48")
    httpx.post(f"{base}/_sim/stats/reset").raise_for_status()
    httpx.post(f"{base}/_sim/faults", json={"ws_close_after_frames": 5, "ws_close_once": True}).raise_for_status()
    with connect(ws_url(base, conn.path), max_size=None) as ws:
        greeting = receive(ws, 1)
        ws.send(conn.sends[0])
        cut = receive(ws, 100)
        assert ws.close_code == 1000
    assert greeting + cut == conn.recvs[:6]
    greeting, full = replay_conn(exchange, base, conn)  # the reconnect: from the first frame again, not closed
    assert greeting + full == conn.recvs
    assert httpx.get(f"{base}/_sim/stats").json()["closed_by_fault"] == 1


def test_malformed_frame_is_injected_before_the_next_data_frame(replay: Any) -> None:
    exchange, server, base, rec = replay
    conn = find(rec, DIFFS[exchange][0])
    server.state.set_faults(malformed_frames=1)
    greeting, got = replay_conn(exchange, base, conn, extra=1)
    recorded = set(conn.recvs)
    bad = [i for i, t in enumerate(got) if t not in recorded]
    spec = replay_for(exchange)
    assert len(bad) == 1 and got[bad[0]] == spec.encode_reply(spec.malformed)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(text_of(got[bad[0]]))
    assert got[:bad[0]] + got[bad[0] + 1:] == conn.recvs[len(greeting):]


def test_paced_mode_replays_each_connection_by_recorded_time_times_speed(data_dir: Path) -> None:
    rec = load(data_dir, "OKX")
    conn = rec.conns[0]
    server = ReplayServer(replay_for("OKX"), data_dir, deterministic=False, speed=20.0, close_at_end=True)
    with server.running() as base, connect(ws_url(base, conn.path), max_size=None) as ws:
        for text in conn.sends:
            ws.send(text)
        got = [ws.recv(timeout=10)]
        began = time.monotonic()
        got += receive(ws, len(conn.recvs))  # until the server closes at the end of the recording
        took = time.monotonic() - began
        assert ws.close_code == 1001
    print(f"\nOKX paced x20: {len(got)} frames over {took:.2f} s (10.8 s recorded)")
    assert got == conn.recvs  # from the first frame (the book snapshots), in order
    assert took > 0.4  # 10.8 s of recorded time (first to last frame) / 20 = 0.54 s


def test_exchange_sim_command_serves_okx(data_dir: Path) -> None:
    port = free_port()
    marketlake = Path(sys.executable).parent / "marketlake"  # the console script of this environment
    proc = subprocess.Popen([str(marketlake), "exchange-sim", "--exchange", "okx", "--port", str(port),
                             "--deterministic"], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.05)
        with connect(f"ws://127.0.0.1:{port}/ws/v5/public") as ws:
            ws.send("ping")
            assert ws.recv(timeout=10) == "pong"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
