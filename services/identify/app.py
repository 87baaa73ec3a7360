"""`create_app(settings)`: identify's Flask app, with its dependencies passed in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from flask import Flask

from services.identify import api, pages
from services.identify.repository import IdentifyRepository
from shared import limits, web
from shared.http_api import add_health_routes, create_service_app
from shared.redis_checks import check_durability
from shared.settings import Settings
from shared.store import connect


@dataclass
class Deps:
    settings: Settings
    repo: IdentifyRepository
    clock: Callable[[], float]


def create_app(
    settings: Settings | None = None,
    *,
    client: redis.Redis | None = None,
    clock: Callable[[], float] = time.time,
) -> Flask:
    settings = settings or Settings.from_env()
    client = client or connect(settings)
    app, smorest = create_service_app("identify", "identify — étape 1", settings)
    app.extensions["identify"] = Deps(
        settings, IdentifyRepository(client, settings.event_stream_maxlen), clock
    )
    smorest.register_blueprint(api.blp)
    web.install(app, "identify", settings)
    app.register_blueprint(pages.bp)
    add_health_routes(app, "identify", client)
    limits.install(app, "identify", settings, client, [guard_step_one(settings)])
    check_durability(client, "identify")
    return app


def guard_step_one(settings: Settings) -> limits.Guard:
    """Step 1, API and page alike: per client address, and per login email (only registrations
    actually started count against an email, so that correcting a typo costs nothing)."""
    return limits.Guard(
        endpoints=("registrations.Registrations", "identify_pages.start"),
        methods=("POST",),
        rules=(
            limits.per_client("registration-ip", settings.rate_limit_registration_per_ip),
            limits.Rule(
                "registration-email",
                settings.rate_limit_registration_per_email,
                limits.email_field("login_email"),
                only_successes=True,
            ),
        ),
    )
