"""The `marketlake` command line: help everywhere, clear errors with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from live_relay.relay import Relay
from marketlake.cli import app
from marketlake.settings import Settings
from marketlake.supervisor import settings_env

COMMANDS = ["relay", "ingestor", "exchange-sim", "kafka", "history", "cancel", "subscribe", "sql", "demo", "run", "config",
            "verify-book", "aggregate"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marketlake.cli", *args], env=settings_env(settings),
                          capture_output=True, text=True, timeout=60)


def test_history_with_a_malformed_ticker_says_why_and_exits_1(settings: Settings, relay: Relay) -> None:
    proc = run_cli(settings, "history", "BINANCE-BTCUSDT", "--start", "2024-08-01", "--end", "2024-08-02")
    assert proc.returncode == 1
    assert "malformed ticker" in proc.stderr


def test_history_with_an_unreadable_date_says_why(settings: Settings) -> None:
    proc = run_cli(settings, "history", "BINANCE:BTC/USDT", "--start", "yesterday", "--end", "2024-08-02")
    assert proc.returncode == 2
    assert "cannot read time 'yesterday'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cancel_for_an_unknown_exchange_is_refused(settings: Settings, relay: Relay) -> None:
    proc = run_cli(settings, "cancel", "r1", "--exchange", "NOPE")
    assert proc.returncode == 1
    assert "unknown exchange 'NOPE'" in proc.stderr


def test_config_prints_every_setting_with_its_variable(settings: Settings) -> None:
    proc = run_cli(settings, "config")
    assert proc.returncode == 0
    names = {line.split("=", 1)[0] for line in proc.stdout.splitlines()}
    assert names == {f"MARKETLAKE_{n.upper()}" for n in Settings.model_fields}
