"""Redis connections: to the server REDIS_URL names, or to the primary that Sentinel names.

With REDIS_SENTINELS set, every process asks the Sentinels which server is the primary of
REDIS_MASTER_NAME (redis-py's `Sentinel.master_for`), and asks again whenever a connection to it
fails or finds a replica (`READONLY`): after a failover each process follows by itself, and
meanwhile its calls fail as when Redis is down (503 + Retry-After). REDIS_URL then only lends the
database number and the password. Celery's broker goes the same way through kombu's Sentinel
transport (`broker_url`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import redis
from redis.sentinel import Sentinel

from shared.settings import Settings

CLIENT_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "socket_timeout": 10,
    "socket_connect_timeout": 2,
    "health_check_interval": 15,
    "retry_on_timeout": True,
}
SENTINEL_OPTIONS: dict[str, Any] = {"socket_timeout": 1, "socket_connect_timeout": 1}


def connect(settings: Settings) -> redis.Redis:
    """A client for the primary; connects on first use, not here."""
    if not settings.redis_sentinels:
        return redis.Redis.from_url(settings.redis_url, **CLIENT_OPTIONS)
    url = urlsplit(settings.redis_url)
    sentinel = Sentinel(list(settings.redis_sentinels), sentinel_kwargs=SENTINEL_OPTIONS)
    return sentinel.master_for(
        settings.redis_master_name,
        db=_database(settings.redis_url),
        username=url.username,
        password=url.password,
        **CLIENT_OPTIONS,
    )


def broker_url(settings: Settings) -> str:
    """Celery's broker: REDIS_URL, or each Sentinel as kombu's Sentinel transport writes them
    (`sentinel://:password@host:port/db;sentinel://…`, with `master_name` in the transport options)."""
    if not settings.redis_sentinels:
        return settings.redis_url
    url = urlsplit(settings.redis_url)
    auth = f":{quote(url.password, safe='')}@" if url.password else ""
    db = _database(settings.redis_url)
    return ";".join(f"sentinel://{auth}{host}:{port}/{db}" for host, port in settings.redis_sentinels)


def describe(settings: Settings) -> str:
    """Where the data is, fit to be printed (no password)."""
    if not settings.redis_sentinels:
        return public_url(settings.redis_url)
    sentinels = ",".join(f"{host}:{port}" for host, port in settings.redis_sentinels)
    return f"le primaire « {settings.redis_master_name} » des Sentinels {sentinels}"


def _database(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def public_url(url: str) -> str:
    """The Redis URL without its password, fit to be printed."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
