"""verify-book for HTX (Huobi) and Gate.io: the live book classes on a recorded session, checked against the exchange.

Registered into marketlake.verify_book's dispatch like marketlake.verify_registry. Each recorded
frame goes through ingestors.huobi.book / ingestors.gateio.book exactly as a live one would (HTX's
binary frames as the gzip bytes received). The checks: sequence continuity (HTX mbp
seqNum/prevSeqNum, Gate.io U/u from the REST snapshot's id; a break is a reported gap), no crossed
book, and best bid/ask against the exchange's own top-of-book stream: Gate.io spot.book_ticker by
update id (BboCheck: it carries the book's u), HTX bbo and Gate.io spot.tickers under
StableTopCheck's rule, since they are not sequenced with the book. HTX depth.stepN pushes whole
books: each one replaces the book, so there is no sequence to break.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from ingestors.book import Level
from ingestors.gateio.book import GateioBooks, GateioBookSync, GateioParseError, Push
from ingestors.gateio.book import Outcome as GateioOutcome
from ingestors.gateio.config import ORDER_BOOK_PATH, GateioSymbolError
from ingestors.gateio.config import ticker_for as gateio_ticker
from ingestors.huobi.book import HuobiBooks, HuobiParseError
from ingestors.huobi.book import Outcome as HuobiOutcome
from ingestors.huobi.config import SYMBOLS_PATH, HuobiSymbolError
from ingestors.huobi.config import instruments as huobi_instruments
from marketlake.recordings import RecordKind, Session
from marketlake.verify_book import MAX_EXAMPLES, BboCheck, VerifyReport, _book_report
from marketlake.verify_registry import StableTopCheck, _finish, _new_state

__all__ = ["VERIFIERS", "verify_gateio", "verify_huobi"]

# HTX bbo quoteTime and depth/mbp ts are both HTX's clock (ms); not recorded, so a narrow window.
HUOBI_TOP_BEFORE_MS, HUOBI_TOP_AFTER_MS = 100, 100
# Gate.io spot.tickers carry only the frame's "time", whole seconds (truncated): the top shown is of some
# moment of [time, time + 1 s], against the book updates' "t" (ms). Measured on the recording: 10 of 22
# tickers comparable, all equal; allowing 1 s more before leaves 1 comparable (the books move too often).
GATEIO_TOP_BEFORE_MS, GATEIO_TOP_AFTER_MS = 0, 1000


def verify_huobi(session: Session) -> VerifyReport:
    """HTX books per connection, symbols named from the recorded /v1/common/symbols answer. BBO: a bbo push
    (quoteTime) against the book states around it."""
    report = VerifyReport("HUOBI", session.format.value, [str(p) for p in session.paths])
    known: dict[str, Mapping[str, Any]] = {}
    for r in session.records:
        if r.kind is RecordKind.HTTP and SYMBOLS_PATH in r.url:
            try:
                known.update(huobi_instruments(orjson.loads(r.data)))
            except (orjson.JSONDecodeError, HuobiSymbolError):
                report.malformed_frames += 1
    connections: dict[str, HuobiBooks] = {}
    checks: dict[str, StableTopCheck] = {}

    def check_for(ticker: str) -> StableTopCheck:
        return checks.setdefault(ticker, StableTopCheck(HUOBI_TOP_BEFORE_MS, HUOBI_TOP_AFTER_MS))

    for r in session.records:
        if r.kind is RecordKind.HTTP:
            continue
        report.frames += 1
        books = connections.setdefault(r.conn, HuobiBooks(instruments=known))
        gaps_before = len(books.gaps)
        try:
            data = base64.b64decode(r.data, validate=True) if r.kind is RecordKind.WS_BINARY else r.data
            book, outcome = books.on_frame(data, r.recv_ns)
            if outcome is HuobiOutcome.BBO and books.bbo is not None:
                b = books.bbo
                check_for(books.ticker_of(b.symbol)).on_ticker(b.quote_time_ms, b.bid_price, b.ask_price)
        except (binascii.Error, HuobiParseError, HuobiSymbolError):
            report.malformed_frames += 1
            continue
        for gap in books.gaps[gaps_before:]:
            check_for(gap.ticker).reset()
        if book is not None and book.synced and outcome in (HuobiOutcome.REFRESH, HuobiOutcome.SNAPSHOT,
                                                            HuobiOutcome.APPLIED):
            _new_state(report, book, check_for(book.ticker), book.prev_ts_ms + 1, book.ts_ms,
                       outcome is HuobiOutcome.SNAPSHOT)
    _finish(report, [b for c in connections.values() for b in c.books.values()], checks)
    return report


def verify_gateio(session: Session) -> VerifyReport:
    """Gate.io books per connection; each waits for the recorded GET /api/v4/spot/order_book?with_id=true answer of
    its pair. BBO: spot.book_ticker by update id; spot.tickers (no id, whole-second time) under StableTopCheck."""
    report = VerifyReport("GATEIO", session.format.value, [str(p) for p in session.paths])
    connections: dict[str, GateioBooks] = {}
    checks: dict[str, StableTopCheck] = {}
    sequenced: dict[str, BboCheck] = {}

    def check_for(ticker: str) -> StableTopCheck:
        return checks.setdefault(ticker, StableTopCheck(GATEIO_TOP_BEFORE_MS, GATEIO_TOP_AFTER_MS))

    def changed(sync: GateioBookSync, snapshot: bool) -> None:
        if sync.synced:
            _new_state(report, sync, check_for(sync.ticker), sync.prev_event_ms + 1, sync.event_ms, snapshot)
            sequenced.setdefault(sync.ticker, BboCheck()).on_book(sync.book.update_id, sync.book.best_bid(),
                                                                   sync.book.best_ask())

    for r in session.records:
        if r.kind is RecordKind.HTTP:
            if ORDER_BOOK_PATH not in r.url:
                continue
            pair = parse_qs(urlsplit(r.url).query).get("currency_pair", [""])[0]
            for books in connections.values():
                if pair in books.syncs and books.syncs[pair].wants_snapshot:
                    try:
                        applied = books.on_snapshot(pair, orjson.loads(r.data), r.recv_ns) is GateioOutcome.SNAPSHOT_APPLIED
                    except (orjson.JSONDecodeError, GateioParseError):
                        report.malformed_frames += 1
                        continue
                    if applied:
                        changed(books.syncs[pair], True)
            continue
        report.frames += 1
        if r.kind is not RecordKind.WS:
            continue
        books = connections.setdefault(r.conn, GateioBooks())
        gaps_before = len(books.gaps)
        try:
            sync, outcome = books.on_frame(r.data, r.recv_ns)
            top = books.ticker
            if outcome is Push.TICKER and top is not None:
                check_for(gateio_ticker(top.pair)).on_ticker(top.time_ms, top.bid_price, top.ask_price)
            elif outcome is Push.BOOK_TICKER and books.book_ticker is not None:
                bt = books.book_ticker
                sequenced.setdefault(gateio_ticker(bt.pair), BboCheck()).on_ticker(
                    bt.update_id, Level(bt.bid_price, bt.bid_size), Level(bt.ask_price, bt.ask_size))
        except (GateioParseError, GateioSymbolError):
            report.malformed_frames += 1
            continue
        for gap in books.gaps[gaps_before:]:
            check_for(gap.ticker).reset()
        if sync is not None and outcome in (GateioOutcome.APPLIED, Push.REFRESH):
            changed(sync, outcome is Push.REFRESH)
    owners = [s for c in connections.values() for s in c.syncs.values()]
    _finish(report, owners, checks)
    for ticker, bbo in sorted(sequenced.items()):
        if ticker in report.books and bbo.checked:
            b = report.books[ticker]
            b.bbo_checked, b.bbo_mismatches = b.bbo_checked + bbo.checked, b.bbo_mismatches + len(bbo.mismatches)
            report.examples += [f"{ticker} book_ticker: {m}" for m in bbo.mismatches[:MAX_EXAMPLES]]
    for owner in owners:
        _book_report(report, owner).stale_snapshots = owner.stats.stale_snapshots
    return report


VERIFIERS: dict[str, Callable[[Session], VerifyReport]] = {"HUOBI": verify_huobi, "GATEIO": verify_gateio}
