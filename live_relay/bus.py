"""The sidecar's in-process event bus (seed 003): one producer side, required and optional subscribers.

- A **required** subscriber (the Kafka writer, the candle builder) receives every
  event it subscribed to, in publish order. Its queue is bounded; when it is full
  the publisher waits, so a slow required subscriber slows the producer and loses
  nothing.
- An **optional** subscriber (a ZeroMQ publisher, a dashboard) has a bounded queue
  too, but a full queue drops the event for that subscriber only, counted in its
  stats; it never makes the publisher wait.
- `publish_batch` hands each subscriber its share of a batch in one queue
  operation, and `Subscription.get_batch` takes many events at once.
- `pause()`: a paused subscriber's reader gets nothing until `resume()`. A paused
  required subscriber keeps buffering (and, once full, blocks the publisher: it
  is still owed every event); a paused optional subscriber drops what is
  published meanwhile, counted as `dropped_paused`.
- `close()`: refuses new events, lets every reader take what is queued, and
  returns once every required subscriber has read to the end of its stream (so
  a reader in `async for` has finished processing its last event).
- A subscriber may name event types (classes, subclasses included); it then
  receives only those.
- Use a bus inside one running event loop: subscribe there, and give each
  subscription one reading task. A required subscriber whose reader has died
  holds the producer up (that is the contract): unsubscribe it.

It is asyncio because the sidecar is: exchange websockets (`websockets`) and
ZeroMQ (`zmq.asyncio`) run as tasks of one event loop, so blocking a publisher is
simply an `await`, and a queue operation needs no lock or thread switch (one loop
thread owns all state). Blocking calls (e.g. confluent-kafka's flush) belong in a
required subscriber that runs them with `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BusClosedError", "BusDrainTimeout", "EventBus", "EndOfStream", "SubscriberStats", "Subscription"]

E = TypeVar("E")


class BusClosedError(RuntimeError):
    """Publishing on, or subscribing to, a bus that has been closed."""


class BusDrainTimeout(TimeoutError):
    """close() gave up waiting for required subscribers to read what was queued for them."""


class EndOfStream(Exception):  # noqa: N818 - like StopIteration, a signal rather than a failure
    """get() on a subscription whose bus (or the subscription itself) is closed and whose queue is empty."""


@dataclass(frozen=True)
class SubscriberStats:
    """What one subscriber was given and what it lost (a snapshot)."""

    name: str
    required: bool
    queued: int = 0  # events put in its queue
    taken: int = 0  # events its reader has taken
    dropped_full: int = 0  # optional only: queue was full
    dropped_paused: int = 0  # optional only: published while paused

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.dropped_paused


class Subscription(Generic[E]):
    """One subscriber's bounded queue and its reading side. Created by EventBus.subscribe."""

    def __init__(self, name: str, required: bool, capacity: int, types: tuple[type, ...] | None) -> None:
        if capacity < 1:
            raise ValueError(f"subscriber {name!r}: capacity must be at least 1, got {capacity}")
        self.name, self.required, self.capacity, self.types = name, required, capacity, types
        self._buf: deque[E] = deque()
        self._paused = False
        self._closed = False
        self._accepting = True  # not paused and not closed: the one flag the publish hot path reads
        self._taken = self._dropped_full = self._dropped_paused = 0
        self._holding = False  # the reader has taken events and not yet come back for more
        self._reader: asyncio.Future[None] | None = None  # the reader waits here for events, resume or close
        self._space: asyncio.Future[None] | None = None  # the publisher waits here for room (required only)
        self._finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def accepts(self, event_type: type) -> bool:
        return self.types is None or issubclass(event_type, self.types)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stats(self) -> SubscriberStats:
        return SubscriberStats(self.name, self.required, self._taken + len(self._buf), self._taken,
                               self._dropped_full, self._dropped_paused)

    def qsize(self) -> int:
        return len(self._buf)

    def pause(self) -> None:
        self._paused, self._accepting = True, False

    def resume(self) -> None:
        self._paused, self._accepting = False, not self._closed
        self._wake_reader()

    # The reading side --------------------------------------------------------------------------------

    async def get_batch(self, max_events: int = 1024) -> list[E]:
        """Up to max_events queued events (at least one), oldest first; [] once the stream has ended."""
        self._holding = False
        while True:
            if self._buf and not self._paused:
                buf = self._buf
                out = [buf.popleft() for _ in range(min(max_events, len(buf)))]
                self._taken += len(out)
                if self._space is not None and not self._space.done():
                    self._space.set_result(None)
                self._holding = True
                return out
            if self._closed and not self._buf:
                if not self._finished.done():
                    self._finished.set_result(None)
                return []
            if self._reader is not None:
                raise RuntimeError(f"subscriber {self.name!r} already has a reader waiting: one reader per subscription")
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None

    async def get(self) -> E:
        """The next event; raises EndOfStream once the stream has ended."""
        batch = await self.get_batch(1)
        if not batch:
            raise EndOfStream(f"subscriber {self.name!r}: the bus is closed and its queue is empty")
        return batch[0]

    async def __aiter__(self) -> AsyncIterator[E]:
        while batch := await self.get_batch():
            for event in batch:
                yield event

    # The publishing side (called by EventBus only) -----------------------------------------------------

    def _wake_reader(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    def _offer(self, events: Sequence[E]) -> None:
        """Optional subscriber: queue what fits, drop (and count) the rest."""
        if self._closed:
            return
        if self._paused:
            self._dropped_paused += len(events)
            return
        room = self.capacity - len(self._buf)
        if room >= len(events):
            self._buf.extend(events)
        else:
            self._buf.extend(events[:room])
            self._dropped_full += len(events) - room
        self._wake_reader()

    async def _put(self, events: Sequence[E]) -> None:
        """Required subscriber: queue all of them, waiting for room as often as needed."""
        i, n = 0, len(events)
        while i < n and not self._closed:
            room = self.capacity - len(self._buf)
            if room <= 0:
                self._space = asyncio.get_running_loop().create_future()
                try:
                    await self._space
                finally:
                    self._space = None
                continue
            chunk = events[i : i + room] if i or room < n else events
            self._buf.extend(chunk)
            i += len(chunk)
            self._wake_reader()

    def _close(self) -> None:
        self._closed, self._accepting = True, False
        if not self._buf and not self._holding and not self._finished.done():
            self._finished.set_result(None)  # nothing owed, nothing in hand: drained already
        self._wake_reader()
        if self._space is not None and not self._space.done():
            self._space.set_result(None)


class EventBus(Generic[E]):
    """Fan-out of events to subscribers in one event loop. Create and use it inside that loop."""

    def __init__(self) -> None:
        self._subs: list[Subscription[E]] = []
        self._routes: dict[type, tuple[tuple[Subscription[E], ...], tuple[Subscription[E], ...]]] = {}
        self._lock = asyncio.Lock()  # one publish at a time: every subscriber sees the same order
        self._closed = False
        self.published = 0

    def subscribe(self, name: str, *, required: bool, capacity: int = 1024,
                  types: Iterable[type] | None = None) -> Subscription[E]:
        """A new subscriber; types: the event classes it wants (None: all)."""
        if self._closed:
            raise BusClosedError(f"cannot subscribe {name!r}: the bus is closed")
        if any(s.name == name for s in self._subs):
            raise ValueError(f"a subscriber named {name!r} already exists")
        sub: Subscription[E] = Subscription(name, required, capacity, None if types is None else tuple(types))
        self._subs.append(sub)
        self._routes.clear()
        return sub

    def unsubscribe(self, sub: Subscription[E]) -> None:
        """Stop delivering to sub; its reader still gets what is queued, then the end of the stream."""
        if sub not in self._subs:
            raise ValueError(f"subscriber {sub.name!r} is not subscribed to this bus")
        self._subs.remove(sub)
        self._routes.clear()
        sub._close()

    def stats(self) -> dict[str, SubscriberStats]:
        """Per subscriber, for the sidecar's health report and metrics."""
        return {s.name: s.stats for s in self._subs}

    def _route(self, event_type: type) -> tuple[tuple[Subscription[E], ...], tuple[Subscription[E], ...]]:
        """(optional, required) subscribers of an event type, computed once per type."""
        route = self._routes.get(event_type)
        if route is None:
            wanted = [s for s in self._subs if s.accepts(event_type)]
            route = (tuple(s for s in wanted if not s.required), tuple(s for s in wanted if s.required))
            self._routes[event_type] = route
        return route

    async def publish(self, event: E) -> None:
        """Deliver one event; waits only while a required subscriber's queue is full."""
        async with self._lock:
            if self._closed:
                raise BusClosedError(f"cannot publish {type(event).__name__}: the bus is closed")
            optional, required = self._route(type(event))
            for sub in optional:  # _offer((event,)) inlined: this is the per-event hot path
                if len(sub._buf) < sub.capacity and sub._accepting:
                    sub._buf.append(event)
                    if sub._reader is not None:
                        sub._wake_reader()
                elif sub._accepting:
                    sub._dropped_full += 1
                else:
                    sub._offer((event,))
            for sub in required:
                if len(sub._buf) < sub.capacity and not sub._closed:
                    sub._buf.append(event)
                    if sub._reader is not None:
                        sub._wake_reader()
                else:
                    await sub._put((event,))
            self.published += 1

    async def publish_batch(self, events: Sequence[E]) -> None:
        """Deliver a batch: each subscriber gets its share (by type) in one queue operation, in batch order."""
        async with self._lock:
            if self._closed:
                raise BusClosedError(f"cannot publish a batch of {len(events)} events: the bus is closed")
            shares: dict[int, tuple[Subscription[E], list[E]]] = {}
            for event in events:
                optional, required = self._route(type(event))
                for sub in (*optional, *required):
                    shares.setdefault(id(sub), (sub, []))[1].append(event)
            for sub, share in shares.values():
                if not sub.required:
                    sub._offer(share)
            for sub, share in shares.values():
                if sub.required:
                    await sub._put(share)
            self.published += len(events)

    async def close(self, timeout: float | None = None) -> None:
        """Refuse new events, then wait until every required subscriber has read all it was owed."""
        self._closed = True
        try:
            async with asyncio.timeout(timeout):
                async with self._lock:  # a publish in progress finishes first
                    for sub in self._subs:
                        sub._close()
                owed = [s._finished for s in self._subs if s.required]
                if owed:
                    await asyncio.wait(owed)  # unlike gather, a timeout does not cancel these futures
        except TimeoutError:
            behind = {s.name: s.qsize() for s in self._subs if s.required and not s._finished.done()}
            for sub in self._subs:  # end every stream anyway: readers must not wait forever
                sub._close()
            raise BusDrainTimeout(f"bus close: required subscribers still owed events after {timeout} s: {behind}") from None

    def __repr__(self) -> str:
        return f"EventBus(subscribers={[s.name for s in self._subs]}, published={self.published}, closed={self._closed})"
