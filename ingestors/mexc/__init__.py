"""MEXC spot: live websocket (protobuf push frames), REST history, and a replay server re-encoding recordings."""
