"""`create_app()`: structure's Flask app around its wiring (`bootstrap.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from flask import Flask

from services.structure import api, pages
from services.structure.bootstrap import SERVICE, Structure, bootstrap
from services.structure.captcha import random_text
from services.structure.sirene import Sirene
from shared import limits
from shared.bootstrap import Clock, service_app
from shared.settings import Settings


def create_app(
    settings: Settings | None = None,
    *,
    client: redis.Redis | None = None,
    sirene: Sirene | None = None,
    clock: Clock = time.time,
    captcha_text: Callable[[], str] = random_text,
    wiring: Structure | None = None,
) -> Flask:
    wiring = wiring or bootstrap(
        settings, client=client, clock=clock, sirene=sirene, captcha_text=captcha_text
    )
    return service_app(
        SERVICE,
        "structure — étape 2",
        wiring,
        api=[api.blp],
        pages=pages.bp,
        guards=[guard_step_two(wiring.settings)],
    )


def guard_step_two(settings: Settings) -> limits.Guard:
    """Confirming step 2 (where the bot challenge is answered), API and page alike."""
    return limits.Guard(
        endpoints=("structure.RegistrationForm", "structure_pages.confirm"),
        methods=("POST",),
        rules=(
            limits.per_client("structure-ip", settings.rate_limit_structure_per_ip),
            limits.Rule(
                "structure-registration",
                settings.rate_limit_structure_per_registration,
                limits.path_value("registration_id"),
            ),
        ),
    )
