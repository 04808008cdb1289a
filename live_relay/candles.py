"""Real-time OHLC candles from trades, by exchange time (the sidecar's `{ticker}|ohlc:{period}` stream).

One CandleBuilder serves any number of tickers and the configured periods
(seconds; candles start at multiples of the period since the epoch, UTC).

- **Open candle.** The candle of the period holding the ticker's *watermark*
  (the latest exchange time seen, or given to `advance`). Every trade in it
  emits an update (`closed=False`, unless `emit_updates=False`).
- **Closing.** The first trade of a later period, or `advance(ticker, t)` past
  the period's end, closes the open candle: a final candle (`closed=True`) is
  emitted. `flush()` closes every open candle (end of input).
- **Late trades.** A trade whose period is already closed is late. If it is at
  most `allowed_lateness_ns` older than the ticker's watermark, it is added to
  its candle and the corrected final candle is emitted again (`closed=True`,
  a new `sequence`); a period that had no trades gets its first final candle
  this way. Older trades are dropped and counted (`stats.late_dropped`). So
  for any arrival order in which no trade is later than the allowed lateness,
  the last final candle of each period is the same.
- **Order inside a candle.** open/close are the trades with the smallest and
  greatest (exchange time, trade id), so arrival order never matters.
- **Exact arithmetic.** Decimal under a context that traps any rounding.
  Every decimal field is written in one normal form: plain notation, no
  trailing zeros ("61700.01", "0.5", "0"). quote volume = sum(price * size);
  taker-buy sums count trades whose buyer was the taker (`buyer_is_maker`
  false). trade_count counts exchange trades: an aggregate trade with numeric
  first/last trade ids counts `last - first + 1`, as Binance's klines do.
- Periods without trades have no candle. `sequence` counts the emissions of
  one (ticker, period), i.e. of one topic, so a subscriber can see loss.
- Duplicated trades (the same trade delivered twice) are not detected here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded

from live_relay.messages import OHLC, Tick

__all__ = ["CandleBuilder", "CandleError", "CandleStats", "format_decimal", "period_start_ns"]

NS_PER_S = 1_000_000_000
EXACT = Context(prec=80, traps=[Inexact, Rounded, InvalidOperation, Overflow])  # any rounding is an error
ZERO = Decimal(0)
PRICE_CACHE_SIZE = 100_000


class CandleError(ValueError):
    """A trade or a configuration the candle builder cannot use."""


def format_decimal(value: Decimal) -> str:
    """The one string form of every decimal the builder writes: plain, without trailing zeros."""
    text = str(value)  # plain notation unless the exponent is large; twice as fast as format(value, "f")
    if "E" in text:
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def period_start_ns(time_ns: int, period_seconds: int) -> int:
    """Start of the period holding time_ns (periods are aligned to the epoch, UTC)."""
    step = period_seconds * NS_PER_S
    return time_ns - time_ns % step


def _decimal(text: str, what: str, tick: Tick) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CandleError(f"trade {tick.trade_id} of {tick.ticker}: {what} {text!r} is not a decimal") from None
    if not value.is_finite() or value < 0:
        raise CandleError(f"trade {tick.trade_id} of {tick.ticker}: {what} {text!r} is not a finite, non-negative decimal")
    return value


def _order_key(tick: Tick) -> tuple[int, int, int, str]:
    """(exchange time, trade id): numeric ids compare as numbers, others as text after them."""
    tid = tick.trade_id
    return (tick.exchange_time_ns, 0, int(tid), "") if tid.isdigit() else (tick.exchange_time_ns, 1, 0, tid)


def _trade_count(tick: Tick) -> int:
    first, last = tick.first_trade_id, tick.last_trade_id
    return int(last) - int(first) + 1 if first.isdigit() and last.isdigit() else 1


Price = tuple[Decimal, str]  # a price and its normal text, formatted once per distinct price


class _Candle:
    """Running OHLCV of one period."""

    __slots__ = ("start_ns", "open_key", "open", "high", "low", "close_key", "close", "volume", "quote", "trades",
                 "taker_buy", "taker_buy_quote")

    def __init__(self, start_ns: int, key: tuple[int, int, int, str], price: Price) -> None:
        self.start_ns, self.open_key, self.close_key = start_ns, key, key
        self.open = self.high = self.low = self.close = price
        self.volume = self.quote = self.taker_buy = self.taker_buy_quote = ZERO
        self.trades = 0

    def add(self, key: tuple[int, int, int, str], price: Price, size: Decimal, count: int, taker_buy: bool) -> None:
        if key < self.open_key:
            self.open_key, self.open = key, price
        if key >= self.close_key:
            self.close_key, self.close = key, price
        if price[0] > self.high[0]:
            self.high = price
        if price[0] < self.low[0]:
            self.low = price
        notional = EXACT.multiply(price[0], size)
        self.volume = EXACT.add(self.volume, size)
        self.quote = EXACT.add(self.quote, notional)
        self.trades += count
        if taker_buy:
            self.taker_buy = EXACT.add(self.taker_buy, size)
            self.taker_buy_quote = EXACT.add(self.taker_buy_quote, notional)

    def to_ohlc(self, ticker: str, period_seconds: int, closed: bool, sequence: int) -> OHLC:
        f = format_decimal
        return OHLC(ticker=ticker, period_seconds=period_seconds, open_time=self.start_ns // 1000, open=self.open[1],
                    high=self.high[1], low=self.low[1], close=self.close[1], volume=f(self.volume),
                    quote_volume=f(self.quote), trade_count=self.trades, taker_buy_volume=f(self.taker_buy),
                    taker_buy_quote_volume=f(self.taker_buy_quote), closed=closed, sequence=sequence)


class _Series:
    """The candles of one (ticker, period): the open one and the closed ones still open to late trades."""

    __slots__ = ("period", "step_ns", "current_ns", "open", "closed", "sequence")

    def __init__(self, period: int, current_ns: int) -> None:
        self.period, self.step_ns = period, period * NS_PER_S
        self.current_ns = current_ns  # start of the open period; every earlier period is closed
        self.open: _Candle | None = None
        self.closed: dict[int, _Candle] = {}
        self.sequence = 0


@dataclass
class CandleStats:
    trades: int = 0
    late_corrected: int = 0  # (trade, period) pairs added to an already closed candle
    late_dropped: dict[tuple[str, int], int] = field(default_factory=dict)  # by (ticker, period): older than allowed

    @property
    def dropped(self) -> int:
        return sum(self.late_dropped.values())


class CandleBuilder:
    """Candles of the given periods for every ticker it sees; each call returns the candles it emits."""

    def __init__(self, periods: Iterable[int], *, allowed_lateness_ns: int = 0, emit_updates: bool = True) -> None:
        self.periods = tuple(sorted(set(periods)))
        if not self.periods or any(not isinstance(p, int) or p <= 0 for p in self.periods):
            raise CandleError(f"candle periods must be positive whole seconds, got {list(self.periods)!r}")
        if allowed_lateness_ns < 0:
            raise CandleError(f"allowed lateness must not be negative, got {allowed_lateness_ns} ns")
        self.allowed_lateness_ns, self.emit_updates = allowed_lateness_ns, emit_updates
        self.stats = CandleStats()
        self._series: dict[str, list[_Series]] = {}
        self._watermark: dict[str, int] = {}
        self._prices: dict[str, Price] = {}  # by the exchange's price text: parsed and formatted once

    def _price(self, tick: Tick) -> Price:
        price = self._prices.get(tick.price)
        if price is None:
            if len(self._prices) >= PRICE_CACHE_SIZE:
                self._prices.clear()
            value = _decimal(tick.price, "price", tick)
            price = self._prices[tick.price] = (value, format_decimal(value))
        return price

    def watermark(self, ticker: str) -> int | None:
        """Latest exchange time (ns) seen for the ticker, or given to advance()."""
        return self._watermark.get(ticker)

    def on_trade(self, tick: Tick) -> list[OHLC]:
        """Add one trade: updates of its open candles, finals of candles it closes, or late corrections."""
        t, ticker = tick.exchange_time_ns, tick.ticker
        price, size = self._price(tick), _decimal(tick.size, "size", tick)
        key, count, taker_buy = _order_key(tick), _trade_count(tick), not tick.buyer_is_maker
        watermark = self._watermark.get(ticker, t)
        series = self._series.get(ticker)
        if series is None:  # a watermark given by advance() before the first trade already closed earlier periods
            series = self._series[ticker] = [_Series(p, period_start_ns(max(t, watermark), p)) for p in self.periods]
        self.stats.trades += 1
        out: list[OHLC] = []
        for s in series:
            start = t - t % s.step_ns
            if start >= s.current_ns:
                if start > s.current_ns:
                    self._close_open(ticker, s, start, out)
                if s.open is None:
                    s.open = _Candle(start, key, price)
                s.open.add(key, price, size, count, taker_buy)
                if self.emit_updates:
                    s.sequence += 1
                    out.append(s.open.to_ohlc(ticker, s.period, False, s.sequence))
            elif watermark - t <= self.allowed_lateness_ns:
                candle = s.closed.get(start)
                if candle is None:
                    candle = s.closed[start] = _Candle(start, key, price)
                candle.add(key, price, size, count, taker_buy)
                self.stats.late_corrected += 1
                s.sequence += 1
                out.append(candle.to_ohlc(ticker, s.period, True, s.sequence))
            else:
                drops = self.stats.late_dropped
                drops[(ticker, s.period)] = drops.get((ticker, s.period), 0) + 1
        if t > watermark or ticker not in self._watermark:
            self._set_watermark(ticker, max(t, watermark))
        return out

    def on_trades(self, ticks: Iterable[Tick]) -> list[OHLC]:
        out: list[OHLC] = []
        for tick in ticks:
            out.extend(self.on_trade(tick))
        return out

    def advance(self, ticker: str, watermark_ns: int) -> list[OHLC]:
        """Exchange time has reached watermark_ns for the ticker (e.g. a quiet market): close candles ending by then."""
        out: list[OHLC] = []
        if watermark_ns <= self._watermark.get(ticker, watermark_ns - 1):
            return out
        for s in self._series.get(ticker, ()):
            start = watermark_ns - watermark_ns % s.step_ns
            if start > s.current_ns:
                self._close_open(ticker, s, start, out)
        self._set_watermark(ticker, watermark_ns)
        return out

    def advance_all(self, watermark_ns: int) -> list[OHLC]:
        """advance() for every ticker seen so far."""
        return [c for ticker in list(self._series) for c in self.advance(ticker, watermark_ns)]

    def flush(self, tickers: Sequence[str] | None = None) -> list[OHLC]:
        """End of input: close every open candle now (later trades of those periods are late)."""
        out: list[OHLC] = []
        for ticker in self._series if tickers is None else tickers:
            for s in self._series.get(ticker, ()):
                if s.open is not None:
                    self._close_open(ticker, s, s.open.start_ns + s.step_ns, out)
        return out

    def _close_open(self, ticker: str, s: _Series, new_current_ns: int, out: list[OHLC]) -> None:
        s.current_ns = new_current_ns
        if s.open is None:
            return
        s.sequence += 1
        out.append(s.open.to_ohlc(ticker, s.period, True, s.sequence))
        s.closed[s.open.start_ns] = s.open
        s.open = None

    def _set_watermark(self, ticker: str, watermark_ns: int) -> None:
        """Move the watermark; forget closed candles that no acceptable late trade can reach any more."""
        self._watermark[ticker] = watermark_ns
        oldest_acceptable = watermark_ns - self.allowed_lateness_ns
        for s in self._series.get(ticker, ()):
            if s.closed and min(s.closed) + s.step_ns <= oldest_acceptable:
                s.closed = {k: c for k, c in s.closed.items() if k + s.step_ns > oldest_acceptable}
