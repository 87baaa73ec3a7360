"""At start, say whether the Redis in use could lose what the system keeps in it.

Accounts, tokens, event streams and the Celery queues all live in Redis: a server that evicts
keys under memory pressure (`maxmemory-policy` other than `noeviction`) can silently drop any
of them, and one without AOF (`appendonly no`) loses the last writes when it restarts. This is
best-effort: a managed Redis often refuses CONFIG, and then the log says it could not check.
"""

from __future__ import annotations

import logging

import redis

log = logging.getLogger(__name__)

SAFE_POLICY = "noeviction"


def check_durability(client: redis.Redis, process: str) -> list[str]:
    """Log a warning for each risky setting; return the warnings (for tests). Never raises."""
    try:
        policy = _config(client, "maxmemory-policy")
        appendonly = _config(client, "appendonly")
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        log.warning(
            "%s: Redis unreachable at start, its eviction and AOF settings are unchecked (%s)", process, exc
        )
        return []
    except redis.RedisError as exc:  # CONFIG disabled, renamed or not allowed to this user
        log.warning(
            "%s: could not check Redis's eviction and AOF settings (CONFIG refused: %s); make sure "
            "the server runs with maxmemory-policy noeviction and appendonly yes",
            process,
            exc,
        )
        return []
    except Exception as exc:  # a start-up diagnostic must never stop the start
        log.warning("%s: could not check Redis's eviction and AOF settings (%r)", process, exc)
        return []
    warnings = []
    if policy is None:
        log.info("%s: Redis does not report its maxmemory-policy; eviction unchecked", process)
    elif policy != SAFE_POLICY:
        warnings.append(
            f"{process}: Redis maxmemory-policy is {policy!r}: under memory pressure it may evict keys "
            f"(accounts, tokens, events, queued emails). Set maxmemory-policy {SAFE_POLICY}."
        )
    if appendonly is not None and appendonly != "yes":
        warnings.append(
            f"{process}: Redis runs without AOF (appendonly {appendonly}): a restart loses the latest "
            "writes. Set appendonly yes for durability."
        )
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def _config(client: redis.Redis, name: str) -> str | None:
    reply = client.config_get(name)
    value = reply.get(name, reply.get(name.encode()))
    if isinstance(value, bytes):
        value = value.decode()
    return value.lower() if isinstance(value, str) else None
