"""`python -m services.notify.consumer`: turns the events that ask for an email into email tasks."""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery

from services.notify.handlers import make_handlers
from shared.bus import Handler
from shared.celery_app import make_celery
from shared.consumer_main import run_consumer
from shared.settings import Settings


def celery_enqueue(app: Celery):
    def enqueue(task_name: str, task_id: str, kwargs: dict[str, Any]) -> None:
        app.send_task(task_name, kwargs=kwargs, task_id=task_id)

    return enqueue


def build_handlers(
    settings: Settings, client: redis.Redis, celery_app: Celery | None = None
) -> dict[str, Handler]:
    return make_handlers(celery_enqueue(celery_app or make_celery(settings)))


if __name__ == "__main__":
    run_consumer("notify", build_handlers)
