"""Kraken spot: websocket v1 order books with their CRC32 checksum."""
