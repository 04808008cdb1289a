"""verify-book for KuCoin and Bitfinex: the live book classes on a recorded session, checked against the exchange.

Registered into marketlake.verify_book's dispatch like marketlake.verify_registry. Each recorded
frame goes through ingestors.<exchange>.book exactly as a live one would; KuCoin's snapshots
are the recorded REST answers. The checks: sequence continuity (a break is a reported gap),
Bitfinex's checksum frames wherever the recording has them, no crossed book, and best bid/ask
against the exchange's own ticker stream: KuCoin's exactly at its sequence, Bitfinex's under
StableTopCheck's rule.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from ingestors.bitfinex.book import BitfinexBooks, BitfinexParseError
from ingestors.bitfinex.book import Outcome as BitfinexOutcome
from ingestors.bitfinex.config import ticker_for as bitfinex_ticker
from ingestors.book import Level, to_decimal
from ingestors.kucoin.book import KucoinBook, KucoinBooks, KucoinParseError
from ingestors.kucoin.book import Outcome as KucoinOutcome
from ingestors.kucoin.config import SNAPSHOT_PATH_MARK, KucoinSymbolError
from ingestors.kucoin.config import ticker_for as kucoin_ticker
from marketlake.recordings import RecordKind, Session
from marketlake.verify_book import MAX_EXAMPLES, VerifyReport, _book_report, _observe
from marketlake.verify_registry import HISTORY, StableTopCheck, _finish, _new_state, _ws_frames

__all__ = ["VERIFIERS", "SequencedTopCheck", "verify_bitfinex", "verify_kucoin"]

# Bitfinex's ticker can show a top ~6.4 s older than the book frames received with it (measured on the recording:
# tDOGUSD's ticker at 1618677559.72 bids 279620, a level the book channel deleted at 1618677553.28).
BITFINEX_TOP_BEFORE_NS = 7_000_000_000


def verify_bitfinex(session: Session) -> VerifyReport:
    """Bitfinex books per connection. BBO: a ticker frame against the book states received in the 7 s before it
    (StableTopCheck: compared only when the top was the same all that time; its frames carry no exchange time)."""
    report = VerifyReport("BITFINEX", session.format.value, [str(p) for p in session.paths])
    connections: dict[str, BitfinexBooks] = {}
    checks: dict[str, StableTopCheck] = {}

    def check_for(ticker: str) -> StableTopCheck:
        return checks.setdefault(ticker, StableTopCheck(BITFINEX_TOP_BEFORE_NS, 0))

    for conn, text, recv_ns in _ws_frames(session, report):
        books = connections.setdefault(conn, BitfinexBooks())
        gaps_before = len(books.gaps)
        try:
            book, outcome = books.on_frame(text, recv_ns)
        except BitfinexParseError:
            report.malformed_frames += 1
            continue
        for gap in books.gaps[gaps_before:]:
            check_for(gap.ticker).reset()
        if outcome is BitfinexOutcome.TICKER and books.ticker is not None:
            t = books.ticker
            check_for(bitfinex_ticker(t.symbol)).on_ticker(recv_ns, t.bid_price, t.ask_price)
        elif book is not None and outcome in (BitfinexOutcome.SNAPSHOT, BitfinexOutcome.APPLIED):
            _new_state(report, book, check_for(book.ticker), recv_ns, recv_ns, outcome is BitfinexOutcome.SNAPSHOT)
    _finish(report, [b for c in connections.values() for b in c.books.values()], checks)
    return report


class _Top(NamedTuple):
    seq: int
    bid: Level | None
    ask: Level | None


class SequencedTopCheck:
    """Our best bid/ask (prices and sizes) against a top-of-book stream stamped with the book's own sequence.

    KuCoin's trade.ticker carries the level2 sequence at which it was taken: it must equal our book
    after the last change at or below that sequence. A ticker is compared once the book has reached
    its sequence; one older than the book's first state (snapshot) is uncomparable.
    """

    def __init__(self) -> None:
        self._states: deque[_Top] = deque(maxlen=HISTORY)
        self._pending: deque[tuple[int, Level, Level]] = deque()
        self.checked = self.uncomparable = 0
        self.mismatches: list[str] = []

    def reset(self) -> None:
        self.uncomparable += len(self._pending)
        self._states.clear()
        self._pending.clear()

    def on_book(self, seq: int, bid: Level | None, ask: Level | None) -> None:
        self._states.append(_Top(seq, bid, ask))
        while self._pending and self._pending[0][0] <= seq:
            self._evaluate(*self._pending.popleft())

    def on_ticker(self, seq: int, bid: Level, ask: Level) -> None:
        if self._states and self._states[-1].seq >= seq:
            self._evaluate(seq, bid, ask)
        else:
            self._pending.append((seq, bid, ask))

    def _evaluate(self, seq: int, bid: Level, ask: Level) -> None:
        base = next((s for s in reversed(self._states) if s.seq <= seq), None)
        if base is None:
            self.uncomparable += 1
            return
        self.checked += 1
        if not (_same(base.bid, bid) and _same(base.ask, ask)):
            self.mismatches.append(f"ticker at sequence {seq}: {bid}/{ask}, our book at {base.seq}: {base.bid}/{base.ask}")


def _same(ours: Level | None, theirs: Level) -> bool:
    return ours is not None and (to_decimal(ours.price), to_decimal(ours.size)) == (to_decimal(theirs.price),
                                                                                   to_decimal(theirs.size))


def verify_kucoin(session: Session) -> VerifyReport:
    """KuCoin books per connection, from the recorded REST snapshots (each goes to the connections whose book of
    that symbol waits for one). BBO: each trade.ticker against our book at the ticker's sequence, exactly."""
    report = VerifyReport("KUCOIN", session.format.value, [str(p) for p in session.paths])
    connections: dict[str, KucoinBooks] = {}
    checks: dict[str, SequencedTopCheck] = {}

    def observe(books: KucoinBooks, gaps_before: int) -> None:
        for gap in books.gaps[gaps_before:]:
            checks.setdefault(gap.ticker, SequencedTopCheck()).reset()

    def state(owner: KucoinBook) -> None:
        _observe(_book_report(report, owner), owner.book, None)
        checks.setdefault(owner.ticker, SequencedTopCheck()).on_book(owner.seq, owner.book.best_bid(),
                                                                      owner.book.best_ask())

    for r in session.records:
        if r.kind is RecordKind.HTTP:
            symbol = _query_symbol(r.url) if SNAPSHOT_PATH_MARK in r.url else None
            if symbol is None:
                continue
            targets = [c for c in connections.values() if symbol not in c.books or c.books[symbol].wants_snapshot]
            for books in targets or [connections.setdefault("", KucoinBooks())]:
                gaps_before = len(books.gaps)
                try:
                    book, outcome = books.on_snapshot(symbol, r.data, r.recv_ns)
                except KucoinParseError:
                    report.malformed_frames += 1
                    continue
                observe(books, gaps_before)
                if outcome is KucoinOutcome.SNAPSHOT:
                    checks.setdefault(book.ticker, SequencedTopCheck()).reset()
                    state(book)
            continue
        report.frames += 1
        if r.kind is not RecordKind.WS:
            continue
        books = connections.setdefault(r.conn, KucoinBooks())
        gaps_before = len(books.gaps)
        try:
            changed, outcome = books.on_frame(r.data, r.recv_ns)
        except KucoinParseError:
            report.malformed_frames += 1
            continue
        observe(books, gaps_before)
        if outcome is KucoinOutcome.TICKER and books.ticker is not None:
            t = books.ticker
            try:
                checks.setdefault(kucoin_ticker(t.symbol), SequencedTopCheck()).on_ticker(
                    t.sequence, Level(t.bid_price, t.bid_size), Level(t.ask_price, t.ask_size))
            except KucoinSymbolError:
                report.malformed_frames += 1
        elif changed is not None and outcome is KucoinOutcome.APPLIED:
            state(changed)
    owners = [b for c in connections.values() for b in c.books.values()]
    _finish(report, owners, {})
    for ticker, check in sorted(checks.items()):
        if ticker in report.books:
            b = report.books[ticker]
            b.bbo_checked, b.bbo_mismatches = b.bbo_checked + check.checked, b.bbo_mismatches + len(check.mismatches)
            report.examples += [f"{ticker} BBO: {m}" for m in check.mismatches[:MAX_EXAMPLES]]
    for owner in owners:
        _book_report(report, owner).stale_snapshots += owner.stats.stale_snapshots
    return report


def _query_symbol(url: str) -> str | None:
    return parse_qs(urlsplit(url).query).get("symbol", [None])[0]


VERIFIERS: dict[str, Callable[[Session], VerifyReport]] = {"KUCOIN": verify_kucoin, "BITFINEX": verify_bitfinex}
