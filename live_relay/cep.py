"""CEP triggers (seed 000: CEPTriggerRequest 0x09 → CEPTriggerAck 0x0A → CEPTriggerEvent 0x0B).

A client registers a trigger through the relay's ROUTER; the relay validates it,
makes it durable in Kafka (`marketlake.cep.triggers`, acks=all) and only then
acknowledges it, so the stateless relay never holds triggers and a restarted
live process re-reads every registration. The live process evaluates them on
every trade and publishes CEPTriggerEvent on the client's topic
`RESPONSE:{client_id}`.

- PRICE_CROSS(level): fires on the trade whose price reaches or passes `level`
  from the other side: previous < level <= price, or previous > level >= price.
  The first trade after registration only sets "previous" (no cross without two sides).
- VOLUME_OVER_WINDOW(level, window_seconds): the summed size of the ticker's trades
  with exchange time in (t - window, t] goes above `level` at trade t. Edge-triggered:
  it fires when the sum crosses above the level and re-arms once it is back at or below.
- once: the trigger is removed after it fires.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from live_relay.messages import CEPTriggerEvent, CEPTriggerRequest, Tick, TriggerKind
from live_relay.topics import TickerError, notification_topic, parse_ticker, valid_id
from live_relay.validation import RequestError

__all__ = ["CepEngine", "MAX_WINDOW_SECONDS", "cep_topic_for", "validate_trigger"]

MAX_WINDOW_SECONDS = 86_400


def cep_topic_for(client_id: str) -> str:
    """Where a client's trigger events go: its per-client notification topic."""
    from live_relay.messages import NotifyPattern

    return notification_topic(NotifyPattern.PER_CLIENT, client_id, "")


def validate_trigger(req: CEPTriggerRequest) -> Decimal:
    """The trigger's level, or RequestError saying what is wrong."""
    if not valid_id(req.trigger_id) or not valid_id(req.client_id):
        raise RequestError(f"trigger_id and client_id must match [A-Za-z0-9_.-]{{1,128}}: {req.trigger_id!r}, {req.client_id!r}")
    try:
        parse_ticker(req.ticker)
    except TickerError as exc:
        raise RequestError(str(exc)) from None
    if req.kind not in (TriggerKind.PRICE_CROSS, TriggerKind.VOLUME_OVER_WINDOW):
        raise RequestError(f"trigger kind must be PRICE_CROSS or VOLUME_OVER_WINDOW, got {req.kind!r}")
    try:
        level = Decimal(req.level)
    except InvalidOperation:
        raise RequestError(f"level is not a decimal number: {req.level!r}") from None
    if not level.is_finite() or level <= 0:
        raise RequestError(f"level must be a positive number, got {req.level!r}")
    if req.kind == TriggerKind.VOLUME_OVER_WINDOW and not 0 < req.window_seconds <= MAX_WINDOW_SECONDS:
        raise RequestError(f"window_seconds must be in 1..{MAX_WINDOW_SECONDS} for VOLUME_OVER_WINDOW, got {req.window_seconds}")
    return level


@dataclass
class _Trigger:
    req: CEPTriggerRequest
    level: Decimal
    previous: Decimal | None = None  # PRICE_CROSS: last trade price seen
    above: bool = False  # VOLUME_OVER_WINDOW: the window's sum is above the level
    window: deque[tuple[int, Decimal]] = field(default_factory=deque)
    total: Decimal = Decimal(0)


class CepEngine:
    """Registered triggers by ticker; `on_tick` returns the (topic, event) publications a trade fires."""

    def __init__(self) -> None:
        self._by_ticker: dict[str, dict[str, _Trigger]] = {}
        self.fired = 0

    def register(self, req: CEPTriggerRequest) -> None:
        """Add (or replace, by trigger_id) a trigger; RequestError when it is invalid."""
        level = validate_trigger(req)
        for triggers in self._by_ticker.values():
            triggers.pop(req.trigger_id, None)
        self._by_ticker.setdefault(req.ticker, {})[req.trigger_id] = _Trigger(req, level)

    def __len__(self) -> int:
        return sum(len(t) for t in self._by_ticker.values())

    def on_tick(self, tick: Tick) -> list[tuple[str, CEPTriggerEvent]]:
        triggers = self._by_ticker.get(tick.ticker)
        if not triggers:
            return []
        price, out, done = Decimal(tick.price), [], []
        for trigger in triggers.values():
            detail = self._fires(trigger, tick, price)
            if detail is None:
                continue
            req = trigger.req
            value = tick.price if req.kind == TriggerKind.PRICE_CROSS else str(trigger.total)
            out.append((cep_topic_for(req.client_id), CEPTriggerEvent(trigger_id=req.trigger_id, ticker=tick.ticker,
                        value=value, event_time_ns=tick.exchange_time_ns, detail=detail)))  # fmt: skip
            if req.once:
                done.append(req.trigger_id)
        for trigger_id in done:
            del triggers[trigger_id]
        self.fired += len(out)
        return out

    @staticmethod
    def _fires(t: _Trigger, tick: Tick, price: Decimal) -> str | None:
        if t.req.kind == TriggerKind.PRICE_CROSS:
            prev, t.previous = t.previous, price
            if prev is not None and (prev < t.level <= price or prev > t.level >= price):
                way = "up" if price > prev else "down"
                return f"price {way} through {t.req.level}: {prev} -> {price} (trade {tick.trade_id})"
            return None
        size, now = Decimal(tick.size), tick.exchange_time_ns
        t.window.append((now, size))
        t.total += size
        horizon = now - t.req.window_seconds * 1_000_000_000
        while t.window and t.window[0][0] <= horizon:
            t.total -= t.window.popleft()[1]
        was_above, t.above = t.above, t.total > t.level
        if t.above and not was_above:
            return f"volume {t.total} over {t.req.window_seconds}s above {t.req.level} (trade {tick.trade_id})"
        return None
