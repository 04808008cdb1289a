"""Book views on the recorded Binance session: imbalance, heatmap and the consolidated book, checked against
a book kept here from the same BookUpdates and against their definitions."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from ingestors.binance.live import BinanceLive
from ingestors.binance.recording import load_recordings
from ingestors.book import OrderBook
from live_relay.book_views import HEATMAP_LEVELS, IMBALANCE_DEPTH, BookViews, nice_bucket
from live_relay.messages import BookImbalance, BookLevel, BookUpdate, Heatmap

BTC = "BINANCE:BTC/USDT"


def recorded_updates(data_dir: Path) -> list[BookUpdate]:
    """The live adapter's BookUpdates for the BTCUSDT recording, snapshots served as the exchange would."""
    rec = load_recordings(data_dir)["BTCUSDT"]
    adapter = BinanceLive([BTC], "ws://unused/ws", "http://unused")
    out = []
    for position, frame in enumerate(rec.frames, 1):
        if frame.stream.endswith("@aggTrade"):
            continue  # derived by the replay server; the live adapter subscribes to trade, depth and bookTicker
        out += [e for e in adapter.on_frame(frame.text, frame.recv_ns) if isinstance(e, BookUpdate)]
        for request in adapter.snapshot_requests():
            out += [e for e in adapter.on_snapshot(request, rec.depth_at(position, 5000), frame.recv_ns)
                    if isinstance(e, BookUpdate)]  # fmt: skip
    return out


def test_imbalance_and_heatmap_match_their_definitions_on_the_recorded_book(data_dir: Path) -> None:
    views, mine = BookViews(), OrderBook(BTC)
    imbalances = heatmaps = 0
    for u in recorded_updates(data_dir):
        levels = ([(x.price, x.size) for x in u.bids], [(x.price, x.size) for x in u.asks])
        mine.apply_snapshot(*levels) if u.snapshot else mine.apply_delta(*levels)
        for topic, msg in views.on_update(u):
            if isinstance(msg, BookImbalance):
                imbalances += 1
                bids, asks = mine.top(IMBALANCE_DEPTH)
                b, a = sum(Decimal(x.size) for x in bids), sum(Decimal(x.size) for x in asks)
                assert topic == f"{BTC}|imbalance" and Decimal(msg.bid_volume) == b and Decimal(msg.ask_volume) == a
                assert abs(msg.imbalance - float((b - a) / (b + a))) < 1e-12 and -1 <= msg.imbalance <= 1
            elif isinstance(msg, Heatmap):
                heatmaps += 1
                size = Decimal(msg.bucket_size)
                bids, asks = mine.top(HEATMAP_LEVELS)
                assert sum(Decimal(x.bid_size) for x in msg.buckets) == sum(Decimal(x.size) for x in bids)
                assert sum(Decimal(x.ask_size) for x in msg.buckets) == sum(Decimal(x.size) for x in asks)
                assert all(Decimal(x.price) % size == 0 and 0 <= x.intensity <= 1 for x in msg.buckets)
                assert max(x.intensity for x in msg.buckets) == 1.0
    assert imbalances > 100 and heatmaps > 100
    print(f"{imbalances} imbalance and {heatmaps} heatmap frames checked")


def test_consolidated_book_sums_the_venues_levels_per_price() -> None:
    views = BookViews()
    views.on_update(BookUpdate(ticker="BINANCE:BTC/USDT", snapshot=True, receive_time_ns=1,
                               bids=(BookLevel("100.0", "1"), BookLevel("99", "2")), asks=(BookLevel("101", "1"),)))
    out = views.on_update(BookUpdate(ticker="OKX:BTC/USDT", snapshot=True, receive_time_ns=2_000_000_000,
                                     bids=(BookLevel("100", "0.5"),), asks=(BookLevel("100.5", "3"), BookLevel("101", "1"))))
    [book] = [m for t, m in out if t == "BTC/USDT|book"]
    assert isinstance(book, BookUpdate) and book.snapshot and book.ticker == "BTC/USDT"
    assert [(x.price, x.size) for x in book.bids] == [("100", "1.5"), ("99", "2")]
    assert [(x.price, x.size) for x in book.asks] == [("100.5", "3"), ("101", "2")]


def test_bucket_size_is_about_five_hundredths_of_a_percent_rounded_down_to_1_2_5() -> None:
    # 0.05% of 61830 is 30.9 -> 20; of 2683.8, 1.34 -> 1; of 0.3512, 0.000176 -> 0.0001; of 9000, 4.5 -> 2
    assert [nice_bucket(Decimal(p)) for p in ("61830", "2683.8", "0.3512", "9000")] == [
        Decimal("20"), Decimal("1"), Decimal("0.0001"), Decimal("2")]
