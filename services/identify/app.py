"""`create_app()`: identify's Flask app around its wiring (`bootstrap.py`)."""

from __future__ import annotations

import time

import redis
from flask import Flask

from services.identify import api, pages
from services.identify.bootstrap import SERVICE, Identify, bootstrap
from shared import limits
from shared.bootstrap import Clock, service_app
from shared.settings import Settings


def create_app(
    settings: Settings | None = None,
    *,
    client: redis.Redis | None = None,
    clock: Clock = time.time,
    wiring: Identify | None = None,
) -> Flask:
    wiring = wiring or bootstrap(settings, client=client, clock=clock)
    return service_app(
        SERVICE,
        "identify — étape 1",
        wiring,
        api=[api.blp],
        pages=[pages.bp],
        guards=[guard_step_one(wiring.settings)],
    )


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
