"""The sidecar's exchange/ticker/endpoint configuration: settings defaults, TOML file, flags, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from live_relay.sidecar_config import SidecarConfigError, load_sidecar_config
from marketlake.settings import Settings


def test_defaults_group_the_recorded_tickers_by_exchange_with_the_replay_urls() -> None:
    config = load_sidecar_config(Settings(live_tickers=["BINANCE:BTC/USDT", "KRAKEN:BTC/CHF", "BINANCE:ETH/USDT"]))
    assert {k: v.tickers for k, v in config.exchanges.items()} == {
        "BINANCE": ["BINANCE:BTC/USDT", "BINANCE:ETH/USDT"], "KRAKEN": ["KRAKEN:BTC/CHF"]}
    assert config.exchanges["BINANCE"].ws_url == Settings().binance_ws_url
    assert config.candle_periods == Settings().live_candle_periods


def test_toml_file_replaces_tickers_urls_and_stream_options(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.toml"
    path.write_text("""
[exchanges.binance]
tickers = ["BTC/USDT"]
ws_url = "wss://stream.binance.com:9443"

[stream]
candle_periods = [5]
heatmap_bucket = { "BINANCE:BTC/USDT" = "10" }
""")
    config = load_sidecar_config(Settings(), path)
    assert list(config.exchanges) == ["BINANCE"]
    assert config.exchanges["BINANCE"].tickers == ["BINANCE:BTC/USDT"]
    assert config.exchanges["BINANCE"].ws_url == "wss://stream.binance.com:9443"
    assert config.exchanges["BINANCE"].rest_url == Settings().binance_rest_url
    assert (config.candle_periods, config.heatmap_bucket) == ([5], {"BINANCE:BTC/USDT": "10"})
    flags = load_sidecar_config(Settings(), path, tickers=["COINBASE:BTC/USD"])
    assert list(flags.exchanges) == ["COINBASE"]


@pytest.mark.parametrize(("tickers", "message"), [
    (["NOPE:BTC/USDT"], "unknown exchange"),
    (["BINANCE-BTC/USDT"], "bad ticker"),
])  # fmt: skip
def test_bad_tickers_are_refused_with_the_reason(tickers: list[str], message: str) -> None:
    with pytest.raises(SidecarConfigError, match=message):
        load_sidecar_config(Settings(), tickers=tickers)


def test_unreadable_config_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[exchanges\n")
    with pytest.raises(SidecarConfigError, match="broken.toml"):
        load_sidecar_config(Settings(), path)
