"""A real Celery worker on the `sweeps` queue, for tests of the tasks beat schedules."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun

from shared.celery_app import make_celery
from shared.settings import Settings


class Runs:
    """What the worker's runs of one task returned, in order; `wait(n)` until there are n."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.results: list[Any] = []
        self._finished = threading.Condition()

    def record(self, sender=None, retval=None, **_: Any) -> None:
        if sender is not None and sender.name == self.task:
            with self._finished:
                self.results.append(retval)
                self._finished.notify_all()

    def wait(self, count: int, timeout: float = 30) -> list[Any]:
        with self._finished:
            assert self._finished.wait_for(lambda: len(self.results) >= count, timeout=timeout)
        return self.results


@contextmanager
def sweeps_worker(settings: Settings, module: str, task: str) -> Iterator[tuple[Celery, Runs]]:
    """A solo worker taking the `sweeps` queue with only `module`'s tasks loaded; yields the
    Celery app (to send tasks as beat does) and the runs of `task`."""
    celery = make_celery(settings)
    celery.conf.include = [module]
    runs = Runs(task)
    task_postrun.connect(runs.record, weak=False)
    try:
        with start_worker(
            celery, pool="solo", perform_ping_check=False, queues=["sweeps"], shutdown_timeout=30
        ):
            yield celery, runs
    finally:
        task_postrun.disconnect(runs.record)
