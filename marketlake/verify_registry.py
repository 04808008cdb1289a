"""verify-book for OKX, Bybit and Coinbase: the live book classes on a recorded session, checked against the exchange.

Registered into marketlake.verify_book's dispatch (its VERIFIERS hold Binance and Kraken).
Each recorded frame goes through ingestors.<exchange>.book exactly as a live one would.
The checks: OKX's checksum wherever it is non-zero, no crossed book, sequence continuity
(a break is a reported gap), and best bid/ask against the exchange's own top-of-book stream
(Bybit "tickers", Coinbase "ticker") under StableTopCheck's rule, since neither stream is
sequenced with the book the way Binance's bookTicker is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import orjson

from ingestors.book import Level, to_decimal
from ingestors.bybit.book import BybitBooks, BybitParseError
from ingestors.bybit.book import Outcome as BybitOutcome
from ingestors.bybit.config import BybitSymbolError, category_for_url, instruments
from ingestors.coinbase.book import CoinbaseBooks, CoinbaseParseError
from ingestors.coinbase.book import Outcome as CoinbaseOutcome
from ingestors.coinbase.config import CoinbaseSymbolError
from ingestors.coinbase.config import ticker_for as coinbase_ticker
from ingestors.okx.book import OkxBooks, OkxParseError
from ingestors.okx.book import Outcome as OkxOutcome
from marketlake.recordings import RecordKind, Session
from marketlake.verify_book import MAX_EXAMPLES, BookReport, VerifyReport, _book_report, _level, _observe

__all__ = ["VERIFIERS", "StableTopCheck", "verify_bybit", "verify_coinbase", "verify_okx"]

# Coinbase's ticker is stamped when sent and shows the top at its last match, which can be a few hundred ms
# earlier (measured up to ~280 ms); l2_data event times can run ~10 ms behind the ticker's stamp.
COINBASE_TOP_BEFORE_NS, COINBASE_TOP_AFTER_NS = 500_000_000, 100_000_000
HISTORY = 2000  # book states kept per check


class _State(NamedTuple):
    first: int  # the state came about over [first, last] (exchange time or sequence)
    last: int
    bid: Decimal | None
    ask: Decimal | None


class StableTopCheck:
    """Our best bid/ask prices against a top-of-book stream that is not sequenced with the book.

    A ticker stamped K (an exchange time or cross sequence) shows the top at some moment of
    [K - before, K + after]. Each book state is known to have come about over [first, last]
    (one push nets all changes since the previous one). The ticker is comparable only when
    every book state that can have been in effect in that window has the same best bid and ask
    prices, and a state past the window has arrived; then its prices must equal ours. Sizes
    are not compared: both feeds net changes over different intervals, so a size can differ
    without either feed being wrong (measured: Bybit 11 and Coinbase 5 of ~200 ticker sizes
    never appear in the book feed at all).
    """

    def __init__(self, before: int = 0, after: int = 0) -> None:
        self.before, self.after = before, after
        self._states: deque[_State] = deque(maxlen=HISTORY)
        self._pending: deque[tuple[int, str, str]] = deque()
        self.checked = self.unstable = self.uncomparable = 0
        self.mismatches: list[str] = []

    def reset(self) -> None:
        """The book was replaced (new snapshot, gap): states before it say nothing about the new one."""
        self.uncomparable += len(self._pending)
        self._states.clear()
        self._pending.clear()

    def on_book(self, first: int, last: int, bid: Level | None, ask: Level | None) -> None:
        self._states.append(_State(first, last, _price(bid), _price(ask)))
        while self._pending and first > self._pending[0][0] + self.after:
            self._evaluate(*self._pending.popleft())

    def on_ticker(self, key: int, bid_price: str, ask_price: str) -> None:
        if self._states and self._states[-1].first > key + self.after:
            self._evaluate(key, bid_price, ask_price)
        else:
            self._pending.append((key, bid_price, ask_price))

    def _evaluate(self, key: int, bid_price: str, ask_price: str) -> None:
        lo, hi = key - self.before, key + self.after
        base = next((s for s in reversed(self._states) if s.last <= lo), None)
        if base is None:  # the book (or the history kept) starts inside the window
            self.uncomparable += 1
            return
        window = [s for s in self._states if s.last > lo and s.first <= hi]
        if any((s.bid, s.ask) != (base.bid, base.ask) for s in window):
            self.unstable += 1
            return
        self.checked += 1
        if (base.bid, base.ask) != (to_decimal(bid_price), to_decimal(ask_price)):
            self.mismatches.append(f"ticker at {key}: bid/ask {bid_price}/{ask_price}, our book {base.bid}/{base.ask} "
                                   f"over [{lo}, {hi}]")


def _price(level: Level | None) -> Decimal | None:
    return None if level is None else to_decimal(level.price)


def _finish(report: VerifyReport, owners: Iterable[Any], checks: dict[str, StableTopCheck]) -> None:
    """Copy each book's counters (owner.stats) into its BookReport, then the BBO counts and the gaps."""
    for owner in owners:
        b: BookReport = _book_report(report, owner)
        b.synced = owner.synced
        b.update_id = owner.book.update_id
        for name in ("updates_applied", "resyncs", "checksum_checked", "checksum_failures"):
            setattr(b, name, getattr(b, name) + getattr(owner.stats, name, 0))
        b.best_bid, b.best_ask = _level(owner.book.best_bid()), _level(owner.book.best_ask())
        report.gap_events += owner.gaps
        report.examples += [f"{g.ticker}: {g.detail}" for g in owner.gaps[:MAX_EXAMPLES]]
    for ticker, check in sorted(checks.items()):
        if ticker in report.books:
            b = report.books[ticker]
            b.bbo_checked, b.bbo_mismatches = b.bbo_checked + check.checked, b.bbo_mismatches + len(check.mismatches)
            report.examples += [f"{ticker} BBO: {m}" for m in check.mismatches[:MAX_EXAMPLES]]
    report.gap_events.sort(key=lambda g: g.detected_at_ns)


def _new_state(report: VerifyReport, owner: Any, check: StableTopCheck, first: int, last: int, snapshot: bool) -> None:
    """owner.book changed (it came about over [first, last]): crossed check, and a state for the BBO check."""
    _observe(_book_report(report, owner), owner.book, None)
    if snapshot:
        check.reset()
    check.on_book(first, last, owner.book.best_bid(), owner.book.best_ask())


def _ws_frames(session: Session, report: VerifyReport) -> Iterable[tuple[str, str, int]]:
    """(connection, text, recv_ns) of every websocket text frame, counting frames."""
    for r in session.records:
        if r.kind is RecordKind.HTTP:
            continue
        report.frames += 1
        if r.kind is RecordKind.WS:
            yield r.conn, r.data, r.recv_ns


def verify_okx(session: Session) -> VerifyReport:
    """OKX books are checked by their checksum (top 25 levels, every push) where OKX sent one, never by tickers:
    the recorded tickers lag the checksum-proven book by up to seconds (bidPx/askPx of a push stamped later
    than a book push show an older top), so they are no reference for it."""
    report = VerifyReport("OKX", session.format.value, [str(p) for p in session.paths])
    connections: dict[str, OkxBooks] = {}
    for conn, text, recv_ns in _ws_frames(session, report):
        try:
            book, outcome = connections.setdefault(conn, OkxBooks()).on_frame(text, recv_ns)
        except OkxParseError:
            report.malformed_frames += 1
            continue
        if book is not None and outcome in (OkxOutcome.SNAPSHOT, OkxOutcome.APPLIED):
            _observe(_book_report(report, book), book.book, None)
    _finish(report, [b for c in connections.values() for b in c.books.values()], {})
    return report


def verify_bybit(session: Session) -> VerifyReport:
    """Bybit books, each connection in the category of the URL it opened, symbols named from the recorded
    instruments-info answers. BBO: a linear tickers push stamped cs against the book states around it
    (a delta nets the changes of (previous seq, seq]); spot tickers carry no bid/ask."""
    report = VerifyReport("BYBIT", session.format.value, [str(p) for p in session.paths])
    known: dict[str, dict[str, Any]] = {}  # category -> instruments-info entries, from the recorded REST answers
    for r in session.records:
        if r.kind is RecordKind.HTTP and "/v5/market/instruments-info" in r.url:
            category = parse_qs(urlsplit(r.url).query).get("category", [""])[0]
            try:
                known.setdefault(category, {}).update(instruments(orjson.loads(r.data)))
            except (orjson.JSONDecodeError, BybitSymbolError):
                report.malformed_frames += 1
    connections: dict[str, BybitBooks] = {}
    checks: dict[str, StableTopCheck] = {}
    for conn, text, recv_ns in _ws_frames(session, report):
        books = connections.get(conn)
        if books is None:
            try:
                category = category_for_url(session.endpoints.get(conn, ""))
            except BybitSymbolError as exc:
                report.examples.append(f"{conn}: {exc}")
                report.malformed_frames += 1
                continue
            books = connections[conn] = BybitBooks(category, instruments=known.get(category))
        try:
            book, outcome = books.on_frame(text, recv_ns)
        except BybitParseError:
            report.malformed_frames += 1
            continue
        if outcome is BybitOutcome.TICKER and books.ticker is not None:
            t = books.ticker
            checks.setdefault(books.ticker_of(t.symbol), StableTopCheck()).on_ticker(t.cross_seq, t.bid_price, t.ask_price)
        elif book is not None and outcome in (BybitOutcome.SNAPSHOT, BybitOutcome.RESTART, BybitOutcome.APPLIED):
            snapshot = outcome is not BybitOutcome.APPLIED
            first = book.cross_seq if snapshot else book.prev_cross_seq + 1  # a delta nets (previous seq, seq]
            _new_state(report, book, checks.setdefault(book.ticker, StableTopCheck()), first, book.cross_seq, snapshot)
        elif book is not None and outcome is BybitOutcome.GAP:
            checks.setdefault(book.ticker, StableTopCheck()).reset()
    _finish(report, [b for c in connections.values() for b in c.books.values()], checks)
    return report


def verify_coinbase(session: Session) -> VerifyReport:
    """Coinbase books per connection. BBO: a ticker message stamped T against the book states whose l2_data event
    times fall in [T - 500 ms, T + 100 ms]."""
    report = VerifyReport("COINBASE", session.format.value, [str(p) for p in session.paths])
    connections: dict[str, CoinbaseBooks] = {}
    checks: dict[str, StableTopCheck] = {}

    def check_for(ticker: str) -> StableTopCheck:
        return checks.setdefault(ticker, StableTopCheck(COINBASE_TOP_BEFORE_NS, COINBASE_TOP_AFTER_NS))

    for conn, text, recv_ns in _ws_frames(session, report):
        books = connections.setdefault(conn, CoinbaseBooks())
        gaps_before = len(books.gaps)
        try:
            changed, outcome = books.on_frame(text, recv_ns)
        except CoinbaseParseError:
            report.malformed_frames += 1
            continue
        for gap in books.gaps[gaps_before:]:
            check_for(gap.ticker).reset()
        if outcome is CoinbaseOutcome.TICKER:
            for t in books.tickers:
                try:
                    check_for(coinbase_ticker(t.product_id)).on_ticker(t.time_ns, t.bid_price, t.ask_price)
                except CoinbaseSymbolError:
                    report.malformed_frames += 1
        for book in changed:
            _new_state(report, book, check_for(book.ticker), book.first_event_ns, book.last_event_ns,
                       outcome is CoinbaseOutcome.SNAPSHOT)
    _finish(report, [b for c in connections.values() for b in c.books.values()], checks)
    return report


VERIFIERS: dict[str, Callable[[Session], VerifyReport]] = {
    "OKX": verify_okx, "BYBIT": verify_bybit, "COINBASE": verify_coinbase,
}
