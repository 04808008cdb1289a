"""One symbol's trade history as the replay server serves it: recorded minutes, synthetic elsewhere.

Boundary rule: a minute that the recording touches at all (its first trade's
minute through its last trade's minute) is served from the recorded trades alone,
even where the recording starts or stops inside it (BTCUSDT 2024-08-08 23:54 starts
at :15.342, 00:00 stops at :01.271). We never invent trades inside a recorded minute,
so REST aggTrades and klines agree trade for trade with the replayed websocket; the
cost is that those two boundary candles are thinner than Binance's real ones. The
synthetic path is anchored so that the minute before the recording closes at its
first price and the minute after it opens at its last price, and synthetic trade and
aggregate ids run contiguously into and out of the recorded ids.

Cost: a synthetic minute is generated from its trades (so klines and aggTrades always
agree); about 0.2 s per uncached day of one symbol, so 1d klines over months are slow
the first time. Minute summaries are cached.
"""

from __future__ import annotations

import bisect
import random
from functools import lru_cache
from typing import Any

from ingestors.binance.config import SymbolSpec
from ingestors.binance.recording import Recording, RecordingError
from ingestors.binance.schemas import AggTrade, Summary, combine, fmt_e8, kline_row, summarize
from ingestors.binance.synthetic import SyntheticMarket, mix64

MINUTE_MS = 60_000


class SymbolHistory:
    """Aggregate trades and klines of one symbol for any time, identical on every call."""

    def __init__(self, spec: SymbolSpec, rec: Recording | None) -> None:
        self.spec, self.rec = spec, rec
        anchors: tuple[tuple[int, int], ...] = ()
        if rec is not None:
            anchors = ((rec.first_minute, rec.aggs[0].price_e8), (rec.last_minute + 1, rec.aggs[-1].price_e8))
        self.synth = SyntheticMarket(spec, anchors)
        self.listing_minute = spec.listed_ms // MINUTE_MS
        self.minute_aggs = lru_cache(maxsize=4096)(self._minute_aggs)
        self.minute_summary = lru_cache(maxsize=1 << 17)(self._minute_summary)
        if rec is not None and min(self.first_ids(self.listing_minute)) < 0:
            raise RecordingError(
                f"{spec.symbol}: recorded_first_agg_id {spec.recorded_first_agg_id} (or the first recorded trade id) "
                f"is too small for the synthetic trades since listing: ids would go negative"
            )

    def is_recorded(self, m: int) -> bool:
        return self.rec is not None and self.rec.first_minute <= m <= self.rec.last_minute

    def first_ids(self, m: int) -> tuple[int, int]:
        """(first aggregate id, first trade id) of synthetic minute m."""
        act, rec = self.synth.activity, self.rec
        if rec is None:
            return act.cum_aggs(m) - act.cum_aggs(self.listing_minute), act.cum_trades(m) - act.cum_trades(
                self.listing_minute)
        if m < rec.first_minute:
            return (rec.aggs[0].agg_id - (act.cum_aggs(rec.first_minute) - act.cum_aggs(m)),
                    rec.aggs[0].first_id - (act.cum_trades(rec.first_minute) - act.cum_trades(m)))
        after = rec.last_minute + 1
        return (rec.aggs[-1].agg_id + 1 + act.cum_aggs(m) - act.cum_aggs(after),
                rec.aggs[-1].last_id + 1 + act.cum_trades(m) - act.cum_trades(after))

    def _minute_aggs(self, m: int) -> tuple[AggTrade, ...]:
        if m < self.listing_minute:
            return ()
        if self.rec is not None and self.is_recorded(m):
            return self.rec.aggs_by_minute.get(m, ())
        return tuple(self.synth.minute_aggs(m, *self.first_ids(m)))

    def _minute_summary(self, m: int) -> Summary | None:
        return summarize(self.minute_aggs(m))

    def minute_of_agg_id(self, agg_id: int) -> int:
        """The minute holding aggregate id agg_id (or the first minute after it, for ids in no minute)."""
        rec = self.rec
        if rec is not None and rec.aggs[0].agg_id <= agg_id <= rec.aggs[-1].agg_id:
            return rec.minute_of_agg_id(agg_id)
        if rec is not None and agg_id < rec.aggs[0].agg_id:
            lo, hi = self.listing_minute, rec.first_minute - 1
        else:
            lo = rec.last_minute + 1 if rec is not None else self.listing_minute
            hi = lo + (1 << 27)  # 255 years of minutes
        if self.first_ids(lo)[0] > agg_id:
            return lo
        while lo < hi:  # largest m with first_ids(m) <= agg_id
            mid = (lo + hi + 1) // 2
            if self.first_ids(mid)[0] <= agg_id:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def period_summary(self, open_ms: int, interval_ms: int) -> Summary | None:
        if interval_ms >= MINUTE_MS:
            first = open_ms // MINUTE_MS
            return combine([self.minute_summary(m) for m in range(first, first + interval_ms // MINUTE_MS)])
        aggs = self.minute_aggs(open_ms // MINUTE_MS)
        lo = bisect.bisect_left(aggs, open_ms, key=lambda a: a.time_ms)
        hi = bisect.bisect_left(aggs, open_ms + interval_ms, key=lambda a: a.time_ms)
        return summarize(aggs[lo:hi])

    def close_before(self, ms: int) -> int | None:
        """Price of the last trade before ms, or None before the first trade."""
        m = (ms - 1) // MINUTE_MS
        aggs = [a for a in self.minute_aggs(m) if a.time_ms < ms]
        if aggs:
            return aggs[-1].price_e8
        while m > self.listing_minute:
            m -= 1
            s = self.minute_summary(m)
            if s is not None:
                return s.close_e8
        return None

    def klines(self, interval_s: int, start_ms: int | None, end_ms: int | None, limit: int,
               now_ms: int) -> list[list[object]]:
        """/api/v3/klines rows: open time in [startTime, endTime], closed by now_ms, at most limit."""
        step = interval_s * 1000
        k_max = (now_ms + 1 - step) // step * step  # last candle whose close time <= now
        if end_ms is not None:
            k_max = min(k_max, end_ms // step * step)
        k_min = self.spec.listed_ms // step * step
        if start_ms is not None:
            k0 = max(k_min, -(-start_ms // step) * step)
            k1 = min(k_max, k0 + (limit - 1) * step)
        else:
            k0, k1 = max(k_min, k_max - (limit - 1) * step), k_max
        rows: list[list[object]] = []
        prev = self.close_before(k0) if k0 <= k1 else None
        for k in range(k0, k1 + 1, step):
            s = self.period_summary(k, step)
            if s is None and prev is None:
                continue  # before the first trade ever
            rows.append(kline_row(k, step, s, prev or 0))
            prev = s.close_e8 if s is not None else prev
        return rows

    def agg_trades(self, from_id: int | None, start_ms: int | None, end_ms: int | None, limit: int,
                   now_ms: int) -> list[AggTrade]:
        """/api/v3/aggTrades: from fromId or startTime forwards, else the most recent up to endTime/now."""
        hi = now_ms if end_ms is None else min(end_ms, now_ms)
        out: list[AggTrade] = []
        if from_id is None and start_ms is None:
            m = hi // MINUTE_MS
            while len(out) < limit and m >= self.listing_minute:
                out = [a for a in self.minute_aggs(m) if a.time_ms <= hi] + out
                m -= 1
            return out[-limit:]
        if from_id is not None:
            m = max(self.minute_of_agg_id(from_id), self.listing_minute)
        else:
            m = max(start_ms // MINUTE_MS, self.listing_minute)  # type: ignore[operator]
        while len(out) < limit and m * MINUTE_MS <= hi:
            for a in self.minute_aggs(m):
                if a.time_ms > hi or len(out) == limit:
                    break
                if (from_id is None or a.agg_id >= from_id) and (start_ms is None or a.time_ms >= start_ms):
                    out.append(a)
            m += 1
        return out

    def last_price(self, now_ms: int) -> int:
        return self.close_before(now_ms + 1) or self.synth.price_e8(now_ms // MINUTE_MS)

    def synthetic_depth(self, now_ms: int, limit: int) -> dict[str, Any]:
        """A plausible book around the last price: best bid at it, best ask a tick above; same for same now."""
        last, tick, step = self.last_price(now_ms), self.synth.tick_e8, self.synth.step_e8
        rnd = random.Random(mix64(self.synth.seed ^ (now_ms // 100))).random
        mean_steps = max(1.0, self.spec.mean_qty * 1e8 / step)

        def level(price: int) -> list[str]:
            return [fmt_e8(price), fmt_e8(step * (1 + int(rnd() ** 2 * 30 * mean_steps)))]

        bids = [level(last - i * tick) for i in range(limit) if last - i * tick > 0]
        asks = [level(last + (i + 1) * tick) for i in range(limit)]
        return {"lastUpdateId": now_ms // 100, "bids": bids, "asks": asks}


class MarketHistory:
    """Every served symbol: the spec table, with recordings where there are some."""

    def __init__(self, specs: tuple[SymbolSpec, ...], recordings: dict[str, Recording]) -> None:
        self.symbols = {s.symbol: SymbolHistory(s, recordings.get(s.symbol)) for s in specs}

    def get(self, symbol: str) -> SymbolHistory | None:
        return self.symbols.get(symbol)
