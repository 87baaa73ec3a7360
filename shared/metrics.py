"""Prometheus metrics: counted where things happen, exposed at `/{service}/metrics` and `/metrics`.

Counted by the process that does the work (all names start with `portal_`):
- `http_requests_total{method, route, status}`, `http_request_duration_seconds{method, route}`:
  `route` is the URL rule (`/activate/api/activations/<token>`), never the path, which may hold
  a token; the gateway labels what it forwards by service (`/activate/*`).
- `events_published_total{type}`: counted when the transaction carrying the event commits.
- `events_handled_total{stream, group}`, `events_retried_total{stream, group}` (the handler
  failed, the entry stays pending for another delivery), `events_dead_lettered_total{stream,
  group}`, `event_handling_seconds{stream, group}` (handler and commit).
- `emails_sent_total{task}`, `emails_failed_total{task, reason}`, `email_retries_total{task}`:
  from the Celery signals of `notify.*` tasks; `activation_tokens_expired_total` and
  `registrations_expired_total`: the counts the sweep tasks return.

Read from Redis at each scrape: `event_stream_length{stream}`, `event_group_lag{stream, group}`
(entries not delivered yet), `event_group_pending{stream, group}` (delivered, not acknowledged),
`event_group_consumers{stream, group}`, `celery_queue_length{queue}`, `dead_letters` and
`redis_up`. A service reports the groups named after it; the gateway every group, the queues
and the dead letters.

Several processes, one figure: gunicorn runs several workers and the consumers and Celery
workers are processes of their own. With `PROMETHEUS_MULTIPROC_DIR` set (one directory per
service: its web workers, its consumers and, for notify, the Celery workers), each process
writes its counters to its own files there and `/metrics` adds them up (prometheus_client's
multiprocess mode). The files are named after host and pid, so containers of one service may
share the directory. Without the variable each process counts in memory (tests, one process).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import redis
from flask import Flask, Response, g, request
from kombu.transport.redis import PRIORITY_STEPS, Channel
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.wsgi import ClosingIterator

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CELERY_QUEUES = ("emails", "sweeps")  # shared.celery_app's queues
DEAD_LETTERS = "dead-letters"  # the stream of entries the bus gave up on (shared.bus)
STREAM_PATTERN = "events:*"
UNMATCHED = "<unmatched>"
# What notify's email task returns (services/notify/handlers.py): sent, or given up for good.
EMAIL_SENT = "sent"
EMAIL_GIVEN_UP = ("refused", "dropped")
EXPIRY_TASKS = {
    "activate.expire_activation_tokens": "activation_tokens_expired",
    "identify.expire_registrations": "registrations_expired",
}


def _process_identifier() -> str:
    """Host and pid: distinct across the containers that share a service's directory.
    (No `_` in it: prometheus_client splits its file names on `_`.)"""
    return f"{_HOST}-{os.getpid()}"


_HOST = socket.gethostname().replace("_", "-").replace(os.sep, "-")
MULTIPROCESS_DIR = os.environ.get(MULTIPROC_ENV) or None
"""Read once, at import: how values are stored and how `/metrics` reads them must agree."""
# Before any metric exists: every value of this process lives in files named after it, or in
# memory (also when the variable is set but empty, which prometheus_client alone would take as
# files in the current directory).
values.ValueClass = values.MultiProcessValue(_process_identifier) if MULTIPROCESS_DIR else values.MutexValue


# --- counted where things happen ----------------------------------------------------------------

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
EMAILS_SENT = Counter("portal_emails_sent_total", "Emails handed to the SMTP server", ["task"])
EMAILS_FAILED = Counter(
    "portal_emails_failed_total",
    "Emails given up: refused by SMTP, undeliverable event, or retries exhausted",
    ["task", "reason"],
)
EMAIL_RETRIES = Counter("portal_email_retries_total", "Email sendings put off for a retry", ["task"])
EXPIRED = {
    "activation_tokens_expired": Counter(
        "portal_activation_tokens_expired_total", "Activation links expired by the sweep"
    ),
    "registrations_expired": Counter(
        "portal_registrations_expired_total", "Abandoned registrations expired by the sweep"
    ),
}


def task_succeeded(task: str, result: Any) -> None:
    if task.startswith("notify."):
        if result == EMAIL_SENT:
            EMAILS_SENT.labels(task).inc()
        elif result in EMAIL_GIVEN_UP:
            EMAILS_FAILED.labels(task, str(result)).inc()
    elif task in EXPIRY_TASKS and isinstance(result, int) and result > 0:
        EXPIRED[EXPIRY_TASKS[task]].inc(result)


def task_failed(task: str) -> None:
    if task.startswith("notify."):
        EMAILS_FAILED.labels(task, "error").inc()


def task_retried(task: str) -> None:
    if task.startswith("notify."):
        EMAIL_RETRIES.labels(task).inc()


# --- HTTP -------------------------------------------------------------------------------------------


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


class WsgiMetrics:
    """Count and time every request that goes through a WSGI app, with `route_of(environ)` as its
    route label (for the gateway, whose forwarded requests never reach a Flask rule)."""

    def __init__(self, app: Callable, route_of: Callable[[dict], str]) -> None:
        self.app = app
        self.route_of = route_of

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "GET")
        route = self.route_of(environ)
        status = ["500"]

        def recording_start_response(status_line: str, headers, exc_info=None):
            status[0] = status_line.split(" ", 1)[0]
            return start_response(status_line, headers, exc_info)

        def done() -> None:
            observe_request(method, route, int(status[0]), time.perf_counter() - started)

        try:
            answer = self.app(environ, recording_start_response)
        except BaseException:
            done()
            raise
        return ClosingIterator(answer, [done])


def route_in(url_map: Map, environ: dict) -> str:
    """The rule of `url_map` that the request matches, or `<unmatched>`."""
    try:
        rule, _ = url_map.bind_to_environ(environ).match(return_rule=True)
    except HTTPException:
        return UNMATCHED
    return rule.rule


# --- read from Redis at each scrape -------------------------------------------------------------


class RedisCollector:
    """Stream, consumer-group and queue figures, read when Prometheus scrapes.

    `group`: only that consumer group's figures (a service's own); None for every group.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        group: str | None = None,
        queues: Sequence[str] = (),
        dead_letters: bool = False,
    ) -> None:
        self.redis = client
        self.group = group
        self.queues = tuple(queues)
        self.dead_letters = dead_letters

    def describe(self) -> list[Metric]:
        return []  # nothing read from Redis when the collector is registered

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("portal_redis_up", "1 when Redis answered this scrape")
        try:
            families = list(self._read())
        except (redis.ConnectionError, redis.TimeoutError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> Iterator[Metric]:
        length = GaugeMetricFamily(
            "portal_event_stream_length", "Entries in an event stream", labels=["stream"]
        )
        lag = GaugeMetricFamily(
            "portal_event_group_lag",
            "Entries a consumer group has not been given yet",
            labels=["stream", "group"],
        )
        pending = GaugeMetricFamily(
            "portal_event_group_pending",
            "Entries given to a consumer group and not acknowledged yet",
            labels=["stream", "group"],
        )
        consumers = GaugeMetricFamily(
            "portal_event_group_consumers", "Consumers known to a group", labels=["stream", "group"]
        )
        streams = sorted(
            str(s) for s in self.redis.scan_iter(match=STREAM_PATTERN, _type="stream", count=1000)
        )
        with self.redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xlen(stream)
                pipe.xinfo_groups(stream)
            replies = pipe.execute(raise_on_error=False)
        for index, stream in enumerate(streams):
            size, groups = replies[2 * index], replies[2 * index + 1]
            if isinstance(size, Exception) or isinstance(groups, Exception):
                continue  # deleted between the scan and the read
            mine = [g for g in groups if self.group is None or g["name"] == self.group]
            if self.group is not None and not mine:
                continue
            length.add_metric([stream], size)
            for info in mine:
                labels = [stream, str(info["name"])]
                pending.add_metric(labels, int(info["pending"]))
                consumers.add_metric(labels, int(info["consumers"]))
                if info.get("lag") is not None:  # Redis 7; unknown after some deletions
                    lag.add_metric(labels, int(info["lag"]))
        yield from (length, lag, pending, consumers)
        if self.queues:
            yield self._queues()
        if self.dead_letters:
            dead = GaugeMetricFamily("portal_dead_letters", "Entries in the dead-letters stream")
            dead.add_metric([], self.redis.xlen(DEAD_LETTERS))
            yield dead

    def _queues(self) -> Metric:
        family = GaugeMetricFamily(
            "portal_celery_queue_length", "Tasks waiting in a Celery queue", labels=["queue"]
        )
        for queue, length in queue_lengths(self.redis, self.queues).items():
            family.add_metric([queue], length)
        return family


def queue_lengths(client: redis.Redis, queues: Sequence[str]) -> dict[str, int]:
    """Messages waiting in each kombu queue (one Redis list per priority step), in one round trip."""
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            for priority in PRIORITY_STEPS:
                pipe.llen(f"{queue}{Channel.sep}{priority}" if priority else queue)
        lengths = pipe.execute()
    steps = len(PRIORITY_STEPS)
    return {queue: sum(lengths[i * steps : (i + 1) * steps]) for i, queue in enumerate(queues)}


class _ThisProcess:
    """The default registry's metrics, when this process is the only one counting."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()


def registry_for(
    client: redis.Redis, *, group: str | None = None, queues: Sequence[str] = (), dead_letters: bool = False
) -> CollectorRegistry:
    """What one `/metrics` shows: every process of the service (or this one), then Redis."""
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS_DIR:
        MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
    else:
        registry.register(_ThisProcess())
    registry.register(RedisCollector(client, group=group, queues=queues, dead_letters=dead_letters))
    return registry


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The scrape's body and content type (Prometheus text, or OpenMetrics when asked)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def instrument(app: Flask) -> None:
    """Count and time each request of a Flask app, labelled with the rule it matched."""

    @app.before_request
    def _start_clock() -> None:
        g.portal_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("portal_started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
            observe_request(request.method, route, response.status_code, time.perf_counter() - started)
        return response
