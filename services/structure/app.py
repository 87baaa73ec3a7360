"""`create_app(settings)`: structure's Flask app, with its dependencies passed in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from flask import Flask

from services.structure import api, pages
from services.structure.captcha import Captchas, random_text
from services.structure.repository import StructureRepository
from services.structure.sirene import CsvSirene, Sirene
from shared import limits, web
from shared.http_api import add_health_routes, create_service_app
from shared.redis_checks import check_durability
from shared.settings import Settings
from shared.store import connect


@dataclass
class Deps:
    settings: Settings
    repo: StructureRepository
    sirene: Sirene
    captchas: Captchas
    clock: Callable[[], float]


def create_app(
    settings: Settings | None = None,
    *,
    client: redis.Redis | None = None,
    sirene: Sirene | None = None,
    clock: Callable[[], float] = time.time,
    captcha_text: Callable[[], str] = random_text,
) -> Flask:
    """`sirene` defaults to the CSV extract in SIRENE_DIR; `captcha_text` draws each challenge's
    characters (tests pass their own to know the answer)."""
    settings = settings or Settings.from_env()
    client = client or connect(settings)
    app, smorest = create_service_app("structure", "structure — étape 2", settings)
    repo = StructureRepository(client, settings.event_stream_maxlen)
    app.extensions["structure"] = Deps(
        settings=settings,
        repo=repo,
        sirene=sirene or CsvSirene(settings.sirene_dir),
        captchas=Captchas(repo, text=captcha_text, clock=clock),
        clock=clock,
    )
    smorest.register_blueprint(api.blp)
    web.install(app, "structure", settings)
    app.register_blueprint(pages.bp)
    add_health_routes(app, "structure", client)
    limits.install(app, "structure", settings, client, [guard_step_two(settings)])
    check_durability(client, "structure")
    return app


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
