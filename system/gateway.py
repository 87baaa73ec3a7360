"""The one origin: routes `/identify`, `/structure`, `/activate`, `/notify` to their services.

Each service answers under its own prefix, so the gateway forwards paths unchanged. It
overwrites X-Forwarded-For with the client's address (services trust one proxy hop), and
serves `/healthz` (Redis and every service ready) and `/` (the start of the flow).

Used by `make run`; `docker compose` puts a production proxy in this place.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import redis
from flask import Flask, jsonify, redirect
from werkzeug.middleware.http_proxy import ProxyMiddleware

from shared import redaction
from shared.settings import Settings
from shared.store import connect

SERVICES = ("identify", "structure", "activate", "notify")


def service_targets(env: dict[str, str] | None = None) -> dict[str, str]:
    """`IDENTIFY_URL`… : where each service listens (set by the launcher)."""
    env = os.environ if env is None else env
    return {name: env[f"{name.upper()}_URL"].rstrip("/") for name in SERVICES}


class _ForwardedFor:
    """Tell the services who the client is; a client-sent X-Forwarded-For is not trusted."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        environ["HTTP_X_FORWARDED_FOR"] = environ.get("REMOTE_ADDR", "")
        environ["HTTP_X_FORWARDED_PROTO"] = environ.get("wsgi.url_scheme", "http")
        environ["HTTP_X_FORWARDED_HOST"] = environ.get("HTTP_HOST", "")
        return self.app(environ, start_response)


def create_app(
    settings: Settings | None = None,
    targets: dict[str, str] | None = None,
    client: redis.Redis | None = None,
) -> Flask:
    settings = settings or Settings.from_env()
    targets = targets or service_targets()
    client = client or connect(settings)
    app = Flask(__name__)
    redaction.install(app.logger)  # activation links carry their token in the path
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    @app.get("/")
    def home():
        return redirect("/identify/")

    @app.get("/healthz")
    def healthz():
        with ThreadPoolExecutor(len(targets)) as pool:
            answers = pool.map(lambda item: _http_ok(f"{item[1]}/{item[0]}/healthz"), targets.items())
            checks = {"redis": _redis_ok(client), **dict(zip(targets, answers, strict=True))}
        ready = all(checks.values())
        return jsonify({"status": "ok" if ready else "unavailable", "checks": checks}), 200 if ready else 503

    proxied = ProxyMiddleware(
        app.wsgi_app, {f"/{name}/": {"target": url} for name, url in targets.items()}, timeout=60
    )
    app.wsgi_app = _ForwardedFor(proxied)  # type: ignore[method-assign]
    return app


def _redis_ok(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False
