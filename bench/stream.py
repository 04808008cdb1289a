"""Benchmark (not a test): the live candle builder and stream processor on the recorded Binance session.

Input: every trade and top-of-book frame of the recordings (BTCUSDT + ETHUSDT,
2024-08-08), parsed once up front with the live parser (not timed). Measured in
the same run:

1. CandleBuilder (1 s and 60 s candles, an update per trade): trades/s; baseline:
   the cheapest exact streaming computation (a Decimal loop of 60 s candles into a
   dict, no update messages) — the ratio says what the live builder's updates,
   second period and ordering rules cost;
2. StreamProcessor.process over trades + tops in receive order (ticks, candles,
   top of book, BBO world view): events/s;
3. memory: peak traced allocation of the processor run (tracemalloc).

    .venv/bin/python -m bench.stream [--repeat 5] [--write bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

import orjson

from ingestors.binance.parse import parse_trade_event
from ingestors.binance.recording import load_recordings
from live_relay.candles import CandleBuilder
from live_relay.messages import OHLC, Tick, TopOfBook
from live_relay.stream import StreamProcessor
from marketlake.settings import Settings

from .common import write_section

HEADING = "## Live candle builder and stream processor (issue 4)"


def recorded_events(data_dir: Path) -> tuple[list[Tick], list[Tick | TopOfBook]]:
    """(trades in exchange-time order, trades + tops in receive order) of every recording."""
    trades: list[Tick] = []
    merged: list[tuple[int, Tick | TopOfBook]] = []
    for symbol, rec in load_recordings(data_dir).items():
        ticker = f"BINANCE:{symbol[:-4]}/USDT"
        for f in rec.frames:
            if f.stream.endswith("@trade"):
                t = parse_trade_event(orjson.loads(f.data_text()), ticker, f.recv_ns)
                trades.append(t)
                merged.append((f.recv_ns, t))
            elif f.stream.endswith("@bookTicker"):
                d = orjson.loads(f.data_text())
                merged.append((f.recv_ns, TopOfBook(ticker=ticker, bid_price=d["b"], bid_size=d["B"], ask_price=d["a"],
                                                    ask_size=d["A"], receive_time_ns=f.recv_ns, sequence=d["u"])))  # fmt: skip
    merged.sort(key=lambda x: x[0])
    return trades, [e for _, e in merged]


def candle_builder_run(trades: list[Tick]) -> tuple[float, list[OHLC]]:
    builder = CandleBuilder([1, 60])
    t0 = time.perf_counter()
    out = builder.on_trades(trades)
    return time.perf_counter() - t0, [c for c in out if c.closed and c.period_seconds == 60]


def loop_baseline(trades: list[Tick]) -> tuple[float, int]:
    """The cheapest exact streaming computation: per trade, Decimal open/high/low/close/volume of its 60 s candle,
    in a dict, with no update messages, no 1 s candles and no late-trade rule."""
    t0 = time.perf_counter()
    candles: dict[tuple[str, int], list] = {}
    for t in trades:
        key = (t.ticker, t.exchange_time_ns // 60_000_000_000)
        price, size = Decimal(t.price), Decimal(t.size)
        c = candles.get(key)
        if c is None:
            candles[key] = [price, price, price, price, size, 1]
        else:
            c[1], c[2], c[3] = max(c[1], price), min(c[2], price), price
            c[4] += size
            c[5] += 1
    return time.perf_counter() - t0, len(candles)


def processor_run(events: list[Tick | TopOfBook]) -> tuple[float, int, int]:
    def run() -> tuple[float, int]:
        processor = StreamProcessor([1, 60])
        t0 = time.perf_counter()
        publications = 0
        for i in range(0, len(events), 1024):  # the live process hands the processor bus batches
            out, _closed = processor.process(events[i:i + 1024])
            publications += len(out)
        return time.perf_counter() - t0, publications

    elapsed, publications = run()
    tracemalloc.start()  # a second run for memory: tracing slows Python several times over
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, publications, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", type=Path, help="replace this benchmark's section of a results file")
    args = parser.parse_args()
    trades, events = recorded_events(Settings().data_dir)
    trades.sort(key=lambda t: (t.exchange_time_ns, t.ticker))
    ours, base = [], []
    closed = groups = 0
    for _ in range(args.repeat):
        seconds, candles = candle_builder_run(trades)
        ours.append(seconds)
        closed = len(candles)
        seconds, groups = loop_baseline(trades)
        base.append(seconds)
    proc = [processor_run(events) for _ in range(args.repeat)]
    o, b = statistics.median(ours), statistics.median(base)
    p = statistics.median(x[0] for x in proc)
    text = "\n".join([
        HEADING, "",
        "Command: `.venv/bin/python -m bench.stream --write bench/RESULTS.md`. Input: the recorded Binance session",
        f"(BTCUSDT + ETHUSDT), {len(trades):,} trades and {len(events) - len(trades):,} top-of-book frames, parsed",
        f"up front. Median of {args.repeat}, one core.", "",
        "| measure | ours | baseline (same run) | ratio |",
        "| --- | --- | --- | --- |",
        f"| CandleBuilder, 1 s + 60 s candles with an update per trade | {len(trades) / o:,.0f} trades/s | a bare Decimal "
        f"loop of 60 s candles only, no updates: {len(trades) / b:,.0f} trades/s | {b / o:.2f} |",
        f"| StreamProcessor (ticks, candles, top of book, BBO world view) | {len(events) / p:,.0f} events/s "
        f"({proc[0][1]:,} publications) | — | — |", "",
        f"{closed} closed 60 s candles from ours, {groups} candles from the baseline (the last minute of each ticker is "
        f"still open for ours). Peak traced memory of one processor run: {max(x[2] for x in proc) / 1e6:.1f} MB.", "",
    ])  # fmt: skip
    print(text)
    if args.write:
        write_section(args.write, HEADING, text)


if __name__ == "__main__":
    main()
