"""Redis connections, and waiting for a projection that an event has not filled yet."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis

from shared.settings import Settings

T = TypeVar("T")


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


def wait_for(fetch: Callable[[], T | None], timeout: float) -> T | None:
    """Call `fetch` until it returns something or `timeout` seconds pass.

    Used when a request arrives before the event that prepares its data has been handled:
    the answer waits a little instead of being wrong or half-built.
    """
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        value = fetch()
        if value is not None or time.monotonic() >= deadline:
            return value
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 0.1)


def public_url(url: str) -> str:
    """The Redis URL without its password, fit to be printed."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
