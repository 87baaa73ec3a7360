"""`create_app(settings)`: identify's Flask app, with its dependencies passed in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from flask import Flask

from services.identify import api, pages
from services.identify.repository import IdentifyRepository
from shared import web
from shared.http_api import add_health_routes, create_service_app
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
    return app
