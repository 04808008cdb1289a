"""Small helpers shared by the exchanges' derived REST endpoints."""

from __future__ import annotations

import orjson
from aiohttp import web


class BadRequest(ValueError):
    """A parameter the exchange would reject; the handler turns it into the exchange's error answer."""


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def int_param(request: web.Request, name: str, default: int | None = None) -> int | None:
    """An integer query parameter (absent or empty: default)."""
    value = request.query.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"parameter {name} must be an integer, got {value!r}") from None


def limit_param(request: web.Request, default: int, maximum: int, name: str = "limit") -> int:
    """The page size: default when absent, capped at the exchange's maximum."""
    limit = int_param(request, name, default)
    assert limit is not None
    if limit <= 0:
        raise BadRequest(f"parameter {name} must be positive, got {limit}")
    return min(limit, maximum)
