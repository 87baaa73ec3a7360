"""Prometheus metrics: counted where things happen, exposed at `/{service}/metrics` and `/metrics`.

- `counters`: what the processes count (HTTP requests, events published, handled, retried and
  dead-lettered, what Celery tasks report);
- `http`: the instrumentation of Flask apps and of the gateway's WSGI app;
- `redis_figures`: streams, consumer groups, Celery queues and dead letters, read from Redis
  at each scrape;
- `exposition`: what one `/metrics` shows, added up over every process of a service.

A service's `/metrics` shows the groups named after it; the gateway's every group, the queues
and the dead letters. This package knows no service: a task names its own outcomes
(`count_outcome`).
"""

from shared.metrics.counters import (
    EVENT_HANDLING,
    EVENTS_DEAD_LETTERED,
    EVENTS_HANDLED,
    EVENTS_PUBLISHED,
    EVENTS_RETRIED,
    HTTP_DURATION,
    HTTP_REQUESTS,
    TASK_FAILURES,
    TASK_OUTCOMES,
    TASK_RETRIES,
    WRITES_NOT_REPLICATED,
    count_not_replicated,
    count_outcome,
    observe_request,
    task_failed,
    task_retried,
)
from shared.metrics.exposition import MULTIPROC_ENV, exposition, registry_for
from shared.metrics.http import UNMATCHED, WsgiMetrics, instrument, route_in
from shared.metrics.redis_figures import (
    CELERY_QUEUES,
    DEAD_LETTERS,
    STREAM_PATTERN,
    RedisCollector,
    queue_lengths,
)

__all__ = [
    "CELERY_QUEUES",
    "DEAD_LETTERS",
    "EVENTS_DEAD_LETTERED",
    "EVENTS_HANDLED",
    "EVENTS_PUBLISHED",
    "EVENTS_RETRIED",
    "EVENT_HANDLING",
    "HTTP_DURATION",
    "HTTP_REQUESTS",
    "MULTIPROC_ENV",
    "STREAM_PATTERN",
    "TASK_FAILURES",
    "TASK_OUTCOMES",
    "TASK_RETRIES",
    "UNMATCHED",
    "WRITES_NOT_REPLICATED",
    "RedisCollector",
    "WsgiMetrics",
    "count_not_replicated",
    "count_outcome",
    "exposition",
    "instrument",
    "observe_request",
    "queue_lengths",
    "registry_for",
    "route_in",
    "task_failed",
    "task_retried",
]
