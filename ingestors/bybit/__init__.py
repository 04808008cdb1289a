"""Bybit v5: public websocket orderbook.N books (snapshot/delta, update id u, u = 1 restarts)."""
