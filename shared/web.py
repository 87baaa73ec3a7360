"""What every service's HTML pages share: the layout, the assets, CSRF and security headers.

Pages are server-rendered and work without JavaScript; the one script (the live password
meter) is an addition. Every form carries a CSRF token (Flask-WTF): the session cookie is
shared by the services of the one origin, which all sign it with SECRET_KEY.

The defence against cross-site forms is that token (tied to the session) and the session
cookie's `SameSite=Lax`; the Referer is not checked. Flask-WTF checks it on HTTPS by default
(`WTF_CSRF_SSL_STRICT`), but the pages send `Referrer-Policy: no-referrer` (activation links
carry their token in the path), so behind TLS every form would be refused.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from flask import Blueprint, Flask, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from jinja2 import ChoiceLoader, FileSystemLoader

from shared.errors import Busy, DomainError

ASSETS = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).parent / "templates"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # Activation links carry their token in the path: never let it leave in a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

STEPS = ("Identification", "Informations", "Espaces de travail", "Activation")

_csrf = CSRFProtect()


def install(app: Flask, service: str, settings: Any) -> None:
    """Give `app` the shared layout, `/{service}/assets/…`, CSRF for pages, security headers."""
    app.jinja_loader = ChoiceLoader([app.jinja_loader, FileSystemLoader(str(TEMPLATES))])  # type: ignore[list-item]
    secure = str(getattr(settings, "public_base_url", "")).startswith("https://")
    # Flask's own cookie (the CSRF token); `portail_session` is the sign-in's (services/activate).
    app.config.update(
        SESSION_COOKIE_NAME="portail_formulaire",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=secure,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by page blueprints only: the JSON API has no cookies
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_SSL_STRICT=False,  # no Referer to check: see the module's docstring
    )
    _csrf.init_app(app)
    app.jinja_env.globals.update(steps=STEPS, service=service, country_names=country_names)
    assets = Blueprint(
        f"{service}_assets", __name__, static_folder=str(ASSETS), static_url_path=f"/{service}/assets"
    )
    app.register_blueprint(assets)

    @app.after_request
    def _security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(CSRFError)
    def _csrf_failed(error: CSRFError):
        return render_template(
            "portal/problem.html",
            title="Formulaire expiré",
            message="Ce formulaire a expiré ou n'a pas été envoyé depuis cette page. "
            "Rechargez la page et recommencez.",
            step=None,
        ), 400


def page_blueprint(name: str, import_name: str, service: str) -> Blueprint:
    """A blueprint of HTML pages under `/{service}`: every POST must carry the CSRF token."""
    blueprint = Blueprint(name, import_name, url_prefix=f"/{service}")

    @blueprint.before_request
    def _check_csrf():
        if request.method == "POST":
            _csrf.protect()

    @blueprint.errorhandler(Busy)
    def _busy(error: Busy):
        page, status = problem_page(error, title="Service très sollicité")
        return page, status, error.headers

    return blueprint


def problem_page(
    error: DomainError | None = None,
    step: int | None = None,
    *,
    status: int | None = None,
    title: str | None = None,
    message: str | None = None,
    **context: Any,
):
    """A page for a problem that stops the flow (unknown registration, closed SIRET, dead link…):
    a domain error, or a status with its title and message."""
    if error is not None:
        status = status or error.status
        message = message or error.message
    return render_template(
        "portal/problem.html", title=title or message, message=message, step=step, **context
    ), status or 400


# Unions and regions that Babel lists among territories, its pseudo-locales (XA, XB) and "unknown" (ZZ).
NOT_COUNTRIES = {"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"}


@cache
def country_names() -> list[tuple[str, str]]:
    """(ISO code, French name) of every country, France first, then in French alphabetical order."""
    territories = Locale("fr").territories
    countries = [
        (code, name)
        for code, name in territories.items()
        if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES
    ]
    countries.sort(key=lambda item: _sort_key(item[1]))
    return [("FR", territories["FR"])] + [item for item in countries if item[0] != "FR"]


def _sort_key(name: str) -> str:
    """Accents do not change the order: Égypte comes after Danemark, not after Zimbabwe."""
    return "".join(c for c in unicodedata.normalize("NFD", name) if not unicodedata.combining(c)).casefold()
