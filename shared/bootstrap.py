"""What every service's bootstrap shares: its dependencies built once, the app around them.

Each service has a `bootstrap.py` whose `bootstrap()` returns a `Wiring` (settings, Redis
client, clock and whatever else the service needs: a hasher, a SIRENE source…) with a
`uow()` method giving a fresh unit of work. The same object is handed to:

- the Flask app (`service_app`), where views find it with `wiring_of(service)`;
- the event consumer (`event_consumer`, run by `run_consumer`);
- the Celery tasks (`for_celery`, built once per worker process).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
from flask import Blueprint, Flask, current_app

from shared import idempotency, limits, logs, web
from shared.arrivals import Arrivals
from shared.bus import Consumer, Handler, UnitOfWorkFactory
from shared.http_api import add_health_routes, create_service_app
from shared.redis_checks import check_durability
from shared.settings import Settings
from shared.store import connect

Clock = Callable[[], float]
W = TypeVar("W", bound="Wiring")


@dataclass(frozen=True)
class Wiring:
    """A service's dependencies, built once per process by its `bootstrap()`."""

    settings: Settings
    redis: redis.Redis
    clock: Clock = field(default=time.time)


def arrivals(wiring: Wiring, group: str, event_type: str, *more_types: str) -> Arrivals:
    """The records `group`'s consumer makes from `event_type` (or `more_types`), for requests to
    wait on."""
    settings = wiring.settings
    return Arrivals(
        wiring.redis,
        group,
        event_type,
        *more_types,
        timeout=settings.event_wait_seconds,
        max_waiting=settings.event_waits_per_process,
    )


def base_dependencies(settings: Settings | None, client: redis.Redis | None) -> tuple[Settings, redis.Redis]:
    """The settings from the environment and a client for them, unless given (tests)."""
    settings = settings or Settings.from_env()
    return settings, client or connect(settings)


def service_app(
    service: str,
    title: str,
    wiring: Wiring,
    *,
    api: Iterable[Blueprint],
    pages: Iterable[Blueprint] = (),
    guards: Iterable[limits.Guard] = (),
    metrics_queues: Iterable[str] = (),
) -> Flask:
    """A service's Flask app: its JSON API (OpenAPI at `/{service}/openapi.json`, every POST
    honouring `Idempotency-Key`), its pages with the shared layout, health and metrics (with the
    Celery `metrics_queues` its workers take tasks from), rate limits, and `wiring` for its views."""
    app, smorest = create_service_app(
        service, title, wiring.settings, spec_plugins=[idempotency.IdempotencyKeyPlugin(service)]
    )
    app.extensions["portal_wiring"] = wiring
    idempotency.install(app, service, wiring.redis, wiring.settings)
    for blueprint in api:
        smorest.register_blueprint(blueprint)
    pages = list(pages)
    if pages:
        web.install(app, service, wiring.settings)
    for blueprint in pages:
        app.register_blueprint(blueprint)
    add_health_routes(app, service, wiring.redis, queues=tuple(metrics_queues))
    guards = list(guards)
    if guards:
        limits.install(app, service, wiring.settings, wiring.redis, guards)
    check_durability(wiring.redis, service)
    return app


def wiring_of(app: Flask | None = None) -> Any:
    """The wiring of the app handling the current request (typed by each service's helper)."""
    return (app or current_app).extensions["portal_wiring"]


def event_consumer(
    group: str, wiring: Wiring, handlers: Mapping[str, Handler], uow: UnitOfWorkFactory, **options: Any
) -> Consumer:
    """The consumer of `group`: its handlers run in the service's unit of work."""
    settings = wiring.settings
    options = {
        "claim_idle_ms": settings.event_claim_idle_ms,
        "max_deliveries": settings.event_max_deliveries,
        "stream_maxlen": settings.event_stream_maxlen,
        **options,
    }
    return Consumer(wiring.redis, group, handlers, unit_of_work=uow, **options)


def run_consumer(consumer: Consumer) -> None:
    """The body of every `python -m services.<service>.consumer`: run until SIGINT or SIGTERM."""
    logs.configure(f"{consumer.group}-consumer")
    check_durability(consumer.redis, f"{consumer.group}-consumer")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    consumer.run(stop)


def for_celery(app: Any, service: str, bootstrap: Callable[..., W]) -> W:
    """The wiring of `service` in a Celery process, built once from the Celery app's settings and
    Redis client."""
    if service not in app.wirings:
        app.wirings[service] = bootstrap(app.settings, client=app.redis)
    return app.wirings[service]
