"""`marketlake verify-book`: rebuild every order book of a recorded session with the live code, and prove it right.

The recorded frames go through the same classes the live ingestors use
(ingestors.binance.depth_sync, ingestors.kraken.book; OKX, Bybit and Coinbase in
marketlake.verify_registry). Each book is then checked
against what the exchange itself says: Kraken's CRC32 checksum after every
update, Binance's bookTicker stream (best bid/ask and their sizes), and never
crossed. Binance snapshots are the recorded REST answers; when a book must
resync and the recording holds no later snapshot, an hftbacktest recording
rebuilds the exchange's book at that point, as the replay server's REST does.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from ingestors.binance.config import DEPTH_MAX_LIMIT
from ingestors.binance.depth_sync import BinanceBooks, BinanceDepthSync, SyncState
from ingestors.binance.depth_sync import Outcome as DepthOutcome
from ingestors.binance.parse import BinanceParseError, parse_combined_frame
from ingestors.binance.recording import RecordingError
from ingestors.book import Level, OrderBook, to_decimal
from ingestors.gaps import GapEvent
from ingestors.kraken.book import KrakenBooks, KrakenParseError, Outcome
from marketlake.recordings import Record, RecordFormat, RecordKind, Session, SessionError, read_session

__all__ = ["BboCheck", "BookReport", "VerifyReport", "run_verify_book", "verify_files", "verify_session"]

MAX_EXAMPLES = 5  # mismatches described in the report, per kind


@dataclass
class BookReport:
    """What happened to one ticker's book during the session."""

    ticker: str
    synced: bool = False
    update_id: int = 0
    updates_applied: int = 0
    resyncs: int = 0
    stale_snapshots: int = 0
    checksum_checked: int = 0
    checksum_failures: int = 0
    bbo_checked: int = 0
    bbo_mismatches: int = 0
    crossed_books: int = 0  # applied updates after which the best bid was at or above the best ask
    best_bid: list[str] | None = None
    best_ask: list[str] | None = None


@dataclass
class VerifyReport:
    exchange: str
    format: str
    files: list[str]
    frames: int = 0
    malformed_frames: int = 0
    books: dict[str, BookReport] = field(default_factory=dict)
    gap_events: list[GapEvent] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(int(getattr(b, name)) for b in self.books.values())

    @property
    def unsynced_books(self) -> int:
        return sum(not b.synced for b in self.books.values())

    @property
    def ok(self) -> bool:
        """Nothing wrong: books were built, all synced, no gap, checksum, BBO or crossing problem, no bad frame."""
        bad = ("checksum_failures", "bbo_mismatches", "crossed_books")
        return (bool(self.books) and not self.gap_events and not self.malformed_frames and not self.unsynced_books
                and not any(self.total(n) for n in bad))

    def to_dict(self) -> dict[str, Any]:
        counts = ("updates_applied", "resyncs", "stale_snapshots", "checksum_checked", "checksum_failures",
                  "bbo_checked", "bbo_mismatches", "crossed_books")
        return {
            "exchange": self.exchange, "format": self.format, "files": self.files, "frames": self.frames,
            **{n: self.total(n) for n in counts},
            "gaps": len(self.gap_events), "malformed_frames": self.malformed_frames,
            "unsynced_books": self.unsynced_books, "ok": self.ok,
            "books": {t: vars(b) for t, b in sorted(self.books.items())},
            "gap_events": [g.to_dict() for g in self.gap_events], "examples": self.examples,
        }


def _same(a: Level | None, b: Level) -> bool:
    return a is not None and to_decimal(a.price) == to_decimal(b.price) and to_decimal(a.size) == to_decimal(b.size)


class BboCheck:
    """Our book's best bid/ask against Binance's bookTicker, matched by update id.

    bookTicker events carry the book update id u at which the top changed, and
    arrive in u order. So the exchange's top at our book's id L is the last
    bookTicker with u <= L, known for sure once one with u > L has arrived: a book
    state is compared only when it is at least as new as that bookTicker and no
    newer top change can still be on its way.
    """

    def __init__(self) -> None:
        self._pending: deque[tuple[int, Level | None, Level | None]] = deque()
        self._last: tuple[int, Level, Level] | None = None
        self.checked = 0
        self.mismatches: list[str] = []

    def on_book(self, update_id: int, bid: Level | None, ask: Level | None) -> None:
        self._pending.append((update_id, bid, ask))

    def on_ticker(self, u: int, bid: Level, ask: Level) -> None:
        while self._pending and self._pending[0][0] < u:
            book_id, our_bid, our_ask = self._pending.popleft()
            if self._last is not None and self._last[0] <= book_id:
                self.checked += 1
                if not (_same(our_bid, self._last[1]) and _same(our_ask, self._last[2])):
                    self.mismatches.append(f"book id {book_id}: ours {our_bid}/{our_ask}, bookTicker u={self._last[0]} "
                                           f"{self._last[1]}/{self._last[2]}")
        self._last = (u, bid, ask)


def _observe(report: BookReport, book: OrderBook, bbo: BboCheck | None) -> None:
    """One new book state: crossed check, and queue it for the BBO check."""
    report.crossed_books += book.is_crossed()
    if bbo is not None:
        bbo.on_book(book.update_id, book.best_bid(), book.best_ask())


def verify_binance(session: Session) -> VerifyReport:
    report = VerifyReport("BINANCE", session.format.value, [str(p) for p in session.paths])
    books = BinanceBooks()
    bbo: dict[str, BboCheck] = {}
    rebuild = {rec.symbol: (source, rec) for source, rec in session.recordings.items()}
    last_recorded_snapshot: dict[str, int] = {}
    for i, r in enumerate(session.records):
        if (symbol := _depth_symbol(r)) is not None:
            last_recorded_snapshot[symbol] = i
    position: dict[int, int] = {}

    def feed_snapshot(sync: BinanceDepthSync, snapshot: dict[str, Any]) -> None:
        before = sync.book.update_id
        sync.on_snapshot(snapshot)
        if sync.state is not SyncState.AWAITING_SNAPSHOT and sync.book.update_id != before:
            _observe(_book_report(report, sync), sync.book, bbo.setdefault(sync.symbol, BboCheck()))

    for i, r in enumerate(session.records):
        position[r.source] = r.position
        if r.kind is RecordKind.HTTP:
            sync = books.sync_for(symbol) if (symbol := _depth_symbol(r)) is not None else None
            if sync is not None and sync.state is SyncState.AWAITING_SNAPSHOT:
                try:
                    feed_snapshot(sync, orjson.loads(r.data))
                except (orjson.JSONDecodeError, BinanceParseError):
                    report.malformed_frames += 1
            continue
        report.frames += 1
        try:
            stream, data = parse_combined_frame(r.data)
            if stream.split("@")[1:2] == ["depth"]:  # <symbol>@depth[@100ms] diffs, not the @depth5 snapshots
                sync, outcome = books.on_depth_event(data, r.recv_ns)
                if outcome is DepthOutcome.APPLIED:
                    _observe(_book_report(report, sync), sync.book, bbo.setdefault(sync.symbol, BboCheck()))
            elif stream.endswith("@bookTicker"):
                bbo.setdefault(data["s"], BboCheck()).on_ticker(int(data["u"]), Level(data["b"], data["B"]),
                                                                 Level(data["a"], data["A"]))
        except (BinanceParseError, KeyError, TypeError, ValueError):
            report.malformed_frames += 1
            continue
        for symbol in books.wanting_snapshot():
            if symbol in rebuild and last_recorded_snapshot.get(symbol, -1) < i:
                source, rec = rebuild[symbol]
                try:
                    snapshot = rec.depth_at(position.get(source, 0), DEPTH_MAX_LIMIT)
                except RecordingError as exc:  # the recording itself has a hole: this book cannot be rebuilt
                    report.examples.append(f"{symbol}: no snapshot to resync from: {exc}")
                    del rebuild[symbol]
                    continue
                feed_snapshot(books.sync_for(symbol), snapshot)
    for sync in books.syncs.values():
        b = _book_report(report, sync)
        b.synced, b.update_id = sync.state is not SyncState.AWAITING_SNAPSHOT, sync.book.update_id
        b.updates_applied, b.resyncs = sync.stats.updates_applied, sync.stats.resyncs
        b.stale_snapshots = sync.stats.stale_snapshots
        b.best_bid, b.best_ask = _level(sync.book.best_bid()), _level(sync.book.best_ask())
        check = bbo.get(sync.symbol)
        if check is not None:
            b.bbo_checked, b.bbo_mismatches = check.checked, len(check.mismatches)
            report.examples += [f"{b.ticker} BBO: {m}" for m in check.mismatches[:MAX_EXAMPLES]]
    report.gap_events = sorted(books.gaps, key=lambda g: g.detected_at_ns)
    return report


def verify_kraken(session: Session) -> VerifyReport:
    report = VerifyReport("KRAKEN", session.format.value, [str(p) for p in session.paths])
    connections: dict[str, KrakenBooks] = {}
    for r in session.records:
        if r.kind is RecordKind.HTTP:
            continue
        report.frames += 1
        if r.kind is RecordKind.WS_BINARY:
            continue
        try:
            book, outcome = connections.setdefault(r.conn, KrakenBooks()).on_frame(r.data, r.recv_ns)
        except KrakenParseError:
            report.malformed_frames += 1
            continue
        if book is not None and outcome in (Outcome.SNAPSHOT, Outcome.APPLIED):
            _observe(_book_report(report, book), book.book, None)
    for kraken in connections.values():
        for kb in kraken.books.values():
            b = _book_report(report, kb)
            b.synced = kb.synced
            for name in ("updates_applied", "resyncs", "checksum_checked", "checksum_failures"):
                setattr(b, name, getattr(b, name) + getattr(kb.stats, name))
            b.best_bid, b.best_ask = _level(kb.book.best_bid()), _level(kb.book.best_ask())
            report.examples += [f"{g.ticker}: {g.detail}" for g in kb.gaps[:MAX_EXAMPLES]]
        report.gap_events += kraken.gaps
    report.gap_events.sort(key=lambda g: g.detected_at_ns)
    return report


def _depth_symbol(record: Record) -> str | None:
    """The symbol of a recorded GET /api/v3/depth answer, None for any other record."""
    if record.kind is not RecordKind.HTTP or "/api/v3/depth" not in record.url:
        return None
    return parse_qs(urlsplit(record.url).query).get("symbol", [None])[0]


def _book_report(report: VerifyReport, owner: Any) -> BookReport:
    ticker: str = owner.ticker
    return report.books.setdefault(ticker, BookReport(ticker))


def _level(level: Level | None) -> list[str] | None:
    return None if level is None else [level.price, level.size]


VERIFIERS: dict[str, Callable[[Session], VerifyReport]] = {"BINANCE": verify_binance, "KRAKEN": verify_kraken}


class UnsupportedExchangeError(ValueError):
    """verify-book has no book builder for this exchange yet."""


def _verifier(exchange: str) -> Callable[[Session], VerifyReport]:
    # Imported late: they build on this module.
    from marketlake.verify_huobi_gateio import VERIFIERS as HUOBI_GATEIO
    from marketlake.verify_kucoin_bitfinex import VERIFIERS as KUCOIN_BITFINEX
    from marketlake.verify_registry import VERIFIERS as OKX_BYBIT_COINBASE

    verifiers = {**VERIFIERS, **OKX_BYBIT_COINBASE, **HUOBI_GATEIO, **KUCOIN_BITFINEX}
    try:
        return verifiers[exchange.upper()]
    except KeyError:
        raise UnsupportedExchangeError(
            f"verify-book has no order-book builder for {exchange!r}; available: {', '.join(sorted(verifiers))}"
        ) from None


def verify_session(exchange: str, session: Session) -> VerifyReport:
    """Build and check every book of the session with the exchange's live book code."""
    return _verifier(exchange)(session)


def verify_files(exchange: str, paths: Sequence[Path], fmt: RecordFormat | None = None) -> VerifyReport:
    """Read the files as one session (in the order given) and verify its books."""
    verifier = _verifier(exchange)  # refuse an unknown exchange before reading anything
    return verifier(read_session(paths, fmt))


def run_verify_book(exchange: str, files: Sequence[str], fmt: str | None = None) -> int:
    """The CLI: print the report as one JSON object on stdout; 0 if nothing is wrong, 1 if something is, 2 if unusable."""
    try:
        session_format = RecordFormat(fmt.lower()) if fmt else None
    except ValueError:
        print(f"error: unknown --format {fmt!r}; use {' or '.join(f.value for f in RecordFormat)}", file=sys.stderr)
        return 2
    try:
        report = verify_files(exchange, [Path(f) for f in files], session_format)
    except (SessionError, UnsupportedExchangeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict()))
    return 0 if report.ok else 1
