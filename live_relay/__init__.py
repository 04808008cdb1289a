"""The wire: protocol messages, the codec, the relay and its notifier."""
