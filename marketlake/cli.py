"""The `marketlake` command line."""

from __future__ import annotations

import json
import signal
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from marketlake.logs import setup_logging
from marketlake.settings import get_settings
from marketlake.timeparse import format_us, parse_time_us

app = typer.Typer(help="marketlake: crypto market data, durable in Kafka and Iceberg, served over ZeroMQ and DuckDB.",
                  no_args_is_help=True)
console = Console(stderr=True)


def _on_signals(stop: Any) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop())


@app.command()
def relay() -> None:
    """Run the relay (ROUTER, work queue, control, XSUB/XPUB) until SIGINT/SIGTERM."""
    setup_logging()
    from prometheus_client import start_http_server

    from live_relay.relay import Relay

    s = get_settings()
    r = Relay(s)
    if s.relay_metrics_port:
        start_http_server(s.relay_metrics_port, addr="127.0.0.1", registry=r.metrics.registry)
    _on_signals(r.stop)
    r.run()


@app.command()
def ingestor(exchange: Annotated[str, typer.Option(help="Exchange to serve, e.g. BINANCE")] = "BINANCE") -> None:
    """Run a historical ingestor: claims requests from Kafka, fetches from the exchange, writes batches."""
    setup_logging()
    from ingestors.worker import Ingestor

    worker = Ingestor(get_settings(), exchange.upper())
    _on_signals(worker.stop)
    worker.run()


@app.command("exchange-sim")
def exchange_sim(
    exchange: Annotated[str, typer.Option(help="Exchange whose wire format to serve")] = "BINANCE",
    port: Annotated[int | None, typer.Option(help="Port (default: MARKETLAKE_SIM_PORT for BINANCE, else the port of "
                                                  "MARKETLAKE_<EXCHANGE>_REST_URL)")] = None,
    fail_429: Annotated[int, typer.Option(help="Answer the next N REST requests with 429")] = 0,
    fail_500: Annotated[int, typer.Option(help="Answer the next N REST requests with 500")] = 0,
    latency_ms: Annotated[int, typer.Option(help="Added latency of every REST answer")] = 0,
    speed: Annotated[float, typer.Option(help="Paced replay: recorded time x speed")] = 1.0,
    deterministic: Annotated[bool | None, typer.Option(
        "--deterministic/--paced", help="Replay every connection from the first frame as fast as the client reads "
                                        "(default: deterministic for BINANCE, paced for the others)")] = None,
    close_at_end: Annotated[bool, typer.Option(help="Not BINANCE: close each websocket (1001) when its recording ends, "
                                                    "so clients reconnect and get it again")] = False,
) -> None:
    """Replay server speaking the exchange's real REST and websocket formats from recorded data."""
    setup_logging()
    s = get_settings()
    name = exchange.upper()
    if name in ("BINANCE", "MEXC"):  # MEXC: the Binance recordings re-encoded in MEXC's documented formats
        from urllib.parse import urlsplit

        from ingestors.binance.replay import BINANCE, FaultConfig, run_replay_server

        if name == "MEXC":
            from ingestors.mexc.replay import MEXC as wire
        else:
            wire = BINANCE

        faults = FaultConfig(fail_429=fail_429, fail_500=fail_500, latency_ms=latency_ms)
        default_port = s.sim_port if name == "BINANCE" else urlsplit(s.mexc_rest_url).port or 8774
        run_replay_server(s.sim_host, port or default_port, s.data_dir, faults,
                          deterministic=True if deterministic is None else deterministic, speed=speed, wire=wire)
        return
    from urllib.parse import urlsplit

    from ingestors.replay.exchanges import replay_for
    from ingestors.replay.faults import FaultConfig as ReplayFaults
    from ingestors.replay.server import run_replay_server as run_recorded

    try:
        spec = replay_for(name)
    except KeyError as exc:
        raise typer.BadParameter(f"{exc.args[0]}, BINANCE, MEXC") from None
    default_port = urlsplit(getattr(s, f"{name.lower()}_rest_url", "")).port or spec.port
    run_recorded(spec, s.sim_host, port or default_port, s.data_dir,
                 ReplayFaults(fail_429=fail_429, fail_500=fail_500, latency_ms=latency_ms),
                 deterministic=bool(deterministic), speed=speed, close_at_end=close_at_end)


@app.command()
def kafka() -> None:
    """Run the project's single-node Kafka broker (KRaft) in the foreground."""
    setup_logging()
    from marketlake.kafka_broker import KafkaBroker, ensure_topics
    from marketlake.kafka_topics import all_topics

    s = get_settings()
    port = int(s.kafka_bootstrap.rsplit(":", 1)[1])
    broker = KafkaBroker(home=s.home, data_dir=s.home / "kafka-data", port=port).start()
    ensure_topics(s.kafka_bootstrap, all_topics(s))
    console.print(f"Kafka ready on {broker.bootstrap} (logs: {broker.log_file})")
    import threading

    stop = threading.Event()
    _on_signals(stop.set)
    try:
        assert broker.process is not None
        while not stop.wait(0.5) and broker.process.poll() is None:
            pass
    finally:
        broker.stop()  # the broker runs in its own session: stop it explicitly, never orphan it


@app.command()
def history(
    ticker: Annotated[str, typer.Argument(help="EXCHANGE:BASE/QUOTE, e.g. BINANCE:BTC/USDT")],
    start: Annotated[str, typer.Option(help="Start (inclusive): 2024-08-01, ISO time or µs")],
    end: Annotated[str, typer.Option(help="End (exclusive)")],
    period: Annotated[int, typer.Option(help="Candle period in seconds; 0 means trades")] = 60,
    per_request: Annotated[bool, typer.Option("--per-request", help="Notify on HISTORY_READY:{request_id}")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for HistoryReady")] = 120.0,
) -> None:
    """Request history, wait for HistoryReady, read the rows from Iceberg and print a summary."""
    setup_logging("WARNING")
    from marketlake.client import ClientError, MarketlakeClient
    from marketlake.summary import summarize

    s = get_settings()
    try:
        start_us, end_us = parse_time_us(start), parse_time_us(end)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    with MarketlakeClient(s) as client:
        try:
            note = client.history(ticker, period, start_us, end_us, per_request, timeout)
        except ClientError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    if note.status != 1:
        console.print(f"[red]history failed:[/red] {note.error_message}")
        raise typer.Exit(1)
    console.print(f"HistoryReady: {note.row_count} rows in {note.table} (snapshot {note.snapshot_id}), "
                  f"{format_us(note.start_time)} → {format_us(note.end_time)}")
    print(json.dumps(summarize(s, note), default=str))


@app.command()
def cancel(
    request_id: Annotated[str, typer.Argument(help="The request to cancel")],
    exchange: Annotated[str, typer.Option(help="Exchange whose ingestors get the CANCEL (empty: all)")] = "",
) -> None:
    """Cancel a historical request: IngestorControl CANCEL through the relay's control channel."""
    from live_relay.messages import ControlAction, IngestorControl
    from marketlake.client import ClientError, MarketlakeClient

    with MarketlakeClient(get_settings()) as client:
        try:
            reply = client.control(IngestorControl(action=ControlAction.CANCEL, exchange=exchange.upper(),
                                                   request_id=request_id))
        except ClientError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    if reply.status != 1:
        console.print(f"[red]refused:[/red] {reply.error_message}")
        raise typer.Exit(1)
    console.print(f"CANCEL for {request_id} sent to {exchange.upper() or 'all'} ingestors")


@app.command()
def subscribe(topics: Annotated[list[str], typer.Argument(help="Topic prefixes, e.g. 'BINANCE:BTC/USDT|tick'")]) -> None:
    """Print live messages on the given topics, decoded, one JSON line each."""
    import msgspec

    from marketlake.client import MarketlakeClient

    with MarketlakeClient(get_settings()) as client:
        try:
            for topic, msg in client.stream(topics):
                print(json.dumps({"topic": topic, "type": type(msg).__name__, **msgspec.structs.asdict(msg)}, default=str),
                      flush=True)
        except KeyboardInterrupt:
            pass


@app.command()
def sql(
    query: Annotated[str | None, typer.Argument(help="SQL over schema 'market' (e.g. SELECT count(*) FROM market.ohlc)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
) -> None:
    """Run DuckDB SQL over views of the Iceberg tables (interactive shell when no query is given)."""
    from marketlake import sql as analyst_sql

    s = get_settings()
    if query is None:
        analyst_sql.shell(s, fmt)
        return
    try:
        result = analyst_sql.run_query(s, query)
    except analyst_sql.QueryError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    print(analyst_sql.format_result(result, fmt))


@app.command()
def demo(
    keep_running: Annotated[bool, typer.Option(help="Leave what the demo started running")] = False,
) -> None:
    """The whole tour without a person: one day of 1-minute BINANCE:BTC/USDT, end to end."""
    setup_logging("WARNING")
    from marketlake.demo import run_demo

    sys.exit(run_demo(get_settings(), keep_running=keep_running))


@app.command()
def run() -> None:
    """Start Kafka, the relay, the Binance ingestor and replay server and Dagster; stop all on Ctrl-C."""
    setup_logging()
    from marketlake.supervisor import run_platform

    sys.exit(run_platform(get_settings()))


@app.command()
def live() -> None:
    """Every configured exchange's websocket feed, the stream processor and the Kafka writer (one process)."""
    setup_logging()
    from live_relay.live import run_live

    sys.exit(run_live(get_settings()))


@app.command()
def sidecar(
    ticker: Annotated[list[str] | None, typer.Option(help="Stream this ticker (repeatable; replaces the list)")] = None,
    config_file: Annotated[str | None, typer.Option("--config", help="TOML file: exchanges, tickers, URLs, stream")] = None,
    deterministic: Annotated[bool, typer.Option(help="Replay servers replay each connection from the start "
                                                     "(tests); default: paced by recorded time")] = False,
) -> None:
    """The always-on half: replay servers (offline default), the relay and the live process, supervised."""
    setup_logging()
    from live_relay.sidecar import run_sidecar

    s = get_settings()
    if ticker:
        s.live_tickers = ticker
    if config_file is not None:
        s.live_config = config_file
    sys.exit(run_sidecar(s, paced=not deterministic))


@app.command()
def config() -> None:
    """Print every setting in effect, with its environment variable."""
    s = get_settings()
    for name, field in type(s).model_fields.items():
        print(f"MARKETLAKE_{name.upper()}={getattr(s, name)}    # {field.description or ''}")


@app.command("verify-book")
def verify_book(
    files: Annotated[list[str], typer.Argument(help="Recording files: one session, in the order given")],
    exchange: Annotated[str, typer.Option(help="Exchange whose book rules apply: BINANCE, KRAKEN, OKX, BYBIT or COINBASE")],
    fmt: Annotated[str | None, typer.Option("--format", help="hftbacktest or cryptofeed (default: by file name)")] = None,
) -> None:
    """Rebuild every order book of a recording with the live code and check it; one JSON object, exit 0 if all right."""
    from marketlake.verify_book import run_verify_book

    sys.exit(run_verify_book(exchange, files, fmt))


@app.command()
def aggregate(
    files: Annotated[list[str], typer.Argument(help="Recording files: one session, in the order given")],
    period: Annotated[int, typer.Option(help="Candle period in seconds, e.g. 60")],
    fmt: Annotated[str | None, typer.Option("--format", help="hftbacktest or cryptofeed (default: by file name)")] = None,
    allowed_lateness: Annotated[float, typer.Option(help="Seconds a trade may trail the newest one and still count")] = 0.0,
) -> None:
    """Build candles from recorded trades with the live candle builder; closed candles as JSON lines on stdout."""
    from marketlake.aggregate import run_aggregate

    sys.exit(run_aggregate(period, files, fmt, allowed_lateness))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()

