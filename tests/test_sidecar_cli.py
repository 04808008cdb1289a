"""`marketlake sidecar` as a user runs it: replay servers, relay and live process come up, the health report
shows every exchange streaming (the five of the default tickers), a subscriber gets ticks, and SIGINT stops
every process (their ports close)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import zmq

from live_relay import codec
from live_relay.messages import Tick
from live_relay.sidecar import fetch_health
from marketlake.kafka_broker import free_port, port_open
from marketlake.settings import Settings
from marketlake.supervisor import settings_env

EXCHANGES = {"BINANCE", "COINBASE", "KRAKEN", "OKX", "BYBIT"}  # every exchange of the default live tickers


def test_sidecar_streams_reports_health_and_stops_everything_on_sigint(settings: Settings) -> None:
    coinbase, kraken, okx, bybit = free_port(), free_port(), free_port(), free_port()
    s = settings.model_copy(update={
        "live_health_port": free_port(), "coinbase_ws_url": f"ws://127.0.0.1:{coinbase}/",
        "coinbase_rest_url": f"http://127.0.0.1:{coinbase}", "kraken_ws_url": f"ws://127.0.0.1:{kraken}/",
        "kraken_rest_url": f"http://127.0.0.1:{kraken}", "okx_ws_url": f"ws://127.0.0.1:{okx}/ws/v5/public",
        "okx_rest_url": f"http://127.0.0.1:{okx}", "bybit_ws_url": f"ws://127.0.0.1:{bybit}/v5/public/spot",
        "bybit_rest_url": f"http://127.0.0.1:{bybit}", "replay_speed": 1.0,
    })  # fmt: skip
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(s.relay_endpoint(s.xpub_port))
    sub.subscribe(b"BINANCE:BTC/USDT|tick")
    proc = subprocess.Popen([sys.executable, "-m", "marketlake.cli", "sidecar"], env=settings_env(s),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        report = None
        while not (report and all(ex["frames"] > 0 for ex in report["exchanges"].values())
                   and len(report["exchanges"]) == len(EXCHANGES)):  # fmt: skip
            assert proc.poll() is None, f"sidecar exited: {proc.stdout.read() if proc.stdout else ''}"
            assert time.monotonic() < deadline, f"not every exchange streaming: {report}"
            time.sleep(0.5)  # polling the health endpoint of a starting process, with a deadline
            report = fetch_health(s, 2.0)
        assert set(report["exchanges"]) == EXCHANGES
        assert all(ex["state"] == "live" and ex["malformed"] == 0 for ex in report["exchanges"].values())
        assert sub.poll(30_000), "no tick reached the subscriber"
        assert isinstance(codec.decode_sub(sub.recv_multipart())[1], Tick)
        ports = {"binance replay": s.sim_port, "coinbase replay": coinbase, "kraken replay": kraken,
                 "okx replay": okx, "bybit replay": bybit, "relay": s.client_port, "live health": s.live_health_port}  # fmt: skip
        assert all(port_open("127.0.0.1", p) for p in ports.values())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0  # the supervisor stops its children before it exits
        assert not [name for name, p in ports.items() if port_open("127.0.0.1", p)], "a process kept its port"
        print(f"sidecar: health {report['stream']}")
    finally:
        sub.close()
        ctx.term()
        if proc.poll() is None:
            proc.kill()
