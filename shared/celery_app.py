"""The one Celery app: Redis broker, explicit queues and routes, the beat schedule.

`celery -A shared.celery_app worker -Q emails,sweeps` and `celery -A shared.celery_app beat`.
Tasks live with the service whose data they touch (`services/*/tasks.py`).
"""

from __future__ import annotations

from functools import cached_property

import redis
from celery import Celery
from kombu import Queue

from shared.settings import Settings
from shared.store import connect

TASK_MODULES = ["services.notify.tasks", "services.activate.tasks", "services.identify.tasks"]


class PortalCelery(Celery):
    """A Celery app that carries the project's settings and a lazily made Redis client."""

    settings: Settings

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.settings)


def make_celery(settings: Settings) -> PortalCelery:
    app = PortalCelery("portal", broker=settings.redis_url, include=TASK_MODULES)
    app.settings = settings
    app.conf.update(
        task_queues=[Queue("emails"), Queue("sweeps")],
        task_default_queue="emails",
        task_routes={
            "notify.*": {"queue": "emails"},
            "activate.*": {"queue": "sweeps"},
            "identify.*": {"queue": "sweeps"},
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
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
        beat_schedule={
            "expire-activation-tokens": {
                "task": "activate.expire_activation_tokens",
                "schedule": float(settings.expiry_sweep_seconds),
            },
            "expire-registrations": {
                "task": "identify.expire_registrations",
                "schedule": float(settings.expiry_sweep_seconds),
            },
        },
        timezone="UTC",
    )
    return app


app = make_celery(Settings.from_env())
