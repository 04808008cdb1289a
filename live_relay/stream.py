"""The stream processor: normalised live events in, (topic, message) publications out.

Topics (seed 000's `{ticker}|{data_type}`, plus pair-wide ones for cross-exchange views):

  {ticker}|tick            every trade (Tick)
  {ticker}|ohlc:{period}   candle updates while a candle is open, then the final one (OHLC, closed=True)
  {ticker}|book            the book's changes (BookUpdate: snapshot on (re)sync, then deltas)
  {ticker}|bbo             the exchange's own top of book (TopOfBook)
  {ticker}|gap             a detected gap of that ticker's stream (StreamGap)
  {BASE}/{QUOTE}|bbo       the BBO world view of the pair across exchanges (BboWorldView), at every change
  {ticker}|imbalance, {ticker}|heatmap, {BASE}/{QUOTE}|book   book views, throttled (live_relay/book_views.py)
  RESPONSE:{client_id}     CEP trigger events of that client's triggers (live_relay/cep.py)

Candles are built by exchange time with live_relay/candles.CandleBuilder (its rule for
late trades: a trade older than the open candle is counted in `dropped_late` and
not applied, unless within `allowed_lateness`). Closed candles are also returned
for durability (Kafka topic live.ohlc). Pure and synchronous: the live process
feeds batches and publishes what comes back, so tests run it offline on recordings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from live_relay.book_views import BookViews
from live_relay.candles import CandleBuilder
from live_relay.cep import CepEngine
from live_relay.messages import OHLC, BboWorldView, BookUpdate, Message, StreamGap, Tick, TopOfBook
from live_relay.topics import market_topic, parse_ticker

__all__ = ["BboWorldViews", "Publication", "StreamProcessor", "world_view_topic"]

Publication = tuple[str, Message]


def world_view_topic(pair: str) -> str:
    return f"{pair}|bbo"


class BboWorldViews:
    """The latest top of book of every exchange, per asset pair; a new view whenever a pair's best changes."""

    def __init__(self) -> None:
        self._tops: dict[str, dict[str, TopOfBook]] = {}  # pair -> ticker -> latest top
        self._last: dict[str, tuple[str, str, str, str]] = {}  # pair -> (bid ticker, bid, ask ticker, ask) published
        self._sequence = 0

    def on_top(self, top: TopOfBook) -> BboWorldView | None:
        t = parse_ticker(top.ticker)
        pair = f"{t.base}/{t.quote}"
        venues = self._tops.setdefault(pair, {})
        venues[top.ticker] = top
        quoted = [v for v in venues.values() if v.bid_price and v.ask_price]
        if not quoted:
            return None
        # Highest bid, lowest ask; ties go to the earlier-listed exchange (dict order = first seen), deterministically.
        best_bid = max(quoted, key=lambda v: Decimal(v.bid_price))
        best_ask = min(quoted, key=lambda v: Decimal(v.ask_price))
        key = (best_bid.ticker, best_bid.bid_price, best_ask.ticker, best_ask.ask_price)
        if self._last.get(pair) == key:
            return None  # the world's best did not change: nothing to say (seed 004's "top changed" listener)
        self._last[pair] = key
        self._sequence += 1
        return BboWorldView(pair=pair, venues=tuple(venues.values()), best_bid_ticker=best_bid.ticker,
                            best_bid_price=best_bid.bid_price, best_ask_ticker=best_ask.ticker,
                            best_ask_price=best_ask.ask_price,
                            crossed=Decimal(best_bid.bid_price) >= Decimal(best_ask.ask_price),
                            event_time_ns=top.receive_time_ns, sequence=self._sequence)  # fmt: skip


@dataclass
class ProcessorStats:
    ticks: int = 0
    candles_closed: int = 0
    book_updates: int = 0
    tops: int = 0
    world_views: int = 0
    gaps: int = 0
    sequences: dict[str, int] = field(default_factory=dict)


class StreamProcessor:
    """Feeds: Tick, BookUpdate, TopOfBook, StreamGap. Returns publications and closed candles."""

    def __init__(self, candle_periods: Iterable[int], *, allowed_lateness_ns: int = 0,
                 heatmap_buckets: dict[str, str] | None = None) -> None:  # fmt: skip
        self.candles = CandleBuilder(candle_periods, allowed_lateness_ns=allowed_lateness_ns)
        self.views = BookViews(heatmap_buckets)
        self.world = BboWorldViews()
        self.cep = CepEngine()
        self.stats = ProcessorStats()

    def process(self, events: Sequence[object]) -> tuple[list[Publication], list[OHLC]]:
        out: list[Publication] = []
        closed: list[OHLC] = []
        for event in events:
            if isinstance(event, Tick):
                self.stats.ticks += 1
                out.append((market_topic(event.ticker, "tick"), event))
                for candle in self.candles.on_trade(event):
                    out.append((market_topic(candle.ticker, f"ohlc:{candle.period_seconds}"), candle))
                    if candle.closed:
                        closed.append(candle)
                out.extend(self.cep.on_tick(event))
            elif isinstance(event, BookUpdate):
                self.stats.book_updates += 1
                out.append((market_topic(event.ticker, "book"), event))
                out.extend(self.views.on_update(event))  # type: ignore[arg-type]
            elif isinstance(event, TopOfBook):
                self.stats.tops += 1
                out.append((market_topic(event.ticker, "bbo"), event))
                view = self.world.on_top(event)
                if view is not None:
                    self.stats.world_views += 1
                    out.append((world_view_topic(view.pair), view))
            elif isinstance(event, StreamGap):
                self.stats.gaps += 1
                out.append((market_topic(event.ticker, "gap"), event))
        self.stats.candles_closed += len(closed)
        return out, closed
