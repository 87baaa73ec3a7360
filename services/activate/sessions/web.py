"""The session's cookie, for the API and the pages.

The cookie holds the session's id only: HttpOnly (no script reads it), SameSite=Lax (not sent by
another site's forms), Secure when PUBLIC_BASE_URL is https, no Max-Age (it goes with the
browser; the server's time-outs decide). A new id at every sign-in: an id planted before
cannot be signed in with.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from flask import Response, g, redirect, request

from services.activate.bootstrap import Activate
from services.activate.sessions.domain import Session
from services.activate.sessions.handlers import resume_session
from shared.bootstrap import wiring_of
from shared.errors import Forbidden, Unauthorized
from shared.settings import Settings

COOKIE = "portail_session"
SIGN_IN_PAGE = "/activate/sign-in"


def session_id() -> str | None:
    return request.cookies.get(COOKIE)


def current_session() -> Session:
    """The request's live session (asked once per request). Raises Unauthorized (401)."""
    if "portal_session" not in g:
        wiring: Activate = wiring_of()
        g.portal_session = resume_session(session_id(), wiring.uow())
    return g.portal_session


def guard_cookie_api(blueprint: Any, *, session_paths: str | None = None) -> None:
    """Before any view of this API blueprint: a state change from another origin is refused (403;
    the API is authenticated by its cookie, so a form on another site must not drive it: browsers
    name their origin on every cross-site POST); and under `session_paths` (e.g. `/activate/api/me`)
    the session is checked first, so that a call without one is a 401 whatever its body."""

    @blueprint.before_request
    def _guard() -> None:
        if request.method not in ("GET", "HEAD", "OPTIONS") and not _same_origin():
            raise Forbidden("Requête refusée : elle ne vient pas du portail.")
        if session_paths is not None and request.path.startswith(session_paths):
            current_session()


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser's cross-site request (browsers send Origin with every such POST)
    wiring: Activate = wiring_of()
    own = {request.host_url.rstrip("/"), wiring.settings.public_base_url.rstrip("/")}
    return origin.rstrip("/") in own


def set_session_cookie(response: Response, new_session_id: str, settings: Settings) -> Response:
    response.set_cookie(
        COOKIE,
        new_session_id,
        httponly=True,
        samesite="Lax",
        secure=settings.public_base_url.startswith("https://"),
        path="/",
    )
    return response


def clear_session_cookie(response: Response, settings: Settings) -> Response:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="Lax", secure=settings.public_base_url.startswith("https://")
    )
    return response


def page_requires_session(view: Callable[..., Any]) -> Callable[..., Any]:
    """A page for the signed-in: without a live session, to « Se connecter », coming back after."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            current_session()
        except Unauthorized:
            return redirect(f"{SIGN_IN_PAGE}?next={quote(request.path)}", code=303)
        return view(*args, **kwargs)

    return guarded
