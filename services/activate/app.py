"""`create_app(settings)`: activate's Flask app, with its dependencies passed in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from argon2 import PasswordHasher
from flask import Flask, jsonify

from services.activate import api, pages
from services.activate.domain import TokenGone
from services.activate.passwords import make_hasher
from services.activate.repository import ActivateRepository
from shared import limits, redaction, web
from shared.http_api import add_health_routes, create_service_app
from shared.redis_checks import check_durability
from shared.settings import Settings
from shared.store import connect


@dataclass
class Deps:
    settings: Settings
    repo: ActivateRepository
    clock: Callable[[], float]
    hasher: PasswordHasher


def create_app(
    settings: Settings | None = None,
    *,
    client: redis.Redis | None = None,
    clock: Callable[[], float] = time.time,
    hasher: PasswordHasher | None = None,
) -> Flask:
    settings = settings or Settings.from_env()
    settings.require_secret_key()  # links cannot be sealed without it: fail now, not mid-request
    client = client or connect(settings)
    app, smorest = create_service_app("activate", "activate — étapes 3 et 4", settings)
    app.extensions["activate"] = Deps(
        settings, ActivateRepository(client, settings.event_stream_maxlen), clock, hasher or make_hasher()
    )

    @app.errorhandler(TokenGone)
    def _token_gone(error: TokenGone):
        # Like every error answer, plus what a page needs to offer a new link.
        return jsonify(
            {
                "code": 410,
                "status": "Gone",
                "message": error.message,
                "registration_id": error.registration_id,
                "reason": error.reason,
            }
        ), 410

    smorest.register_blueprint(api.blp)
    web.install(app, "activate", settings)
    app.register_blueprint(pages.bp)
    add_health_routes(app, "activate", client)
    redaction.install(app.logger)
    limits.install(app, "activate", settings, client, guards(settings))
    check_durability(client, "activate")
    return app


def guards(settings: Settings) -> list[limits.Guard]:
    """The resend and the activation link, API and page alike. A link is counted by its token's
    SHA-256: the token itself never reaches Redis."""
    return [
        limits.Guard(
            endpoints=("activate.ActivationEmail", "activate_pages.resend"),
            methods=("POST",),
            rules=(
                limits.per_client("resend-ip", settings.rate_limit_resend_per_ip),
                limits.Rule(
                    "resend-registration",
                    settings.rate_limit_resend_per_registration,
                    limits.path_value("registration_id"),
                ),
            ),
        ),
        limits.Guard(
            endpoints=("activate.Activation", "activate_pages.activation", "activate_pages.activate"),
            methods=("GET", "POST"),
            rules=(
                limits.per_client("activation-ip", settings.rate_limit_activation_per_ip),
                limits.Rule(
                    "activation-token",
                    settings.rate_limit_activation_per_token,
                    limits.path_value("token", hashed=True),
                ),
            ),
        ),
    ]
