"""Deterministic synthetic Binance trades for any symbol and any minute, each minute on its own.

Why this shape: the replay server must answer any time range the same way every
time, cheaply, without generating from some fixed origin. So everything is a pure
function of (symbol, minute):

- the price at the start of minute m, P(m), is multi-scale value noise around the
  symbol's level (looks like a random walk, bounded, O(1) to evaluate); near a
  recording it is pulled to the recorded first and last prices;
- minute m's aggregate trades walk from P(m) to P(m+1) (a Brownian bridge), so
  the close of minute m is the open of minute m+1;
- the number of aggregate trades and trades per minute are sums of seeded
  periodic tables, whose prefix sums are O(1): ids are contiguous over all time
  and the first id of any minute is computable directly (fromId pagination works).
"""

from __future__ import annotations

import hashlib
import math
import random
from functools import cached_property, lru_cache

from ingestors.binance.config import SymbolSpec
from ingestors.binance.schemas import AggTrade, to_e8

MASK64 = (1 << 64) - 1
# (period in minutes, amplitude of log price): fast jitter to slow regimes.
OCTAVES = ((1, 0.0003), (7, 0.0008), (45, 0.002), (240, 0.005), (1440, 0.012), (10080, 0.03), (43200, 0.07),
           (262800, 0.18))
ANCHOR_DECAY_MINUTES = 1440.0  # how far a recording's price pulls the synthetic path


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a fast, well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def symbol_seed(symbol: str, purpose: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{symbol}/{purpose}".encode(), digest_size=8).digest(), "big")


class PeriodicTable:
    """Seeded non-negative integers repeating with a period, with O(1) prefix sums."""

    def __init__(self, values: list[int]) -> None:
        self.values = values
        self.period = len(values)
        self.prefix = [0]
        for v in values:
            self.prefix.append(self.prefix[-1] + v)

    def at(self, m: int) -> int:
        return self.values[m % self.period]

    def cum(self, m: int) -> int:
        """Sum of at(k) for 0 <= k < m."""
        q, r = divmod(m, self.period)
        return q * self.prefix[-1] + self.prefix[r]


class Activity:
    """Aggregate trades and trades per minute: day seasonality plus two co-prime periodic tables."""

    def __init__(self, spec: SymbolSpec) -> None:
        rng = random.Random(symbol_seed(spec.symbol, "activity"))
        base = spec.aggs_per_minute

        def daily(scale: float) -> list[int]:  # busiest around 14:30 UTC (US open)
            return [max(1, int(scale * (0.55 + 0.45 * math.cos(2 * math.pi * (i / 1440 - 14.5 / 24)))
                               * rng.uniform(0.7, 1.3))) for i in range(1440)]

        self.agg_tables = (
            PeriodicTable(daily(base * 0.8)),
            PeriodicTable([rng.randrange(0, base // 3 + 2) for _ in range(997)]),
            PeriodicTable([rng.randrange(0, base // 2 + 2) for _ in range(10079)]),
        )
        self.extra_tables = (  # trades beyond one per aggregate (a taker order filling several makers)
            PeriodicTable(daily(base * 0.5)),
            PeriodicTable([rng.randrange(0, base // 4 + 2) for _ in range(991)]),
        )

    def aggs(self, m: int) -> int:
        return 1 + sum(t.at(m) for t in self.agg_tables)  # >= 2: a minute has an open and a close trade

    def trades(self, m: int) -> int:
        return self.aggs(m) + sum(t.at(m) for t in self.extra_tables)

    def cum_aggs(self, m: int) -> int:
        return m + sum(t.cum(m) for t in self.agg_tables)

    def cum_trades(self, m: int) -> int:
        return self.cum_aggs(m) + sum(t.cum(m) for t in self.extra_tables)


class SyntheticMarket:
    """The synthetic trades of one symbol. anchors: (minute, price_e8) the path must pass through."""

    def __init__(self, spec: SymbolSpec, anchors: tuple[tuple[int, int], ...] = ()) -> None:
        self.spec = spec
        self.seed = symbol_seed(spec.symbol, "prices")
        self.tick_e8 = to_e8(spec.tick_size)
        self.step_e8 = to_e8(spec.step_size)
        self.activity = Activity(spec)
        self.anchors = anchors
        self._knot = lru_cache(maxsize=1 << 16)(self._knot_uncached)
        self.price_e8 = lru_cache(maxsize=1 << 14)(self._price_e8)  # type: ignore[method-assign]

    def _unit(self, octave: int, knot: int) -> float:
        """Deterministic value in [-1, 1) for a noise knot (cached: slow octaves share knots)."""
        return self._knot(octave, knot)

    def _knot_uncached(self, octave: int, knot: int) -> float:
        return mix64(self.seed ^ mix64((octave << 48) ^ (knot & MASK64))) / 2**63 - 1.0

    def log_deviation(self, m: int) -> float:
        total = 0.0
        for octave, (period, amp) in enumerate(OCTAVES):
            t = m / period
            k = math.floor(t)
            f = t - k
            s = f * f * (3 - 2 * f)
            a, b = self._unit(octave, k), self._unit(octave, k + 1)
            total += amp * (a + (b - a) * s)
        return total

    def price_e8(self, m: int) -> int:
        """P(m): price at the start of minute m (= close of minute m-1), on the tick grid."""
        return self._price_e8(m)

    def _price_e8(self, m: int) -> int:
        raw = self.spec.level * math.exp(self.log_deviation(m))
        if self.anchors:
            am, ap = min(self.anchors, key=lambda a: abs(a[0] - m))
            if am == m:
                return ap
            target = ap / 1e8 / (self.spec.level * math.exp(self.log_deviation(am)))
            raw *= target ** math.exp(-abs(m - am) / ANCHOR_DECAY_MINUTES)
        return max(1, round(raw * 1e8 / self.tick_e8)) * self.tick_e8

    @cached_property
    def _mu(self) -> float:
        return math.log(max(1.0, self.spec.mean_qty * 1e8 / self.step_e8)) - 0.5

    def minute_aggs(self, m: int, first_agg_id: int, first_trade_id: int) -> list[AggTrade]:
        """The aggregate trades of minute m, ids starting at the given ones, in time order.

        Draws are sums of uniforms rather than gauss()/lognormvariate(): 3x faster, and
        speed matters because a 1d kline needs 1,440 generated minutes.
        """
        c, n = self.activity.aggs(m), self.activity.trades(m)
        p0, p1 = self.price_e8(m) // self.tick_e8, self.price_e8(m + 1) // self.tick_e8
        rnd = random.Random(mix64(self.seed ^ (m & MASK64))).random
        times = sorted([int(rnd() * 60_000) for _ in range(c)])
        step_sd = max(0.5, p0 * 0.0003 / math.sqrt(c)) * 2.449  # sqrt(6): sd of (u1 + u2 - 1) is 1/sqrt(6)
        walk = [0.0] * c
        for i in range(1, c):
            walk[i] = walk[i - 1] + (rnd() + rnd() - 1.0) * step_sd
        drift = ((p1 - p0) - walk[-1]) / (c - 1)
        ticks = [max(1, round(p0 + walk[i] + drift * i)) for i in range(c)]
        ticks[0], ticks[-1] = p0, p1
        sizes = [1] * c
        for _ in range(n - c):
            sizes[int(rnd() * c)] += 1
        out: list[AggTrade] = []
        agg_id, trade_id, base_ms, mu, tick, step = first_agg_id, first_trade_id, m * 60_000, self._mu, \
            self.tick_e8, self.step_e8
        for i in range(c):
            qty_steps = max(sizes[i], int(math.exp(mu + (rnd() + rnd() + rnd() - 1.5) * 2.0)))
            out.append(AggTrade(agg_id, ticks[i] * tick, qty_steps * step, trade_id, trade_id + sizes[i] - 1,
                                base_ms + times[i], rnd() < 0.5))
            agg_id += 1
            trade_id += sizes[i]
        return out
