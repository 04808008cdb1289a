"""Exchange connectors: one package per venue (config, schemas, parse, rest, replay), plus the registry."""
