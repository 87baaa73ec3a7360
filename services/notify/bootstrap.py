"""notify's dependencies, built once per process for its app, consumer and tasks: besides the
common ones, how an email is sent (SMTP as the settings say) and how a task is queued (Celery)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import redis
from celery import Celery

from services.notify import mailer
from services.notify.handlers import Enqueue
from services.notify.repository import NotifyUnitOfWork
from shared.bootstrap import Clock, Wiring, base_dependencies
from shared.celery_app import make_celery
from shared.settings import Settings

SERVICE = "notify"


class CeleryQueue:
    """`enqueue` through a Celery app of `settings`, made on first use: of notify's processes
    only the consumer queues tasks."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app

    def __call__(self, task_name: str, task_id: str, kwargs: dict[str, Any]) -> None:
        if self.app is None:
            self.app = make_celery(self.settings)
        self.app.send_task(task_name, kwargs=kwargs, task_id=task_id)


@dataclass(frozen=True)
class Notify(Wiring):
    send: mailer.Send = field(kw_only=True)
    enqueue: Enqueue = field(kw_only=True)

    def uow(self) -> NotifyUnitOfWork:
        return NotifyUnitOfWork(
            self.redis,
            SERVICE,
            stream_maxlen=self.settings.event_stream_maxlen,
            clock=self.clock,
            min_replicas=self.settings.redis_min_replicas,
            replica_timeout_ms=self.settings.redis_replica_timeout_ms,
        )


def bootstrap(
    settings: Settings | None = None,
    *,
    client: redis.Redis | None = None,
    clock: Clock = time.time,
    send: mailer.Send | None = None,
    enqueue: Enqueue | None = None,
) -> Notify:
    settings, client = base_dependencies(settings, client)
    return Notify(
        settings,
        client,
        clock,
        send=send or partial(mailer.send, settings=settings),
        enqueue=enqueue or CeleryQueue(settings),
    )
