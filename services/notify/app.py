"""`create_app(settings)`: notify's Flask app (health, the mailbox pages and their JSON)."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import Flask

from services.notify import api, pages
from shared.http_api import add_health_routes, create_service_app
from shared.redis_checks import check_durability
from shared.settings import Settings
from shared.store import connect


@dataclass
class Deps:
    settings: Settings


def create_app(settings: Settings | None = None, *, client: redis.Redis | None = None) -> Flask:
    settings = settings or Settings.from_env()
    client = client or connect(settings)
    app, smorest = create_service_app("notify", "notify — courriels", settings)
    app.extensions["notify"] = Deps(settings)
    smorest.register_blueprint(api.blp)
    app.register_blueprint(pages.bp)
    add_health_routes(app, "notify", client)
    check_durability(client, "notify")
    return app
