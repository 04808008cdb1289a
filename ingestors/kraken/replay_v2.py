"""Kraken websocket v2 served at /v2 by the Kraken replay server, transcoded on the fly from the v1 recording.

The recording (data/cryptofeed/KRAKEN.jsonl.zst) is websocket v1 at / ; what ccxt.pro and
Kraken's current docs speak is v2 at wss://ws.kraken.com/v2. Here /v2 replays the same
recorded frames (same engine, same faults, same deterministic/paced clock: ingestors/replay/ws.py)
through a per-connection codec (ingestors.kraken.v2.V1ToV2):

- client: {"method":"subscribe","params":{"channel":"book"|"trade","symbol":[...],"depth":N}} ->
  the v1 keys ("book"|"trade", v1 pair; BTC/DOGE are XBT/XDG in v1), answered per symbol with
  {"method":"subscribe","result":{...},"success":true,...}; unsubscribe likewise;
  {"method":"ping"} -> {"method":"pong"}; other channels, unknown symbols, bad depths -> success false;
- server: the recorded systemStatus -> {"channel":"status",...}; heartbeats -> {"channel":"heartbeat"};
  book-1000 snapshots/diffs -> v2 book snapshot/updates of the subscribed depth with v2 checksums
  (pair precision from the recorded AssetPairs answer); trades -> v2 trade updates (trade_id: the
  trade's 1-based position among the pair's recorded trades). Recorded v1 acks are not sent: the
  codec answers the subscribe itself.

Every Kraken replay server (ingestors/kraken/replay.py REPLAY, `extend_app`) serves / (v1, as recorded),
/v2 and the recorded REST.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from ingestors.kraken.config import BOOK_DEPTHS, DEFAULT_BOOK_DEPTH
from ingestors.kraken.v2 import PairPrecision, V1ToV2, precisions_from_asset_pairs, v1_pair
from ingestors.replay.server import REPLAY as WS_REPLAY
from ingestors.replay.session import Frame
from ingestors.replay.spec import ClientFrame, Key, Kind

__all__ = ["V2_PATH", "KrakenV2Codec", "add_v2"]

V2_PATH = "/v2"
RECORDED_PATH = "/"  # the recorded v1 connections (wss://ws.kraken.com)
CHANNELS = ("book", "trade")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dump(obj: object) -> str:
    return orjson.dumps(obj).decode()


class KrakenV2Codec:
    """One /v2 connection: v2 client frames -> v1 keys and v2 answers; recorded v1 frames -> v2 pushes."""

    def __init__(self, precisions: Mapping[str, PairPrecision], known: frozenset[Key]) -> None:
        self.v2 = V1ToV2(precisions)
        self.known = known  # the recorded (channel, v1 pair) keys

    def _answer(self, method: str, req_id: Any, **fields: Any) -> str:
        extra = {"req_id": req_id} if req_id is not None else {}
        return _dump({"method": method, **fields, "time_in": _now(), "time_out": _now(), **extra})

    def client_frame(self, text: str) -> ClientFrame:
        try:
            msg = orjson.loads(text)
            method = str(msg["method"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return ClientFrame(replies=(_dump({"error": "Malformed request", "success": False, "time_in": _now(),
                                               "time_out": _now()}),))
        req_id = msg.get("req_id")
        if method == "ping":
            return ClientFrame(replies=(self._answer("pong", req_id),))
        if method not in ("subscribe", "unsubscribe"):
            return ClientFrame(replies=(self._answer(method, req_id, error=f"Method {method} not supported by the replay",
                                                     success=False),))
        params = msg.get("params") or {}
        channel, symbols = str(params.get("channel", "")), params.get("symbol") or []
        depth = params.get("depth", DEFAULT_BOOK_DEPTH)
        if channel not in CHANNELS:
            return ClientFrame(replies=(self._answer(method, req_id, error=f"Channel {channel!r} not supported by the replay",
                                                     success=False),))
        if channel == "book" and depth not in BOOK_DEPTHS:
            return ClientFrame(replies=(self._answer(method, req_id, error="Invalid depth", success=False),))
        keys: list[Key] = []
        replies = []
        for symbol in map(str, symbols):
            key = (channel, v1_pair(symbol))
            if key not in self.known:
                replies.append(self._answer(method, req_id, error="Currency pair not supported", success=False,
                                            symbol=symbol))
                continue
            keys.append(key)
            result: dict[str, Any] = {"channel": channel, "symbol": symbol}
            if channel == "book":
                result["depth"] = depth
                if method == "subscribe":
                    self.v2.set_depth(symbol, depth)
            if method == "subscribe":
                result["snapshot"] = True
            replies.append(self._answer(method, req_id, result=result, success=True))
        if method == "subscribe":
            return ClientFrame(subscribe=tuple(keys), replies=tuple(replies))
        return ClientFrame(unsubscribe=tuple(keys), replies=tuple(replies))

    def outgoing(self, frame: Frame) -> list[str]:
        if frame.tag.kind is Kind.GREETING:
            status = orjson.loads(frame.text)
            return [_dump({"channel": "status", "type": "update",
                           "data": [{"version": "2.0.0", "system": status.get("status", "online"), "api_version": "v2",
                                     "connection_id": status.get("connectionID", 0)}]})]
        if frame.tag.kind is Kind.ACK:
            return []  # v1 subscriptionStatus: the subscribe was answered in v2 already
        return self.v2.frame(frame.text)


def add_v2(app: web.Application, path: str = V2_PATH) -> None:
    """Serve Kraken v2 at `path` of a Kraken replay app (ingestors.replay.server.build_app(REPLAY, ...))."""
    replay = app[WS_REPLAY]
    stream = replay.session.streams[RECORDED_PATH]
    precisions: dict[str, PairPrecision] = {}
    for ans in replay.session.http:
        if ans.path == "/0/public/AssetPairs":
            precisions.update(precisions_from_asset_pairs(ans.body))
    known = frozenset(stream.key_conn)
    app.router.add_get(path, replay.handler(stream, lambda: KrakenV2Codec(precisions, known)))
