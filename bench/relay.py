"""Benchmark (not a test): relay fan-out and tick-to-subscriber latency against a bare `zmq.proxy`.

In the same run, the same publisher and subscribers go through (a) the relay
process as `marketlake relay` runs it (with its inspector on, its defaults) and
(b) a bare `zmq.proxy(XSUB, XPUB)` process with the same high-water marks:

1. throughput with 1, 4 and 16 subscribers: one publisher sends N encoded Tick
   publications as fast as it can; each subscriber counts what it receives
   between its first and last message; deliveries/s = all received / longest span;
2. latency at a fixed offered load (ticks stamped with the send time, one
   subscriber): p50 / p99 / max of receive time - send time;
3. memory: the relay process's peak RSS (VmHWM) after the runs.

    .venv/bin/python -m bench.relay [--messages 200000] [--rate 10000] [--write bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import zmq

from live_relay import codec
from live_relay.messages import Tick
from marketlake.kafka_broker import ensure_topics, free_port, port_open
from marketlake.kafka_topics import all_topics
from marketlake.settings import Settings
from marketlake.supervisor import settings_env

from .common import bench_broker, write_section

HEADING = "## Relay fan-out and latency (issue 4)"
TOPIC = "BINANCE:BTC/USDT|tick"
XPUB_SNDHWM = 100_000  # the relay's own setting (live_relay/fanout.py), given to the bare proxy too


def tick(stamp_ns: int = 0) -> list[bytes]:
    return codec.encode_pub(TOPIC, Tick(ticker="BINANCE:BTC/USDT", trade_id="3712345678", price="61234.56000000",
                                        size="0.00123000", exchange_time_ns=stamp_ns, receive_time_ns=stamp_ns))  # fmt: skip


def bare_proxy(xsub_port: int, xpub_port: int) -> None:
    ctx = zmq.Context()
    xsub, xpub = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)
    xpub.setsockopt(zmq.SNDHWM, XPUB_SNDHWM)
    xsub.bind(f"tcp://127.0.0.1:{xsub_port}")
    xpub.bind(f"tcp://127.0.0.1:{xpub_port}")
    zmq.proxy(xsub, xpub)


def subscriber(xpub_port: int, expected: int, ready: Any, out: Any, latency: bool) -> None:
    """Count (or time) publications until `expected` arrived or the stream went quiet for 5 s."""
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.connect(f"tcp://127.0.0.1:{xpub_port}")
    sub.subscribe(TOPIC.encode())
    ready.put(os.getpid())
    got, first, last, delays = 0, 0.0, 0.0, []
    while got < expected and sub.poll(5000):
        frames = sub.recv_multipart()
        now = time.time_ns()
        if got == 0:
            first = time.perf_counter()
        last = time.perf_counter()
        got += 1
        if latency:
            delays.append(now - codec.decode_sub(frames)[1].receive_time_ns)  # type: ignore[union-attr]
    out.put((got, last - first, delays))
    sub.close(0)
    ctx.term()


def publish(xsub_port: int, messages: int, rate: float | None, subscribers: int) -> None:
    """Send `messages` ticks (paced at `rate`/s when given) once every subscriber's subscription has arrived."""
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.setsockopt(zmq.XPUB_VERBOSE, 1)  # see every subscriber's (identical) subscription, not just the first
    pub.connect(f"tcp://127.0.0.1:{xsub_port}")
    seen = 0
    while seen < 1:  # the proxy forwards one subscription per topic upstream
        if pub.poll(10_000):
            seen += pub.recv()[:1] == b"\x01"
        else:
            raise TimeoutError("no subscription reached the publisher")
    if rate is None:
        frames = tick()
        for _ in range(messages):
            pub.send_multipart(frames)
    else:
        start = time.perf_counter()
        for i in range(messages):
            due = start + i / rate
            while (now := time.perf_counter()) < due:  # pacing the offered load (a benchmark, not a test)
                if due - now > 0.001:
                    time.sleep(due - now - 0.0005)
            pub.send_multipart(tick(time.time_ns()))
    pub.close(linger=10_000)
    ctx.term()


def run_case(xsub_port: int, xpub_port: int, subscribers: int, messages: int, rate: float | None) -> dict[str, Any]:
    ready: Any = mp.Queue()
    out: Any = mp.Queue()
    procs = [mp.Process(target=subscriber, args=(xpub_port, messages, ready, out, rate is not None))
             for _ in range(subscribers)]  # fmt: skip
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=30)
    time.sleep(0.5)  # let every SUB finish its handshake with the proxy: a benchmark warm-up, not synchronisation
    publish(xsub_port, messages, rate, subscribers)
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(30)
    received = sum(r[0] for r in results)
    span = max(r[1] for r in results) or 1e-9
    delays = sorted(d for r in results for d in r[2])
    return {
        "received": received, "sent": messages * subscribers, "deliveries_per_s": received / span,
        "p50_us": delays[len(delays) // 2] / 1000 if delays else 0.0,
        "p99_us": delays[int(len(delays) * 0.99)] / 1000 if delays else 0.0,
        "max_us": delays[-1] / 1000 if delays else 0.0,
    }  # fmt: skip


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(settings: Settings, messages: int, rate: float, repeat: int) -> dict[str, Any]:
    relay = subprocess.Popen([sys.executable, "-m", "marketlake.cli", "relay"], env=settings_env(settings),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    px, py = free_port(), free_port()
    proxy = mp.Process(target=bare_proxy, args=(px, py), daemon=True)
    proxy.start()
    deadline = time.monotonic() + 60
    while not (port_open("127.0.0.1", settings.client_port) and port_open("127.0.0.1", py)):
        if time.monotonic() > deadline:
            raise TimeoutError("relay or proxy did not start")
        time.sleep(0.1)  # waiting for the ports, with a deadline
    results: dict[str, Any] = {"fanout": {}, "latency": {}}
    try:
        for k in (1, 4, 16):
            ours, base = [], []
            for _ in range(repeat):  # alternate, so background noise hits both alike
                base.append(run_case(px, py, k, messages, None))
                ours.append(run_case(settings.xsub_port, settings.xpub_port, k, messages, None))
            results["fanout"][k] = (ours, base)
        n = int(rate * 5)
        results["latency"] = {"relay": run_case(settings.xsub_port, settings.xpub_port, 1, n, rate),
                              "proxy": run_case(px, py, 1, n, rate)}  # fmt: skip
        results["rss_mb"] = peak_rss_mb(relay.pid)
    finally:
        relay.terminate()
        relay.wait(30)
        proxy.kill()
    results.update(messages=messages, rate=rate, repeat=repeat)
    return results


def report(r: dict[str, Any]) -> str:
    lines = [HEADING, "",
             "Command: `.venv/bin/python -m bench.relay --write bench/RESULTS.md`.",
             f"One publisher sends {r['messages']:,} encoded Tick publications (topic `{TOPIC}`) as fast as it can;",
             "subscribers are separate processes. Baseline in the same run: a bare `zmq.proxy(XSUB, XPUB)` process",
             f"with the same XPUB high-water mark. Median of {r['repeat']} alternating runs; 2-core machine, so with",
             "16 subscribers every process competes for the same two cores.",
             "",
             "| subscribers | relay deliveries/s | zmq.proxy deliveries/s | ratio | delivered (relay / proxy) |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for k, (ours, base) in r["fanout"].items():
        o = statistics.median(x["deliveries_per_s"] for x in ours)
        b = statistics.median(x["deliveries_per_s"] for x in base)
        got_o = min(x["received"] / x["sent"] for x in ours)
        got_b = min(x["received"] / x["sent"] for x in base)
        lines.append(f"| {k} | {o:,.0f} | {b:,.0f} | **{o / b:.2f}** | {got_o:.1%} / {got_b:.1%} |")
    lat = r["latency"]
    lines += ["",
              f"Tick-to-subscriber latency at {r['rate']:,.0f} ticks/s offered for 5 s, one subscriber "
              "(send stamp to receive, same host clock):",
              "",
              "| path | p50 µs | p99 µs | max µs | delivered |",
              "| --- | --- | --- | --- | --- |",
              *[f"| {name} | {x['p50_us']:.0f} | {x['p99_us']:.0f} | {x['max_us']:.0f} | {x['received']:,}/{x['sent']:,} |"
                for name, x in (("relay", lat["relay"]), ("zmq.proxy", lat["proxy"]))],
              "",
              f"Relay process peak RSS after all runs: {r['rss_mb']:.0f} MB.",
              ""]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", type=Path, help="replace this benchmark's section of a results file")
    args = parser.parse_args()
    with bench_broker() as (home, broker):
        ports = {f: free_port() for f in ("client_port", "work_port", "control_port", "xsub_port", "xpub_port")}
        settings = Settings(home=home, kafka_bootstrap=broker.bootstrap, relay_metrics_port=0, **ports)  # type: ignore[arg-type]
        ensure_topics(settings.kafka_bootstrap, all_topics(settings))
        result = measure(settings, args.messages, args.rate, args.repeat)
    text = report(result)
    print(text)
    if args.write:
        write_section(args.write, HEADING, text)


if __name__ == "__main__":
    main()
