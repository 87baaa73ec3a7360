"""What the processes count where things happen (all names start with `portal_`).

- `http_requests_total{method, route, status}`, `http_request_duration_seconds{method, route}`:
  `route` is the URL rule (`/activate/api/activations/<token>`), never the path, which may hold
  a token.
- `events_published_total{type}`: counted when the transaction carrying the event commits.
- `events_handled_total{stream, group}`, `events_retried_total{stream, group}` (the handler
  failed, the entry stays pending for another delivery), `events_dead_lettered_total{stream,
  group}`, `event_handling_seconds{stream, group}` (handler and commit).
- `task_outcomes_total{task, outcome}`: what a Celery task reports having done, through
  `count_outcome` (an email "sent", 3 links "expired"…); the task names its outcomes, this
  module knows none of them. `task_retries_total{task}` and `task_failures_total{task}` (raised
  and not retried): counted for every task by `shared.celery_app`'s signals.
- `writes_not_replicated_total`: transactions whose replicas did not confirm them within
  REDIS_REPLICA_TIMEOUT_MS (`shared.replication`): answered 503.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Imported first for its effect: this process's metrics directory is chosen before any figure.
from shared.metrics import exposition  # noqa: F401

HTTP_REQUESTS = Counter("portal_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "portal_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"]
)
EVENTS_PUBLISHED = Counter("portal_events_published_total", "Events committed to their stream", ["type"])
EVENTS_HANDLED = Counter(
    "portal_events_handled_total", "Events handled and acknowledged", ["stream", "group"]
)
EVENTS_RETRIED = Counter(
    "portal_events_retried_total",
    "Deliveries whose handler failed; the entry stays pending for another delivery",
    ["stream", "group"],
)
EVENTS_DEAD_LETTERED = Counter(
    "portal_events_dead_lettered_total", "Entries given up and copied to dead-letters", ["stream", "group"]
)
EVENT_HANDLING = Histogram(
    "portal_event_handling_seconds", "Time to run a handler and commit its effect", ["stream", "group"]
)
TASK_OUTCOMES = Counter(
    "portal_task_outcomes_total", "What Celery tasks reported having done, by outcome", ["task", "outcome"]
)
WRITES_NOT_REPLICATED = Counter(
    "portal_writes_not_replicated_total", "Transactions that too few replicas confirmed in time"
)
TASK_RETRIES = Counter("portal_task_retries_total", "Celery task runs put off for a retry", ["task"])
TASK_FAILURES = Counter(
    "portal_task_failures_total", "Celery task runs that raised and were not retried", ["task"]
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


def count_outcome(task: str, outcome: str, amount: float = 1) -> None:
    """A task reports what it did: `count_outcome(self.name, "sent")` once an email went, or
    `count_outcome(self.name, "expired", 3)` for a sweep that expired three links.

    `outcome` must come from a small fixed set (it is a label): never an id or an address.
    A zero `amount` is not shown, as nothing happened."""
    if amount:
        TASK_OUTCOMES.labels(task, str(outcome)).inc(amount)


def task_retried(task: str) -> None:
    TASK_RETRIES.labels(task).inc()


def task_failed(task: str) -> None:
    TASK_FAILURES.labels(task).inc()


def count_not_replicated() -> None:
    WRITES_NOT_REPLICATED.inc()
