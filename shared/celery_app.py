"""The one Celery app: Redis broker, explicit queues and routes, the beat schedule.

`celery -A shared.celery_app worker -Q emails,sweeps` and `celery -A shared.celery_app beat`.
Tasks live with the service whose data they touch (`services/*/tasks.py`); the trim of the event
streams by age, which touches every service's streams, in `shared/retention_tasks.py`.

Its signals, for every task of any app of this process: a task's log lines carry the
`registration_id` of its arguments; retries and failures are counted by task name (what a task
did is counted by the task itself, `shared.metrics.count_outcome`); the worker and beat log like
every other process.
"""

from __future__ import annotations

import logging
import sys
from contextvars import Token
from functools import cached_property
from typing import Any

import redis
from celery import Celery, signals
from kombu import Queue

from shared import logs, metrics
from shared.redis_checks import check_durability
from shared.settings import Settings
from shared.store import broker_url, connect

TASK_MODULES = [
    "services.notify.tasks",
    "services.activate.tasks",
    "services.identify.tasks",
    "services.structure.tasks",
    "shared.retention_tasks",
]


class PortalCelery(Celery):
    """A Celery app that carries the project's settings and a lazily made Redis client."""

    settings: Settings

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.settings)

    @cached_property
    def wirings(self) -> dict[str, Any]:
        """Each service's wiring in this process, built once (`shared.bootstrap.for_celery`)."""
        return {}


def make_celery(settings: Settings) -> PortalCelery:
    app = PortalCelery("portal", broker=broker_url(settings), include=TASK_MODULES)
    app.settings = settings
    app.conf.update(
        task_queues=[Queue(name) for name in metrics.CELERY_QUEUES],
        task_default_queue="emails",
        task_routes={
            "notify.*": {"queue": "emails"},
            "activate.*": {"queue": "sweeps"},
            "identify.*": {"queue": "sweeps"},
            "structure.*": {"queue": "sweeps"},
            "retention.*": {"queue": "sweeps"},
        },
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        # Back-offs stay far below this, so that no delayed task is delivered twice.
        broker_transport_options={
            "visibility_timeout": 3600,
            **({"master_name": settings.redis_master_name} if settings.redis_sentinels else {}),
        },
        worker_hijack_root_logger=False,
        beat_schedule={
            "expire-activation-tokens": {
                "task": "activate.expire_activation_tokens",
                "schedule": float(settings.expiry_sweep_seconds),
            },
            "expire-attachment-requests": {
                "task": "activate.expire_attachment_requests",
                "schedule": float(settings.expiry_sweep_seconds),
            },
            "expire-registrations": {
                "task": "identify.expire_registrations",
                "schedule": float(settings.expiry_sweep_seconds),
            },
            "release-unclaimed-structures": {
                "task": "structure.release_unclaimed_structures",
                "schedule": float(settings.expiry_sweep_seconds),
            },
            "trim-event-streams": {
                "task": "retention.trim_event_streams",
                "schedule": float(settings.expiry_sweep_seconds),
            },
            "verify-structures": {
                "task": "structure.verify_structures",
                "schedule": float(settings.sirene_verify_sweep_seconds),
            },
        },
        timezone="UTC",
    )
    return app


# --- signals ---------------------------------------------------------------------------------------

_bound: dict[str, Token] = {}  # task id → how to restore the context's registration id


@signals.setup_logging.connect(weak=False)
def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    """`celery worker` and `celery beat` log like every other process. An embedded worker (tests)
    finds handlers already on the root logger and leaves them alone."""
    if not logging.getLogger().handlers:
        logs.configure("beat" if "beat" in sys.argv else "notify-worker", level=loglevel or None)


@signals.task_prerun.connect(weak=False)
def _bind_registration(task_id: str = "", kwargs: dict | None = None, **_: Any) -> None:
    registration_id = (kwargs or {}).get("registration_id")
    _bound[task_id] = logs.bind_registration(registration_id if isinstance(registration_id, str) else None)


@signals.task_postrun.connect(weak=False)
def _unbind_registration(task_id: str = "", **_: Any) -> None:
    token = _bound.pop(task_id, None)
    if token is not None:
        logs.unbind(token)


@signals.task_failure.connect(weak=False)
def _count_failure(sender: Any = None, **_: Any) -> None:
    metrics.task_failed(getattr(sender, "name", ""))


@signals.task_retry.connect(weak=False)
def _count_retry(sender: Any = None, **_: Any) -> None:
    metrics.task_retried(getattr(sender, "name", ""))


@signals.worker_ready.connect(weak=False)
@signals.beat_init.connect(weak=False)
def _check_redis(sender: Any = None, **_: Any) -> None:
    check_durability(sender.app.redis, "celery")


app = make_celery(Settings.from_env())
