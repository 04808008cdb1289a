"""OKX v5: public websocket order books (seqId/prevSeqId chain, CRC32 checksum where provided)."""
