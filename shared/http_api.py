"""HTTP conventions every service shares: the app skeleton, JSON errors in French, health,
metrics and the registration id of each request's log lines.

Every error leaves as `{"code", "status", "message", "errors": {"field": ["why"]}}`, with
nested fields named by dots (`structure.city`). Validation errors are 422; their messages are
French because the schemas are (`shared.schemas.PortalSchema`); a body that is not JSON is 400.

Each service answers `/{service}/livez` (the process answers; no Redis call), `/{service}/healthz`
(ready: Redis answers) and `/{service}/metrics` (Prometheus, see `shared.metrics`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import redis
from apispec import BasePlugin
from flask import Flask, g, jsonify, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from shared import logs, metrics
from shared.errors import DomainError
from shared.schemas import INVALID_JSON

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

_SUMMARY = {
    400: "Requête invalide.",
    404: "Ressource introuvable.",
    405: "Méthode non autorisée.",
    409: "Conflit avec l'état actuel.",
    413: "La requête est trop volumineuse.",
    415: "Le corps de la requête doit être du JSON.",
    422: "Certaines informations sont invalides.",
    429: "Trop de tentatives : réessayez plus tard.",
    500: "Erreur interne : réessayez plus tard.",
    503: "Service momentanément indisponible : réessayez dans quelques instants.",
}


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """`{"structure": {"city": ["…"]}}` → `{"structure.city": ["…"]}`."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, msgs in flatten_errors(value, name).items():
                flat.setdefault(field, []).extend(msgs)
    elif isinstance(messages, (list, tuple)):
        strings = [str(m) for m in messages if not isinstance(m, (dict, list))]
        if strings:
            flat[prefix or "_schema"] = strings
        for m in messages:
            if isinstance(m, (dict, list)):
                for field, msgs in flatten_errors(m, prefix).items():
                    flat.setdefault(field, []).extend(msgs)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def error_response(
    code: int,
    message: str | None = None,
    errors: dict | None = None,
    headers: dict | None = None,
    extra: dict[str, Any] | None = None,
):
    payload: dict[str, Any] = {
        "code": code,
        "status": _status_name(code),
        "message": message or _SUMMARY.get(code, "Erreur."),
    }
    if errors:
        payload["errors"] = errors
    payload.update(extra or {})
    return jsonify(payload), code, headers or {}


def _status_name(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


class ServiceApi(Api):
    """flask-smorest's Api with errors flattened and in French."""

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        messages = data.get("messages")
        if _undecodable_body(error):
            messages = {"json": [INVALID_JSON]}
        if isinstance(messages, dict):
            # webargs nests by location ("json", "query"): the field names are what matter.
            messages = {
                k: v
                for loc in messages.values()
                for k, v in (loc.items() if isinstance(loc, dict) else [("_schema", loc)])
            }
        errors = flatten_errors(messages) if messages else None
        code = error.code or 500
        if code >= 500:
            log.error("HTTP %s: %s", code, error)
        return error_response(code, data.get("message") if code < 500 else None, errors, data.get("headers"))


def _undecodable_body(error: HTTPException) -> bool:
    """webargs could not decode the body: it aborts with the JSONDecodeError or
    UnicodeDecodeError as `exc` (both ValueError; a refused value is a marshmallow
    ValidationError, which is not one)."""
    return isinstance(getattr(error, "exc", None), ValueError)


def create_service_app(
    service: str, title: str, settings: Any, *, spec_plugins: Sequence[BasePlugin] = ()
) -> tuple[Flask, ServiceApi]:
    """A Flask app for one service: its API under `/{service}`, OpenAPI at `/{service}/openapi.json`
    (with `spec_plugins` adding to what each operation documents)."""
    app = Flask(f"services.{service}")
    app.config.update(
        API_TITLE=title,
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=f"/{service}",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SECRET_KEY=getattr(settings, "secret_key", None),
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    api = ServiceApi(app, spec_kwargs={"extra_plugins": list(spec_plugins)})
    metrics.instrument(app)
    _log_registration_ids(app)

    @app.before_request
    def _refuse_large_bodies() -> None:
        """Refuse an oversized body up front, also where the view never reads it."""
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise RequestEntityTooLarge()

    @app.get(f"/{service}/livez")
    def livez():
        return jsonify({"status": "ok", "service": service})

    @app.errorhandler(DomainError)
    def _domain_error(error: DomainError):
        return error_response(error.status, error.message, error.errors or None, error.headers)

    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    def _redis_down(error: Exception):
        log.warning("redis unavailable: %s", error)
        return error_response(503, headers={"Retry-After": "2"})

    return app, api


def _log_registration_ids(app: Flask) -> None:
    """A request whose URL names a registration (`<registration_id>`) logs it on every line."""

    @app.before_request
    def _bind() -> None:
        registration_id = (request.view_args or {}).get("registration_id")
        if registration_id:
            g.portal_log_token = logs.bind_registration(registration_id)
            request.environ[logs.ENVIRON_KEY] = registration_id  # for gunicorn's access line

    @app.teardown_request
    def _unbind(_error: BaseException | None) -> None:
        token = g.pop("portal_log_token", None)
        if token is not None:
            logs.unbind(token)


def add_health_routes(app: Flask, service: str, client: redis.Redis, *, queues: Sequence[str] = ()) -> None:
    """`/{service}/healthz`: 200 when Redis answers, 503 otherwise (readiness; `/{service}/livez`
    is liveness). And `/{service}/metrics`: every process of the service, its consumer group's
    streams and the Celery `queues` its workers take tasks from (notify, whose workers send the
    emails, names `metrics.CELERY_QUEUES`)."""
    registry = metrics.registry_for(client, group=service, queues=queues)

    @app.get(f"/{service}/metrics")
    def prometheus_metrics():
        body, content_type = metrics.exposition(registry, request.headers.get("Accept"))
        return body, 200, {"Content-Type": content_type, "Cache-Control": "no-store"}

    @app.get(f"/{service}/healthz")
    def healthz():
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError):
            return error_response(503)
        return jsonify({"status": "ok", "service": service})
