"""Writes that must outlive the primary: WAIT for replicas before a request is answered.

Redis replicates asynchronously: a write acknowledged by the primary may be lost if it dies before
a replica has it (Sentinel then promotes a replica that lacks it). With REDIS_MIN_REPLICAS ≥ 1,
`fence` waits (WAIT) until that many replicas hold everything written so far, and raises
`NotReplicated` (503 + Retry-After: the client may retry, safely with an Idempotency-Key) when they
do not confirm within REDIS_REPLICA_TIMEOUT_MS.

WAIT counts the writes of the connection it runs on, and a transaction's connection goes back to
the pool at EXEC. So the fence writes a marker of its own (`INCR {service}:replication-fence`) and waits on
that connection: the primary orders every command, so a replica that holds the marker holds
every transaction that committed before it.
"""

from __future__ import annotations

import redis

from shared import metrics
from shared.errors import DomainError
from shared.settings import Settings

RETRY_AFTER_SECONDS = 1


class NotReplicated(DomainError):
    """The primary took the writes, but too few replicas confirmed them in time."""

    status = 503
    default_message = (
        "Le service n'a pas pu confirmer l'enregistrement à temps. Réessayez dans quelques secondes."
    )

    def __init__(self) -> None:
        super().__init__()
        self.headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}


def fence_key(service: str) -> str:
    """The marker each service writes to wait on (under its own prefix)."""
    return f"{service}:replication-fence"


def fence(client: redis.Redis, service: str, min_replicas: int, timeout_ms: int) -> int:
    """Wait until `min_replicas` replicas hold every write committed so far; how many did. A no-op
    (0) when none is asked for."""
    if min_replicas <= 0:
        return 0
    with client.pipeline(transaction=False) as pipe:
        pipe.incr(fence_key(service))
        pipe.execute_command("WAIT", min_replicas, timeout_ms)
        _, acknowledged = pipe.execute()
    if acknowledged < min_replicas:
        metrics.count_not_replicated()
        raise NotReplicated()
    return acknowledged


def fence_for(client: redis.Redis, service: str, settings: Settings) -> int:
    return fence(client, service, settings.redis_min_replicas, settings.redis_replica_timeout_ms)
