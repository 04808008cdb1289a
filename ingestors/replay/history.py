"""Trade history derived from the recorded websocket trades, for the exchanges' REST candles/trades endpoints.

Nothing here was received over REST: trades are the recorded websocket trades
(de-duplicated by trade id, oldest first) and candles are built from the trades of
each interval (open = first trade, close = last, volume = sum of sizes, quote
volume = sum of price x size). Only closed candles are served (end <= the server's
now: the end of the recording in deterministic mode, the replay clock when paced);
intervals without trades have no candle (as Coinbase, Kraken, OKX and Bybit omit them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from ingestors.replay.spec import Trade


def dec_str(value: Decimal) -> str:
    """A plain decimal string (never an exponent), trailing zeros of the fraction removed."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class Candle:
    start_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: Decimal
    quote_volume: Decimal
    count: int

    @property
    def vwap(self) -> Decimal:
        return self.quote_volume / self.volume if self.volume else Decimal(0)


class TradeHistory:
    """Recorded trades per symbol, and the candles made from them."""

    def __init__(self, trades: Iterable[Trade], now_ns: Callable[[], int]) -> None:
        seen: set[tuple[str, str]] = set()
        self.by_symbol: dict[str, list[Trade]] = {}
        for t in trades:
            if (t.symbol, t.trade_id) in seen:  # a snapshot repeats trades the updates also carry
                continue
            seen.add((t.symbol, t.trade_id))
            self.by_symbol.setdefault(t.symbol, []).append(t)
        for rows in self.by_symbol.values():
            # numeric ids order same-millisecond trades (a Coinbase frame lists its trades newest first);
            # others keep their recorded order (the sort is stable)
            rows.sort(key=lambda t: (t.ts_ms, int(t.trade_id) if t.trade_id.isdigit() else 0))
        self._now_ns = now_ns

    def now_ms(self) -> int:
        return self._now_ns() // 1_000_000

    def trades(self, symbol: str) -> list[Trade]:
        """Trades of the symbol that happened up to the server's now, oldest first."""
        now = self.now_ms()
        return [t for t in self.by_symbol.get(symbol, []) if t.ts_ms <= now]

    def candles(self, symbol: str, interval_ms: int) -> list[Candle]:
        """Closed candles of the symbol, oldest first; intervals without trades are absent."""
        now = self.now_ms()
        out: list[Candle] = []
        rows: list[Trade] = []

        def close() -> None:
            if rows:
                prices = [t.price_d for t in rows]
                hi, lo = max(prices), min(prices)
                out.append(Candle(
                    rows[0].ts_ms // interval_ms * interval_ms, rows[0].price,
                    next(t.price for t in rows if t.price_d == hi), next(t.price for t in rows if t.price_d == lo),
                    rows[-1].price, sum((t.size_d for t in rows), Decimal(0)),
                    sum((t.price_d * t.size_d for t in rows), Decimal(0)), len(rows)))

        for t in self.trades(symbol):
            if rows and t.ts_ms // interval_ms != rows[0].ts_ms // interval_ms:
                close()
                rows = []
            rows.append(t)
        close()
        return [c for c in out if c.start_ms + interval_ms <= now]
