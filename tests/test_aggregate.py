"""`marketlake aggregate`: the live candle builder over recordings equals independent and exchange candles."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from typer.testing import CliRunner

from marketlake.cli import app

from .test_candles import duckdb_minutes

FIRST_KEYS = ["ticker", "open_time", "open", "high", "low", "close", "volume", "trade_count"]
DECIMALS = ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume")


def aggregate(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["aggregate", *args])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("aggregate: ")
    return [json.loads(line) for line in result.stdout.splitlines()]


def numbers(c: dict[str, Any]) -> tuple[Any, ...]:
    return (c["open_time"], c["trade_count"], *(Decimal(c[k]) for k in DECIMALS))


@pytest.fixture(scope="module")
def btc_file(data_dir: Path) -> Path:
    return data_dir / "binance" / "spot_btcusdt_20240808.gz"


def test_one_minute_candles_of_the_binance_recording_equal_duckdb_over_its_trades(btc_file: Path) -> None:
    candles = aggregate("--period", "60", str(btc_file))
    assert [list(c)[:8] for c in candles] == [FIRST_KEYS] * 7
    assert {(c["ticker"], c["period_seconds"]) for c in candles} == {("BINANCE:BTC/USDT", 60)}
    expected = [(row[0], row[1], *(Decimal(x) for x in row[2:])) for row in duckdb_minutes(btc_file)]
    assert [numbers(c) for c in candles] == expected
    assert sum(c["trade_count"] for c in candles) == 9757


def test_five_minute_candles_combine_the_one_minute_ones(btc_file: Path) -> None:
    minutes, fives = aggregate("--period", "60", str(btc_file)), aggregate("--period", "300", str(btc_file))
    for five in fives:
        part = [m for m in minutes if five["open_time"] <= m["open_time"] < five["open_time"] + 300_000_000]
        assert five["open"] == part[0]["open"] and five["close"] == part[-1]["close"]
        assert Decimal(five["high"]) == max(Decimal(m["high"]) for m in part)
        assert Decimal(five["low"]) == min(Decimal(m["low"]) for m in part)
        assert Decimal(five["volume"]) == sum(Decimal(m["volume"]) for m in part)
        assert five["trade_count"] == sum(m["trade_count"] for m in part)
    assert [f["open_time"] for f in fives] == [1723161000000000, 1723161300000000, 1723161600000000]


def test_two_files_are_one_session_with_candles_for_each_ticker(data_dir: Path, btc_file: Path) -> None:
    eth_file = data_dir / "binance" / "spot_ethusdt_20240808.gz"
    both = aggregate("--period", "60", str(btc_file), str(eth_file))
    alone = aggregate("--period", "60", str(btc_file)) + aggregate("--period", "60", str(eth_file))
    key = lambda c: (c["ticker"], c["open_time"])  # noqa: E731
    assert sorted(both, key=key) == sorted(alone, key=key)
    assert {c["ticker"] for c in both} == {"BINANCE:BTC/USDT", "BINANCE:ETH/USDT"}
    assert [c["open_time"] for c in both] == sorted(c["open_time"] for c in both)


def binance_kline_events(path: Path) -> list[dict[str, Any]]:
    """Binance's own kline_1m stream events in a cryptofeed recording."""
    with path.open("rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as reader:
        lines = reader.read().splitlines()
    events = []
    for line in lines:
        rec = orjson.loads(line)
        if rec["t"] == "recv" and "@kline_1m" in rec.get("data", "")[:40]:
            events.append(orjson.loads(rec["data"])["data"]["k"])
    return events


def test_candles_from_aggregate_trades_equal_binances_own_kline_when_it_saw_the_same_trades(data_dir: Path) -> None:
    path = data_dir / "cryptofeed" / "BINANCE.jsonl.zst"
    candles = aggregate("--period", "60", "--format", "cryptofeed", str(path))
    assert {c["ticker"] for c in candles} == {"BINANCE:LRC/BTC", "BINANCE:NKN/USDT"}
    compared = 0
    for c in candles:
        symbol = c["ticker"].split(":")[1].replace("/", "")
        for k in binance_kline_events(path):  # the kline Binance sent with exactly our trades in it
            if k["s"] == symbol and k["t"] * 1000 == c["open_time"] and k["n"] == c["trade_count"]:
                theirs = {"open": k["o"], "high": k["h"], "low": k["l"], "close": k["c"], "volume": k["v"],
                          "quote_volume": k["q"], "taker_buy_volume": k["V"], "taker_buy_quote_volume": k["Q"]}
                assert {f: Decimal(c[f]) for f in theirs} == {f: Decimal(v) for f, v in theirs.items()}
                compared += 1
    assert compared >= 1  # LRC/BTC: the recording holds every trade of that minute (NKN/USDT traded before it began)


@pytest.mark.parametrize(("args", "message"), [
    (["--period", "60", "cryptofeed/KRAKEN.jsonl.zst"], "no trade parser for KRAKEN"),
    (["--period", "0", "binance/spot_btcusdt_20240808.gz"], "--period must be positive"),
    (["--period", "60", "binance/missing.gz"], "recording file not found"),
    (["--period", "60", "--format", "csv", "binance/spot_btcusdt_20240808.gz"], "unknown --format 'csv'"),
])
def test_unusable_input_exits_2_and_says_why(data_dir: Path, args: list[str], message: str) -> None:
    *options, name = args
    result = CliRunner().invoke(app, ["aggregate", *options, str(data_dir / name)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
