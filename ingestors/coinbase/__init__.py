"""Coinbase Advanced Trade: level2 (l2_data) books kept by the connection's sequence_num and heartbeats."""
