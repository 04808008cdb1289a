"""gateio: REST history client (rest.py) and its HistoryFetcher (history.py)."""
