"""Generic replay server for cryptofeed recordings (data/cryptofeed/<EXCHANGE>.jsonl.zst).

One server per exchange, speaking that exchange's real websocket and REST wire
formats: recorded frames are sent byte for byte, recorded REST answers are served
by path and query, and candles/trades endpoints are derived from the recorded
trades. The exchange-specific parts (subscribe parsing, which channel/symbol a
recorded frame belongs to, ping/pong, REST formats) live in ingestors/<x>/replay.py
as an ExchangeReplay; this package is the engine (session, ws, faults, server).
"""

from ingestors.replay.server import ReplayServer, build_app, run_replay_server
from ingestors.replay.spec import ClientFrame, ExchangeReplay, FrameTag, Kind

__all__ = ["ClientFrame", "ExchangeReplay", "FrameTag", "Kind", "ReplayServer", "build_app", "run_replay_server"]
