"""`marketlake verify-book` on the real recordings: books right, and faults caught, reported and repaired."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from ingestors.gaps import GapHow
from marketlake.cli import app
from marketlake.recordings import Record, RecordKind, Session, read_session
from marketlake.verify_book import VerifyReport, verify_files, verify_session

REQUIRED_KEYS = {"frames", "updates_applied", "resyncs", "gaps", "checksum_checked", "checksum_failures",
                 "bbo_checked", "bbo_mismatches", "crossed_books"}


def counts(report: VerifyReport) -> str:
    d = report.to_dict()
    return json.dumps({k: d[k] for k in ("exchange", "files", *sorted(REQUIRED_KEYS), "stale_snapshots")})


@pytest.fixture(scope="module")
def btc_eth(data_dir: Path) -> Session:
    """BTCUSDT and ETHUSDT captured side by side: one session of two symbols."""
    return read_session([data_dir / "binance" / "spot_btcusdt_20240808.gz",
                         data_dir / "binance" / "spot_ethusdt_20240808.gz"])


@pytest.fixture(scope="module")
def clean(btc_eth: Session) -> VerifyReport:
    return verify_session("BINANCE", btc_eth)


def depth_indices(session: Session, stream: str) -> list[int]:
    prefix = f'{{"stream":"{stream}"'
    return [i for i, r in enumerate(session.records) if r.kind is RecordKind.WS and r.data.startswith(prefix)]


def snapshot_index(session: Session, symbol: str) -> int:
    return next(i for i, r in enumerate(session.records) if r.kind is RecordKind.HTTP and symbol in r.url)


def without(session: Session, *indices: int) -> Session:
    drop = set(indices)
    return dataclasses.replace(session, records=[r for i, r in enumerate(session.records) if i not in drop])


def test_files_captured_side_by_side_replay_as_one_session_in_receive_order(btc_eth: Session) -> None:
    times = [r.recv_ns for r in btc_eth.records]
    assert times == sorted(times)
    assert {r.source for r in btc_eth.records[:50]} == {0, 1}  # interleaved, not one file after the other
    assert [r.kind for r in btc_eth.records].count(RecordKind.HTTP) == 2  # each file's REST depth snapshot


def test_binance_hftbacktest_books_match_bookticker_and_never_cross(btc_eth: Session, clean: VerifyReport) -> None:
    print(f"\nverify-book BINANCE hftbacktest: {counts(clean)}")
    d = clean.to_dict()
    assert d["frames"] == sum(r.kind is RecordKind.WS for r in btc_eth.records)
    assert d["updates_applied"] > 6800 and d["bbo_checked"] > 6500
    assert (d["bbo_mismatches"], d["crossed_books"], d["gaps"], d["resyncs"]) == (0, 0, 0, 0), counts(clean)
    assert set(d["books"]) == {"BINANCE:BTC/USDT", "BINANCE:ETH/USDT"} and clean.ok


def test_binance_cryptofeed_books_match_bookticker_and_never_cross(data_dir: Path) -> None:
    report = verify_files("BINANCE", [data_dir / "cryptofeed" / "BINANCE.jsonl.zst"])
    print(f"\nverify-book BINANCE cryptofeed: {counts(report)}")
    d = report.to_dict()
    assert len(d["books"]) == 4 and d["updates_applied"] > 150 and d["bbo_checked"] > 100
    assert (d["bbo_mismatches"], d["crossed_books"], d["gaps"], d["unsynced_books"]) == (0, 0, 0, 0), counts(report)
    assert report.ok


def test_a_dropped_diff_is_reported_as_a_gap_and_only_that_symbol_resyncs(
        btc_eth: Session, clean: VerifyReport) -> None:
    btc_diffs = [i for i in depth_indices(btc_eth, "btcusdt@depth@100ms") if i > snapshot_index(btc_eth, "BTCUSDT")]
    victim, revealer = btc_diffs[100], btc_diffs[101]
    dropped = orjson.loads(btc_eth.records[victim].data)["data"]
    report = verify_session("BINANCE", without(btc_eth, victim))
    print(f"\nverify-book with one BTCUSDT diff dropped: {counts(report)}")
    d = report.to_dict()
    btc, eth = d["books"]["BINANCE:BTC/USDT"], d["books"]["BINANCE:ETH/USDT"]
    assert d["gaps"] == 1 and btc["resyncs"] == 1 and eth["resyncs"] == 0
    assert eth == vars(clean.books["BINANCE:ETH/USDT"])  # the other symbol is untouched, update for update
    gap = report.gap_events[0]
    assert (gap.exchange, gap.ticker, gap.how) == ("BINANCE", "BINANCE:BTC/USDT", GapHow.SEQUENCE_JUMP)
    assert (gap.last_seen, gap.first_missing, gap.next_received) == (dropped["U"] - 1, dropped["U"], dropped["u"] + 1)
    assert gap.detected_at_ns == btc_eth.records[revealer].recv_ns
    # After the resync the book is right again: same final book as the clean run, every BBO check passes.
    clean_btc = vars(clean.books["BINANCE:BTC/USDT"])
    assert (btc["update_id"], btc["best_bid"], btc["best_ask"]) == (
        clean_btc["update_id"], clean_btc["best_bid"], clean_btc["best_ask"])
    assert btc["bbo_checked"] > 3000 and (d["bbo_mismatches"], d["crossed_books"]) == (0, 0)
    assert not report.ok  # a gap is something wrong: exit status 1


def test_a_snapshot_older_than_the_stream_is_refetched(btc_eth: Session) -> None:
    """Without the first three diffs the recorded snapshot predates every event the book ever sees."""
    first_three = depth_indices(btc_eth, "btcusdt@depth@100ms")[:3]
    report = verify_session("BINANCE", without(btc_eth, *first_three))
    print(f"\nverify-book with the BTCUSDT stream joined late: {counts(report)}")
    btc = report.books["BINANCE:BTC/USDT"]
    assert btc.stale_snapshots == 1 and btc.synced and btc.updates_applied > 3000
    assert report.ok, counts(report)


def test_a_wrong_best_bid_size_is_caught_by_the_bookticker_check(btc_eth: Session) -> None:
    """The BBO check has teeth: change the size of the best bid in one diff."""
    best_bid = None
    after = snapshot_index(btc_eth, "BTCUSDT")
    records = list(btc_eth.records)
    for i, r in enumerate(records):
        frame = orjson.loads(r.data) if r.kind is RecordKind.WS and r.data.startswith('{"stream":"btcusdt@') else None
        if frame is None:
            continue
        if frame["stream"].endswith("@bookTicker"):
            best_bid = frame["data"]["b"]
        elif i > after and frame["stream"].endswith("@depth@100ms"):
            levels = frame["data"]["b"]
            hit = next((lv for lv in levels if lv[0] == best_bid and float(lv[1]) > 0), None)
            if hit is not None:
                hit[1] = "1234.00000000"
                records[i] = r._replace(data=orjson.dumps(frame).decode())
                break
    report = verify_session("BINANCE", dataclasses.replace(btc_eth, records=records))
    print(f"\nverify-book with one corrupted best bid: {counts(report)}")
    assert report.books["BINANCE:BTC/USDT"].bbo_mismatches >= 1 and not report.ok
    assert report.books["BINANCE:ETH/USDT"].bbo_mismatches == 0
    assert "1234.00000000" in report.examples[0]


def test_malformed_frames_are_counted_and_skipped(btc_eth: Session) -> None:
    i = depth_indices(btc_eth, "ethusdt@bookTicker")[10]
    records = list(btc_eth.records)
    records[i] = Record(records[i].recv_ns, RecordKind.WS, '{"stream":"ethusdt@bookTicker","data":{"u":', "", "x")
    report = verify_session("BINANCE", dataclasses.replace(btc_eth, records=records))
    assert report.malformed_frames == 1 and report.to_dict()["updates_applied"] > 6800 and not report.ok


def test_cli_prints_one_json_object_and_exits_0_on_a_right_recording(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["verify-book", "--exchange", "BINANCE", "--format", "hftbacktest",
                                      str(data_dir / "binance" / "spot_ethusdt_20240808.gz")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    print(f"\nmarketlake verify-book --exchange BINANCE spot_ethusdt: { {k: out[k] for k in sorted(REQUIRED_KEYS)} }")
    assert set(out) >= REQUIRED_KEYS and out["bbo_checked"] > 3000 and out["bbo_mismatches"] == 0


def test_cli_exits_1_when_the_recording_has_no_book_of_that_exchange(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["verify-book", "--exchange", "KRAKEN",
                                      str(data_dir / "cryptofeed" / "BINANCE.jsonl.zst")])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["ok"] is False


@pytest.mark.parametrize("args,message", [
    (["--exchange", "MEXC", "x.gz"], "no order-book builder for 'MEXC'"),
    (["--exchange", "BINANCE", "--format", "pcap", "x.gz"], "unknown --format 'pcap'"),
    (["--exchange", "BINANCE", "missing.gz"], "recording file not found: missing.gz"),
    (["--exchange", "BINANCE", "notes.txt"], "cannot tell the recording format"),
])
def test_cli_refuses_unusable_input_with_exit_2_and_a_reason(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["verify-book", *args])
    assert result.exit_code == 2
    assert message in result.stderr
