"""identify's dependencies, built once per process for its app, consumer and tasks."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from services.identify.repository import IdentifyUnitOfWork
from shared.bootstrap import Clock, Wiring, base_dependencies
from shared.settings import Settings

SERVICE = "identify"


@dataclass(frozen=True)
class Identify(Wiring):
    def uow(self) -> IdentifyUnitOfWork:
        return IdentifyUnitOfWork(
            self.redis,
            SERVICE,
            stream_maxlen=self.settings.event_stream_maxlen,
            clock=self.clock,
            min_replicas=self.settings.redis_min_replicas,
            replica_timeout_ms=self.settings.redis_replica_timeout_ms,
        )


def bootstrap(
    settings: Settings | None = None, *, client: redis.Redis | None = None, clock: Clock = time.time
) -> Identify:
    settings, client = base_dependencies(settings, client)
    return Identify(settings, client, clock)
