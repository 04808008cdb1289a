"""Binance spot: venue facts (config), wire shapes (schemas), pure parsers (parse), the REST client (rest),
and the replay server (replay, replay_ws, sim_faults) serving recordings (recording) and deterministic
synthesis (synthetic) through one timeline per symbol (history)."""
