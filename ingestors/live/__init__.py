"""Live websocket ingestion shared by every exchange: the adapter interface and the connection runner."""
