"""Sign-in as web pages: « Se connecter » (email and password), « Code de vérification » (the second
factor), and signing out (a POST form anywhere: the `sign_out_buttons` macro of
`activate/sign_out.html`). Same calls as the JSON API (`api.py`).

After the code, the person goes where they were going (`?next=`, a path of this site only) or to
« Mon compte ». A refused password or code shows the form again with the one message (401); a
locked email shows when to come back (429 + Retry-After); a dead challenge offers to sign in again
(410). The challenge id is in the code page's path: it is useless without the code, and sent
nowhere else (`Referrer-Policy: no-referrer`).
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import redirect, render_template, request, url_for

from services.activate.domain import LOGIN_EMAIL_MAX_LENGTH
from services.activate.sign_in import api
from services.activate.sign_in import handlers as sign_in_handlers
from services.activate.sign_in.codes import MAX_CODE_LENGTH
from services.activate.sign_in.domain import ChallengeGone, CodeRefused, Locked, Method, SignInRefused
from shared.errors import DomainError, Invalid, Unauthorized
from shared.web import page_blueprint
from shared.wording import validity_in_words

bp = page_blueprint("activate_sign_in_pages", __name__, "activate")

MY_ACCOUNT = "/activate/me"
PASSWORD_RESET = "/activate/password-resets/new"
NEXT_MAX_LENGTH = 512
LABELS = {
    "login_email": "Adresse électronique de connexion",
    "password": "Mot de passe",
    "code": "Code de vérification",
}
LOCKED_TITLE = "Connexion suspendue"


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: `value` when it is a path of this site, « Mon compte » otherwise
    (never another site: `//evil.example`, `/\\evil.example`, `https://…` are refused)."""
    if not value or len(value) > NEXT_MAX_LENGTH or not value.startswith("/") or value.startswith("//"):
        return MY_ACCOUNT
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return MY_ACCOUNT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return MY_ACCOUNT
    return value


def _with_next(url: str, next_path: str) -> str:
    return f"{url}?{urlencode({'next': next_path})}" if next_path != MY_ACCOUNT else url


# --- « Se connecter » ----------------------------------------------------------------------------------


@bp.get("/sign-in")
def sign_in_form():
    return _sign_in_page(
        "",
        safe_next(request.args.get("next")),
        email_code_asked=request.args.get("method") == Method.EMAIL_CODE,
        signed_out=request.args.get("signed_out") == "1",
    )


@bp.post("/sign-in")
def sign_in():
    form = request.form
    login_email = form.get("login_email", "")[:LOGIN_EMAIL_MAX_LENGTH]
    next_path = safe_next(form.get("next"))
    email_code_asked = form.get("method") == Method.EMAIL_CODE
    try:
        opened = api.sign_in(
            login_email, form.get("password", ""), Method.EMAIL_CODE if email_code_asked else None
        )
    except Invalid as refused:
        return _sign_in_page(login_email, next_path, email_code_asked, errors=dict(refused.errors)), 422
    except SignInRefused as refused:
        return _sign_in_page(login_email, next_path, email_code_asked, refused=refused.message), 401
    except Locked as locked:
        return locked_page(locked)
    code_page = url_for(".code_form", challenge_id=opened.challenge_id)
    return redirect(_with_next(code_page, next_path), code=303)


def _sign_in_page(
    login_email: str,
    next_path: str,
    email_code_asked: bool = False,
    signed_out: bool = False,
    refused: str | None = None,
    errors: dict[str, list[str]] | None = None,
):
    return render_template(
        "activate/sign_in.html",
        title="Se connecter",
        step=None,
        login_email=login_email,
        next_path=next_path,
        email_code_asked=email_code_asked,
        signed_out=signed_out,
        refused=refused,
        errors=errors or {},
        labels=LABELS,
        max_length=LOGIN_EMAIL_MAX_LENGTH,
        password_reset=PASSWORD_RESET,
    )


def locked_page(locked: Locked):
    wait = validity_in_words(int(locked.headers["Retry-After"]))
    return sign_in_problem(
        locked,
        LOCKED_TITLE,
        f"{locked.message} Réessayez dans {wait}. Si vous avez oublié votre mot de passe, utilisez "
        "« Mot de passe oublié ».",
        [(PASSWORD_RESET, "Mot de passe oublié ?")],
    )


def sign_in_problem(error: DomainError, title: str, message: str, links: list[tuple[str, str]]):
    """A page that stops the sign-in, with where to go from there; the error's status and headers."""
    page = render_template(
        "activate/sign_in_problem.html", title=title, message=message, step=None, links=links
    )
    return page, error.status, error.headers


# --- « Code de vérification » --------------------------------------------------------------------------


@bp.get("/sign-in/<challenge_id>")
def code_form(challenge_id: str):
    next_path = safe_next(request.args.get("next"))
    try:
        challenge = sign_in_handlers.open_challenge(challenge_id, api.wiring().uow())
    except ChallengeGone as gone:
        return _gone(gone, next_path)
    return _code_page(challenge_id, challenge.accepts, next_path)


@bp.post("/sign-in/<challenge_id>")
def enter_code(challenge_id: str):
    next_path = safe_next(request.form.get("next"))
    try:
        api.enter_code(challenge_id, request.form.get("code", ""))
    except CodeRefused as refused:
        try:
            challenge = sign_in_handlers.open_challenge(challenge_id, api.wiring().uow())
        except ChallengeGone as gone:
            return _gone(gone, next_path)
        return _code_page(challenge_id, challenge.accepts, next_path, refused=refused.message), 401
    except ChallengeGone as gone:
        return _gone(gone, next_path)
    except Locked as locked:
        return locked_page(locked)
    return redirect(next_path, code=303)


def _code_page(challenge_id: str, accepts: tuple[Method, ...], next_path: str, refused: str | None = None):
    query = {"next": next_path, "method": Method.EMAIL_CODE.value}
    return render_template(
        "activate/sign_in_code.html",
        title="Code de vérification",
        step=None,
        challenge_id=challenge_id,
        next_path=next_path,
        email_code=Method.EMAIL_CODE in accepts,
        totp=Method.TOTP in accepts,
        validity=validity_in_words(api.wiring().settings.sign_in_code_ttl_seconds),
        refused=refused,
        labels=LABELS,
        max_length=MAX_CODE_LENGTH,
        ask_email_code=f"{url_for('.sign_in_form')}?{urlencode(query)}",
    )


def _gone(gone: ChallengeGone, next_path: str):
    return sign_in_problem(
        gone,
        "Cette demande de connexion n'est plus valable",
        "Le code a expiré, a déjà servi, a été remplacé par une demande plus récente ou a été refusé trop "
        "de fois. Reconnectez-vous pour recevoir un nouveau code.",
        [(_with_next(url_for(".sign_in_form"), next_path), "Se connecter")],
    )


# --- signing out ----------------------------------------------------------------------------------------


@bp.post("/sign-out")
def sign_out():
    """« Se déconnecter », or with `everywhere=1` « Se déconnecter partout »; then « Se connecter »."""
    everywhere = request.form.get("everywhere") == "1"
    try:
        api.sign_out(everywhere=everywhere)
    except Unauthorized:
        api.sign_out()  # the session had ended already: the cookie is cleared all the same
    return redirect(f"{url_for('.sign_in_form')}?signed_out=1", code=303)
