"""Redis connections."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis

from shared.settings import Settings


def connect(settings: Settings) -> redis.Redis:
    """A client for `settings.redis_url`; connects on first use, not here."""
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=2,
        health_check_interval=15,
        retry_on_timeout=True,
    )


def public_url(url: str) -> str:
    """The Redis URL without its password, fit to be printed."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
