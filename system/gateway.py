"""The one origin: routes `/identify`, `/structure`, `/activate`, `/notify` to their services.

Each service answers under its own prefix, so the gateway forwards paths unchanged, over
connections it keeps alive (`system.forwarding`). It overwrites X-Forwarded-For with the
client's address (services trust one proxy hop), and serves `/healthz` (ready: Redis and every
service ready), `/livez` (the process answers), `/metrics` (its own requests, labelled by
service for what it forwards, and every stream, consumer group, Celery queue and the dead
letters, read from Redis) and `/` (the start of the flow). Each service's own metrics are at
`/{service}/metrics`, forwarded like the rest.

Used by `make run`; `docker compose` puts a production proxy in this place.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import redis
from flask import Flask, jsonify, redirect, request

from shared import logs, metrics, redaction
from shared.settings import Settings
from shared.store import connect
from system.forwarding import Forwarder

SERVICES = ("identify", "structure", "activate", "notify")
# `/identify/api/registrations/r1`, `/structure/registrations/r1`…: the access line names r1.
_REGISTRATION_IN_PATH = re.compile(r"^/[a-z]+/(?:api/)?registrations/([^/?#]+)")


def service_targets(env: dict[str, str] | None = None) -> dict[str, str]:
    """`IDENTIFY_URL`… : where each service listens (set by the launcher)."""
    env = os.environ if env is None else env
    return {name: env[f"{name.upper()}_URL"].rstrip("/") for name in SERVICES}


class _RegistrationInPath:
    """The registration a forwarded request concerns, for the gateway's access log line."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        found = _REGISTRATION_IN_PATH.match(environ.get("PATH_INFO", ""))
        if not found:
            return self.app(environ, start_response)
        environ[logs.ENVIRON_KEY] = found.group(1)
        with logs.registration(found.group(1)):
            return self.app(environ, start_response)


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

    @app.get("/livez")
    def livez():
        return jsonify({"status": "ok", "service": "gateway"})

    registry = metrics.registry_for(client, queues=metrics.CELERY_QUEUES, dead_letters=True)

    @app.get("/metrics")
    def prometheus_metrics():
        body, content_type = metrics.exposition(registry, request.headers.get("Accept"))
        return body, 200, {"Content-Type": content_type, "Cache-Control": "no-store"}

    @app.get("/healthz")
    def healthz():
        with ThreadPoolExecutor(len(targets)) as pool:
            answers = pool.map(lambda item: _http_ok(f"{item[1]}/{item[0]}/healthz"), targets.items())
            checks = {"redis": _redis_ok(client), **dict(zip(targets, answers, strict=True))}
        ready = all(checks.values())
        return jsonify({"status": "ok" if ready else "unavailable", "checks": checks}), 200 if ready else 503

    proxied = Forwarder(app.wsgi_app, {f"/{name}/": url for name, url in targets.items()})
    prefixes = tuple(f"/{name}/" for name in targets)

    def route_of(environ) -> str:
        path = environ.get("PATH_INFO", "")
        for prefix in prefixes:
            if path.startswith(prefix):
                return f"{prefix}*"  # forwarded: the service, never the path (it may hold a token)
        return metrics.route_in(app.url_map, environ)

    app.wsgi_app = metrics.WsgiMetrics(_RegistrationInPath(_ForwardedFor(proxied)), route_of)  # type: ignore[method-assign]
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
