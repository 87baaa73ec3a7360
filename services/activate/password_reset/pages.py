"""« Mot de passe oublié » as web pages: the request by login email, the emailed link's page
(the secret question, the new password twice), then « Mot de passe modifié ».

Same handlers as the JSON API (`api.py`). The token is in the path of the link's
pages: never cached (`Cache-Control: no-store` on HTML), never sent in a Referer
(`Referrer-Policy: no-referrer`), and the form posts to the page itself.
"""

from __future__ import annotations

from flask import render_template, request

from services.activate.pages import PASSWORD_HINT, login_email_request_fields
from services.activate.password_reset import api
from services.activate.password_reset.domain import (
    PASSWORD_CHANGED,
    RESET_REQUESTED,
    GoneReason,
    RefusedReset,
    ResetLinkGone,
    ResetPage,
)
from services.activate.password_reset.handlers import ResetPassword
from shared.errors import Invalid
from shared.web import page_blueprint
from shared.wording import validity_in_words

bp = page_blueprint("password_reset_pages", __name__, "activate")

SIGN_IN_PAGE = "/activate/sign-in"
LABELS = {
    "login_email": "Adresse électronique de connexion",
    "secret_answer": "Réponse à la question secrète",
    "password": "Nouveau mot de passe",
    "password_confirmation": "Confirmation du nouveau mot de passe",
}
GONE_TITLES = {
    GoneReason.EXPIRED: "Ce lien a expiré",
    GoneReason.USED: "Ce lien a déjà servi",
    GoneReason.REPLACED: "Ce lien a été remplacé par un lien plus récent",
    GoneReason.LOCKED: "Ce lien ne fonctionne plus",
    GoneReason.UNKNOWN: "Ce lien n'est pas valable",
}
LAST_WRONG_ANSWER_TITLE = "Réponse refusée : ce lien ne fonctionne plus"


def _validity() -> str:
    return validity_in_words(api.wiring().settings.password_reset_ttl_seconds)


# --- the request ---------------------------------------------------------------------------------


@bp.get("/password-resets/new")
def new_request():
    return _request_form("", {})


@bp.post("/password-resets/new")
def request_reset():
    """The same page whatever the email: whether an active account uses it is not told."""
    login_email = request.form.get("login_email", "")
    try:
        api.request_reset(login_email)
    except Invalid as refused:
        return _request_form(login_email, dict(refused.errors)), 422
    return render_template(
        "activate/password_reset_requested.html",
        title="Demande enregistrée",
        step=None,
        message=RESET_REQUESTED,
        validity=_validity(),
    )


def _request_form(login_email: str, errors: dict[str, list[str]]):
    return render_template(
        "activate/password_reset_request.html",
        title="Mot de passe oublié",
        step=None,
        validity=_validity(),
        **login_email_request_fields(login_email, errors, LABELS),
    )


# --- the emailed link ----------------------------------------------------------------------------


@bp.get("/password-resets/<token>")
def reset_form(token: str):
    try:
        page = api.open_link(token)
    except ResetLinkGone as gone:
        return _gone(gone)
    return _render_form(token, page, {})


@bp.post("/password-resets/<token>")
def reset(token: str):
    form = request.form
    try:
        api.reset(
            ResetPassword(
                token,
                secret_answer=form.get("secret_answer", ""),
                password=form.get("password", ""),
                password_confirmation=form.get("password_confirmation", ""),
            )
        )
    except ResetLinkGone as gone:
        return _gone(gone)
    except RefusedReset as refused:
        if refused.link_dead:
            return _gone_page(LAST_WRONG_ANSWER_TITLE, refused.message, refused.status)
        return _render_form(token, refused.page, dict(refused.errors)), refused.status
    return render_template(
        "activate/password_reset_done.html",
        title="Mot de passe modifié",
        step=None,
        message=PASSWORD_CHANGED,
        sign_in=SIGN_IN_PAGE,
    )


def _render_form(token: str, page: ResetPage, errors: dict[str, list[str]]):
    """The form; nothing typed is shown again (neither the answer nor the passwords)."""
    return render_template(
        "activate/password_reset.html",
        title="Choisir un nouveau mot de passe",
        step=None,
        token=token,
        page=page,
        errors=errors,
        labels=LABELS,
        password_hint=PASSWORD_HINT,
    )


def _gone(gone: ResetLinkGone):
    """410: what happened to the link, and the request of a new one; nothing names the account."""
    return _gone_page(GONE_TITLES[gone.reason], gone.message, gone.status)


def _gone_page(title: str, message: str, status: int):
    page = render_template(
        "activate/password_reset_gone.html",
        title=title,
        message=message,
        step=None,
        validity=_validity(),
        sign_in=SIGN_IN_PAGE,
        **login_email_request_fields("", {}, LABELS),
    )
    return page, status
