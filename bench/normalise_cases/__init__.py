"""The in-stream-snapshot exchanges of bench.normalise: OKX (v5), Kraken (websocket v1), Bybit (v5), Coinbase
(Advanced Trade), each read from its cryptofeed recording (/work/shared/data/cryptofeed/<EXCHANGE>.jsonl.zst).

A case holds the recorded frames (connection, text) in file order: the trade frames, and the book frames of every
book from its first snapshot on; the same frames decoded (the snapshots apart from the diffs); and each
implementation set up to read them:

- ours: the live adapter (`ingestors/<x>/live.py`, `on_frame(text, recv_ns)`), one per recorded connection; the
  decoded rows feed the exchange's book class (`ingestors/<x>/book.py`) directly;
- cryptofeed 2.4.1: the exchange's feed, `message_handler(text, conn, timestamp)` (its own JSON decoding), callbacks
  async no-ops, its symbol table set from the recorded instruments answer; decoded rows call its `_book`;
- ccxt.pro: `json.loads` + `handle_message(client, msg)` (one never-connected client per recorded URL), markets
  loaded from the recorded REST answers; decoded rows call its `handle_order_book`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.normalise_cases.base import StreamCase
from bench.normalise_cases.bybit import BybitCase
from bench.normalise_cases.coinbase import CoinbaseCase
from bench.normalise_cases.kraken import KrakenCase
from bench.normalise_cases.okx import OkxCase

__all__ = ["CASES", "BybitCase", "CoinbaseCase", "KrakenCase", "OkxCase", "StreamCase"]

CASES: list[Callable[[Path], StreamCase]] = [OkxCase, KrakenCase, BybitCase, CoinbaseCase]
