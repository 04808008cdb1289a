"""Gap events: a book (or stream) missed data; where, when and how we found out.

A live adapter emits one GapEvent each time it detects that updates were lost
(a sequence jump, a checksum mismatch, a reconnect) before it resyncs the one
symbol affected. They are kept for the later repair and for the market.gaps table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from live_relay.messages import StreamGap

__all__ = ["GapEvent", "GapHow", "stream_gap"]


class GapHow(StrEnum):
    """How a gap was detected."""

    SEQUENCE_JUMP = "sequence_jump"  # an update's first id is past the book's last id + 1
    CHECKSUM_MISMATCH = "checksum_mismatch"  # the exchange's checksum disagrees with our book
    RECONNECT = "reconnect"  # the connection dropped while the book was live
    UNREADABLE = "unreadable"  # a book message of a live book could not be read: what it changed is lost


@dataclass(frozen=True, slots=True)
class GapEvent:
    """One detected gap of one ticker's stream.

    last_seen is the last exchange update id the book had applied; first_missing
    the first id it never saw (last_seen + 1 where ids are consecutive);
    next_received the first id of the update that revealed the gap. Exchanges
    without update ids (Kraken v1 books) leave them None and say why in detail.
    """

    exchange: str
    ticker: str
    detected_at_ns: int  # local receive time of the frame that revealed the gap, ns since epoch UTC
    how: GapHow
    last_seen: int | None = None
    first_missing: int | None = None
    next_received: int | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (how as its string value)."""
        d = asdict(self)
        d["how"] = self.how.value
        return d


def stream_gap(gap: GapEvent) -> StreamGap:
    """The protocol message of a gap event (-1 for ids the exchange does not have)."""
    def known(x: int | None) -> int:
        return -1 if x is None else x

    return StreamGap(exchange=gap.exchange, ticker=gap.ticker, detected_at_ns=gap.detected_at_ns, how=gap.how.value,
                     last_seen=known(gap.last_seen), first_missing=known(gap.first_missing),
                     next_received=known(gap.next_received), detail=gap.detail)  # fmt: skip
