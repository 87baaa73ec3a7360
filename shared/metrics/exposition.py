"""What one `/metrics` shows, and where the processes of a service leave their figures.

Several processes, one figure: gunicorn runs several workers, and the consumers and Celery
workers are processes of their own. prometheus-client's multiprocess mode adds them up: with
`PROMETHEUS_MULTIPROC_DIR` set before the process starts (one directory per service: its web
workers, its consumers and, for notify, the Celery workers), each process writes its counters to
files of its own, named after its pid, and `/metrics` reads every file. Without the variable each
process counts in memory and shows its own figures (tests, one process).

Containers of one service share the directory (docker-compose.yml), and pids repeat from one
container to the next: so each host writes under a sub-directory of its own,
`<PROMETHEUS_MULTIPROC_DIR>/host-<hostname>/` (the variable is pointed there when this module is
imported, before any figure exists, so that prometheus-client opens its files there), and
`/metrics` adds up the files of every host's sub-directory.
"""

from __future__ import annotations

import glob
import os
import socket
from collections.abc import Iterable, Sequence

import redis
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from shared.metrics.redis_figures import RedisCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
HOST_PREFIX = "host-"


def _host_directory_name() -> str:
    return HOST_PREFIX + socket.gethostname().replace(os.sep, "-")


def _directories(configured: str | None) -> tuple[str | None, str | None]:
    """(the service's directory, this host's sub-directory), or (None, None) in memory.

    A process started by one that imported this module (a Celery pool child started afresh)
    finds the variable already pointing at its host's sub-directory."""
    if not configured:
        return None, None
    configured = os.path.normpath(configured)
    if os.path.basename(configured) == _host_directory_name():
        return os.path.dirname(configured), configured
    return configured, os.path.join(configured, _host_directory_name())


SERVICE_DIRECTORY, HOST_DIRECTORY = _directories(os.environ.get(MULTIPROC_ENV))
"""Read once, at import: where this process writes and where `/metrics` reads must agree."""
if HOST_DIRECTORY is not None:
    os.makedirs(HOST_DIRECTORY, exist_ok=True)
    os.environ[MULTIPROC_ENV] = HOST_DIRECTORY


class EveryProcess:
    """The figures of every process of the service, from the files of every host."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        files = glob.glob(os.path.join(glob.escape(self.directory), f"{HOST_PREFIX}*", "*.db"))
        return MultiProcessCollector.merge(files, accumulate=True)


class ThisProcess:
    """The default registry's metrics, when this process is the only one counting."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def registry_for(
    client: redis.Redis, *, group: str | None = None, queues: Sequence[str] = (), dead_letters: bool = False
) -> CollectorRegistry:
    """What one `/metrics` shows: every process of the service (or this one), then Redis.

    `group`: only that consumer group's figures (a service's own); None for every group."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EveryProcess(SERVICE_DIRECTORY) if SERVICE_DIRECTORY else ThisProcess())
    registry.register(RedisCollector(client, group=group, queues=queues, dead_letters=dead_letters))
    return registry


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The scrape's body and content type (Prometheus text, or OpenMetrics when asked)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
