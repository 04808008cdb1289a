"""What the sidecar streams: exchanges, their tickers and endpoints, and the stream processor's options.

Defaults come from Settings (MARKETLAKE_LIVE_TICKERS, the <exchange>_ws_url /
_rest_url fields, MARKETLAKE_LIVE_CANDLE_PERIODS); a TOML file
(MARKETLAKE_LIVE_CONFIG or `marketlake sidecar --config FILE`) and `--ticker`
flags override them:

    [exchanges.BINANCE]
    tickers = ["BTC/USDT", "ETH/USDT"]            # BASE/QUOTE, or full "BINANCE:BTC/USDT"
    ws_url = "wss://stream.binance.com:9443"      # optional: talk to the real exchange
    rest_url = "https://api.binance.com"

    [stream]
    candle_periods = [1, 60]
    heatmap_bucket = { "BINANCE:BTC/USDT" = "10" }   # price bucket size per ticker
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from live_relay.topics import KNOWN_EXCHANGES, parse_ticker
from marketlake.settings import Settings

__all__ = ["ExchangeConfig", "SidecarConfig", "SidecarConfigError", "load_sidecar_config"]


class SidecarConfigError(ValueError):
    """A sidecar config file or flag that names an unknown exchange, a malformed ticker or an unreadable file."""


class ExchangeConfig(BaseModel):
    tickers: list[str]  # full tickers, "EXCHANGE:BASE/QUOTE"
    ws_url: str
    rest_url: str


class SidecarConfig(BaseModel):
    exchanges: dict[str, ExchangeConfig]
    candle_periods: list[int] = Field(default_factory=lambda: [60])
    heatmap_bucket: dict[str, str] = Field(default_factory=dict)

    @property
    def tickers(self) -> list[str]:
        return [t for ex in self.exchanges.values() for t in ex.tickers]


def _urls(settings: Settings, exchange: str) -> tuple[str, str]:
    name = exchange.lower()
    ws, rest = getattr(settings, f"{name}_ws_url", None), getattr(settings, f"{name}_rest_url", None)
    if not ws or not rest:
        raise SidecarConfigError(f"no websocket/REST URL settings for {exchange} (MARKETLAKE_{exchange}_WS_URL)")
    return str(ws), str(rest)


def _full_ticker(exchange: str, ticker: str) -> str:
    full = ticker if ":" in ticker else f"{exchange}:{ticker}"
    try:
        parsed = parse_ticker(full)
    except ValueError as exc:
        raise SidecarConfigError(f"bad ticker {ticker!r} for {exchange}: {exc}") from exc
    if parsed.exchange != exchange:
        raise SidecarConfigError(f"ticker {ticker!r} listed under exchange {exchange}")
    return full


def load_sidecar_config(settings: Settings, path: Path | None = None, tickers: Sequence[str] = ()) -> SidecarConfig:
    """Settings' defaults, then the TOML file, then `tickers` (flags replace every exchange's list when given)."""
    chosen = list(tickers) or list(settings.live_tickers)
    file: dict[str, object] = {}
    path = path or (Path(settings.live_config) if settings.live_config else None)
    if path is not None:
        try:
            file = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SidecarConfigError(f"cannot read sidecar config {path}: {exc}") from exc
    per_exchange: dict[str, dict[str, object]] = {}
    file_exchanges = file.get("exchanges", {})
    if not isinstance(file_exchanges, dict):
        raise SidecarConfigError(f"[exchanges] in {path} must be a table")
    if not tickers and file_exchanges:
        chosen = []
    for name, body in file_exchanges.items():
        exchange = str(name).upper()
        if not isinstance(body, dict):
            raise SidecarConfigError(f"[exchanges.{name}] in {path} must be a table")
        per_exchange[exchange] = dict(body)
        if not tickers:
            chosen += [_full_ticker(exchange, str(t)) for t in body.get("tickers", [])]
    grouped: dict[str, list[str]] = {}
    for ticker in chosen:
        try:
            exchange = parse_ticker(ticker).exchange
        except ValueError as exc:
            raise SidecarConfigError(f"bad ticker {ticker!r}: {exc}") from exc
        if exchange not in KNOWN_EXCHANGES:
            raise SidecarConfigError(f"unknown exchange in {ticker!r}; known: {', '.join(sorted(KNOWN_EXCHANGES))}")
        grouped.setdefault(exchange, []).append(_full_ticker(exchange, ticker))
    exchanges = {}
    for exchange, names in grouped.items():
        ws, rest = _urls(settings, exchange)
        body = per_exchange.get(exchange, {})
        exchanges[exchange] = ExchangeConfig(tickers=list(dict.fromkeys(names)), ws_url=str(body.get("ws_url", ws)),
                                             rest_url=str(body.get("rest_url", rest)))  # fmt: skip
    stream = file.get("stream", {})
    if not isinstance(stream, dict):
        raise SidecarConfigError(f"[stream] in {path} must be a table")
    try:
        return SidecarConfig(exchanges=exchanges, **{"candle_periods": list(settings.live_candle_periods), **stream})
    except ValidationError as exc:
        raise SidecarConfigError(f"[stream] in {path}: {exc}") from exc
