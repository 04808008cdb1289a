"""The one typed settings object, read from MARKETLAKE_* environment variables.

Every default runs the platform on one machine (embedded mode). The README
lists every variable; `marketlake config` prints the values in effect.
"""

from __future__ import annotations

import ast
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def _ticker_list(value: object) -> object:
    """A ticker list from the environment: comma-separated, a JSON list, or the Python list repr that
    `marketlake.supervisor.settings_env` writes for its children (``str(list)``)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text.startswith("["):
        return [t.strip() for t in text.split(",") if t.strip()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return ast.literal_eval(text)  # literals only: never evaluates code


TickerList = Annotated[list[str], NoDecode, BeforeValidator(_ticker_list)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETLAKE_", extra="ignore")

    home: Path = Field(REPO_ROOT / ".marketlake", description="State directory: Kafka data, logs, warehouse.")
    data_dir: Path = Field(
        REPO_ROOT.parent / "shared" / "data", description="Recorded exchange data read by the replay servers."
    )

    # Kafka
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_topic_prefix: str = Field("marketlake.", description="Prefix of every Kafka topic the project uses.")
    kafka_history_partitions: int = Field(4, description="Partitions of the history batch topic.")
    kafka_live_partitions: int = Field(4, description="Partitions of each live topic (marketlake.live.*), keyed by ticker.")

    # Relay (binds on relay_bind_host, everyone else connects to relay_host)
    relay_host: str = Field("127.0.0.1", description="Host that clients and ingestors connect to.")
    relay_bind_host: str = Field("127.0.0.1", description="Interface the relay binds ('*' for all).")
    client_port: int = Field(5559, description="ROUTER: client requests.")
    work_port: int = Field(5555, description="PUB: ingestor work queue, exchange-prefixed topics.")
    control_port: int = Field(5556, description="PUB: ingestor control channel.")
    xsub_port: int = Field(5557, description="XSUB: publishers connect here.")
    xpub_port: int = Field(5558, description="XPUB: subscribers connect here.")
    relay_inspect_publications: bool = Field(
        True, description="Copy each publication to a validator thread that counts malformed ones (sampled under floods)."
    )
    relay_metrics_port: int = Field(9464, description="Prometheus metrics of the relay (0 disables).")
    max_request_days: int = Field(366, description="Longest history range one request may ask for.")
    kafka_ack_timeout_seconds: float = Field(10.0, description="How long the relay waits for Kafka before refusing.")

    # Notifications
    notify_subscriber_wait_seconds: float = Field(
        3.0, description="How long a short-lived notifier waits to see a subscriber before it sends anyway."
    )

    # Iceberg
    catalog_name: str = Field("marketlake", description="Iceberg catalog name (the SQL catalog keys tables by it).")
    catalog_uri: str = Field("", description="SQL catalog URI; default: SQLite under home.")
    warehouse: str = Field("", description="Warehouse location; default: a directory under home.")

    # Exchanges
    binance_rest_url: str = Field("http://127.0.0.1:8765", description="Binance REST base URL (replay server by default).")
    binance_ws_url: str = Field("ws://127.0.0.1:8765/ws", description="Binance websocket base URL.")
    coinbase_rest_url: str = Field("http://127.0.0.1:8766", description="Coinbase Advanced Trade REST base URL.")
    coinbase_ws_url: str = Field("ws://127.0.0.1:8766/", description="Coinbase Advanced Trade websocket URL.")
    kraken_rest_url: str = Field("http://127.0.0.1:8767", description="Kraken REST base URL.")
    kraken_ws_url: str = Field("ws://127.0.0.1:8767/", description="Kraken websocket (v1) URL.")
    okx_rest_url: str = Field("http://127.0.0.1:8768", description="OKX REST base URL.")
    okx_ws_url: str = Field("ws://127.0.0.1:8768/ws/v5/public", description="OKX public websocket URL.")
    bybit_rest_url: str = Field("http://127.0.0.1:8769", description="Bybit REST base URL.")
    bybit_ws_url: str = Field("ws://127.0.0.1:8769/v5/public/spot", description="Bybit public spot websocket URL.")
    huobi_rest_url: str = Field("http://127.0.0.1:8770", description="HTX (Huobi) REST base URL.")
    huobi_ws_url: str = Field("ws://127.0.0.1:8770/ws", description="HTX (Huobi) market websocket URL.")
    kucoin_rest_url: str = Field("http://127.0.0.1:8771", description="KuCoin REST base URL (bullet-public gives the websocket).")
    kucoin_ws_url: str = Field("ws://127.0.0.1:8771/endpoint", description="KuCoin websocket URL (normally from bullet-public).")
    gateio_rest_url: str = Field("http://127.0.0.1:8772", description="Gate.io REST v4 base URL.")
    gateio_ws_url: str = Field("ws://127.0.0.1:8772/ws/v4/", description="Gate.io spot websocket v4 URL.")
    bitfinex_rest_url: str = Field("http://127.0.0.1:8773", description="Bitfinex REST v2 base URL.")
    bitfinex_ws_url: str = Field("ws://127.0.0.1:8773/ws/2", description="Bitfinex websocket v2 URL.")
    mexc_rest_url: str = Field("http://127.0.0.1:8774", description="MEXC spot v3 REST base URL.")
    mexc_ws_url: str = Field("ws://127.0.0.1:8774/ws", description="MEXC spot websocket URL (protobuf pushes).")
    # Live sidecar (marketlake sidecar)
    live_tickers: TickerList = Field(
        default_factory=lambda: ["BINANCE:BTC/USDT", "BINANCE:ETH/USDT", "COINBASE:BTC/USD", "COINBASE:ETH/USD",
                                 "KRAKEN:BTC/CHF", "KRAKEN:ETH/CHF", "KRAKEN:XMR/USD", "OKX:BTC/USDT", "BYBIT:BTC/USDT",
                                 "BYBIT:ETH/USDT"],
        description="Tickers the sidecar streams live (comma-separated); the defaults are the recorded ones.",
    )  # fmt: skip
    live_config: str = Field("", description="TOML file of exchanges/tickers/URLs/stream options for the sidecar.")
    live_candle_periods: list[int] = Field(default_factory=lambda: [1, 60], description="Live candle periods, seconds.")
    live_health_port: int = Field(9465, description="Live process: GET /health (JSON) and /metrics (Prometheus).")
    sidecar_replay: bool = Field(True, description="The sidecar starts a replay server for every exchange it streams.")
    replay_speed: float = Field(1.0, description="Sidecar replay servers: recorded time x speed (paced mode).")
    sim_host: str = Field("127.0.0.1", description="Replay server bind host.")
    sim_port: int = Field(8765, description="Replay server port.")
    http_max_retries: int = Field(6, description="Retries of one REST call before the request fails.")

    # Dagster
    dagster_home: Path = Field(Path(""), description="DAGSTER_HOME; default: home/dagster.")
    dagster_port: int = Field(3000, description="Dagster UI (dagster dev) port on 127.0.0.1.")
    history_sensor_interval_seconds: int = Field(1, description="How often the history batch sensor runs.")
    history_sensor_max_records: int = Field(
        5000, description="Records the history sensor reads per partition per tick (more only to finish a batch)."
    )
    history_batch_abandon_seconds: float = Field(
        900.0, description="A history batch still open this long after its METADATA record is abandoned."
    )
    postgres_url: str = Field(
        "", description="If set (postgresql+psycopg2://...), Dagster storage and the Iceberg catalog use it."
    )
    postgres_port: int = Field(55432, description="Port of the project's own PostgreSQL server (`ensure_postgres`).")

    # Data platform: partitioned backfills, schedules, asset checks, gap repair (orchestration/platform.py)
    universe: TickerList = Field(
        default_factory=lambda: ["BINANCE:BTC/USDT", "BINANCE:ETH/USDT"],
        description="Tickers registered as partitions and kept current by the schedules (comma-separated).",
    )
    schedules_enabled: bool = Field(False, description="Start the hourly candle and daily trade schedules running.")
    freshness_max_lag_seconds: int = Field(
        7200, description="Freshness check: newest row at most this far behind min(partition end, now)."
    )
    gap_repair_interval_seconds: int = Field(30, description="How often the gap repair sensor reads market.gaps.")
    gap_repair_retry_seconds: float = Field(300.0, description="Wait after a failed repair run before the next attempt.")
    gap_repair_max_attempts: int = Field(3, description="Failed repair runs of one gap before the sensor gives up on it.")
    # Live events Kafka -> Iceberg (sensors/live_events.py, assets/live.py)
    live_sensors_enabled: bool = Field(False, description="Start the live Kafka -> Iceberg sensors running (on in `make run`).")
    live_sensor_interval_seconds: int = Field(30, description="How often the live events sensor looks for new live records.")
    live_sensor_max_records: int = Field(
        200_000, description="Live records one Iceberg write run reads per topic partition (the rest: the next run)."
    )
    live_book_snapshot_seconds: float = Field(
        10.0, description="Kafka writer: a book snapshot per ticker every this many seconds of exchange time (0: none)."
    )
    live_book_snapshot_levels: int = Field(50, description="Levels per side in each sampled book snapshot.")

    def model_post_init(self, _context: object) -> None:
        if not self.catalog_uri:
            self.catalog_uri = self.postgres_url or f"sqlite:///{self.home / 'iceberg' / 'catalog.db'}"
        if not self.warehouse:
            self.warehouse = f"file://{self.home / 'iceberg' / 'warehouse'}"
        if str(self.dagster_home) in ("", "."):
            self.dagster_home = self.home / "dagster"

    def relay_endpoint(self, port: int) -> str:
        return f"tcp://{self.relay_host}:{port}"

    def bind_endpoint(self, port: int) -> str:
        return f"tcp://{self.relay_bind_host}:{port}"

    def topic(self, name: str) -> str:
        return f"{self.kafka_topic_prefix}{name}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
