"""`marketlake demo`: the whole historical loop without a person, measured.

Brings up what is not running, asks for one day of 1-minute BINANCE:BTC/USDT
candles (2024-08-08, which ends in the real Binance recording), waits for
HistoryReady, queries the rows with DuckDB, prints the summary and each
stage's time, stops what it started, and prints one JSON object last.
"""

from __future__ import annotations

import json
import time
from typing import Any

from marketlake.settings import Settings
from marketlake.supervisor import ServiceError, Supervisor, platform_services
from marketlake.timeparse import parse_time_us

DEMO_TICKER = "BINANCE:BTC/USDT"
DEMO_START, DEMO_END = "2024-08-08", "2024-08-09"
EXPECTED_ROWS = 1440


def run_demo(settings: Settings, keep_running: bool = False, timeout: float = 180.0) -> int:
    from marketlake.client import ClientError, MarketlakeClient
    from marketlake.stages import RequestTimes, stage_seconds
    from marketlake.summary import summarize
    from orchestration.instance import write_instance_yaml

    t0 = time.monotonic()
    result: dict[str, Any] = {"status": "ERROR", "rows": 0, "seconds": 0.0}
    write_instance_yaml(settings)
    services = [s for s in platform_services(settings) if not s.ready()]
    sup = Supervisor(settings, services)
    try:
        print(f"starting: {', '.join(s.name for s in services) or 'nothing (all running)'}", flush=True)
        sup.start_all()
        result["startup_seconds"] = round(time.monotonic() - t0, 2)
        with MarketlakeClient(settings) as client:
            submitted = time.time()
            response = client.submit(DEMO_TICKER, 60, parse_time_us(DEMO_START), parse_time_us(DEMO_END))
            acked = time.time()
            note = client.wait(response.request_id, timeout)
            ready = time.time()
        result.update(request_id=note.request_id, table=note.table, snapshot_id=note.snapshot_id)
        if note.status != 1:
            result["error"] = note.error_message
            return 1
        t_query = time.monotonic()
        summary = summarize(settings, note)
        result["query_seconds"] = round(time.monotonic() - t_query, 3)
        result["summary"] = summary
        result["stages"] = stage_seconds(settings, note.request_id, RequestTimes(submitted, acked, ready))
        result["rows"] = int(summary["rows"])
        ok = note.row_count == EXPECTED_ROWS == result["rows"] == summary["distinct_open_times"]
        result["status"] = "OK" if ok else "ERROR"
        print(json.dumps({"summary": summary, "stages": result["stages"]}, indent=2, default=str), flush=True)
        return 0 if ok else 1
    except (ServiceError, ClientError) as exc:
        result["error"] = str(exc)
        return 1
    finally:
        if not keep_running:
            sup.stop_all()
        result["seconds"] = round(time.monotonic() - t0, 2)
        print(json.dumps(result, default=str), flush=True)
