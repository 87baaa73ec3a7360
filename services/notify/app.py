"""`create_app()`: notify's Flask app around its wiring (`bootstrap.py`): health, and the local
mail catcher's mailbox as pages and JSON when MAILBOX_ENABLED is on (`make run` without SMTP):
otherwise `/notify/mailbox` and `/notify/api/mailbox` do not exist (404)."""

from __future__ import annotations

import time

import redis
from flask import Flask

from services.notify import api, pages
from services.notify.bootstrap import SERVICE, Notify, bootstrap
from shared import metrics
from shared.bootstrap import Clock, service_app
from shared.settings import Settings


def create_app(
    settings: Settings | None = None,
    *,
    client: redis.Redis | None = None,
    clock: Clock = time.time,
    wiring: Notify | None = None,
) -> Flask:
    wiring = wiring or bootstrap(settings, client=client, clock=clock)
    mailbox = wiring.settings.mailbox_enabled
    app = service_app(
        SERVICE,
        "notify — courriels",
        wiring,
        api=[api.blp] if mailbox else [],
        metrics_queues=metrics.CELERY_QUEUES,
    )
    if mailbox:
        # The mailbox is a tool for `make run`, not a step of the portal: its pages have a layout
        # and a Content-Security-Policy of their own (scripts never run, not even in a message's
        # HTML), hence no `pages=` (which gives the portal's layout, CSRF and headers).
        app.register_blueprint(pages.bp)
    return app
