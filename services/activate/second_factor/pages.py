"""« Sécurité du compte »: the authenticator app as web pages, for the signed-in (others go to « Se
connecter » and come back). Same calls as the JSON API (`api.py`).

`/activate/me/second-factor` shows where things stand: no app (a button starts an enrolment),
an enrolment waiting for its first code (the QR code as inline SVG, the key as text, the code's
form), or an app enrolled (how many recovery codes are left, the removal form asking for the
current password). The confirmation answers with the ten recovery codes, shown this once (the
page is `no-store`, like every page).
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from services.activate.second_factor import api
from services.activate.second_factor.domain import AlreadyEnrolled, NoEnrolment, NotEnrolled
from services.activate.second_factor.handlers import Standing
from services.activate.sessions.web import page_requires_session
from services.activate.sign_in.codes import MAX_CODE_LENGTH
from services.activate.sign_in.domain import Locked
from services.activate.sign_in.pages import MY_ACCOUNT, locked_page, sign_in_problem
from shared.errors import Invalid
from shared.web import page_blueprint

bp = page_blueprint("activate_second_factor_pages", __name__, "activate")

TITLE = "Sécurité du compte"
LABELS = {"code": "Code affiché par l'application", "current_password": "Mot de passe actuel"}
NOTICES = {
    "associee": "Votre application d'authentification est associée à votre compte.",
    "retiree": "L'application d'authentification a été retirée : un code vous sera envoyé par courriel à "
    "chaque connexion.",
}


def _to_page(notice: str | None = None):
    target = url_for(".second_factor")
    return redirect(f"{target}?avis={notice}" if notice else target, code=303)


def _page(found: Standing, errors: dict[str, list[str]] | None = None, notice: str | None = None):
    return render_template(
        "activate/second_factor.html",
        title=TITLE,
        step=None,
        standing=found,
        errors=errors or {},
        labels=LABELS,
        notice=NOTICES.get(notice or ""),
        code_max_length=MAX_CODE_LENGTH,
        my_account=MY_ACCOUNT,
    )


@bp.get("/me/second-factor")
@page_requires_session
def second_factor():
    return _page(api.standing(), notice=request.args.get("avis"))


@bp.post("/me/second-factor")
@page_requires_session
def start():
    """A new enrolment (a pending one is replaced), shown by the page."""
    try:
        api.start()
    except AlreadyEnrolled:
        return _to_page()
    return _to_page()


@bp.post("/me/second-factor/confirm")
@page_requires_session
def confirm():
    try:
        codes = api.confirm(request.form.get("code", ""))
    except Invalid as refused:
        return _page(api.standing(), errors=dict(refused.errors)), 422
    except AlreadyEnrolled:
        return _to_page()
    except NoEnrolment as gone:
        return sign_in_problem(
            gone,
            "L'association a expiré",
            gone.message,
            [(url_for(".second_factor"), "Revenir à la sécurité du compte")],
        )
    return render_template(
        "activate/recovery_codes.html", title="Vos codes de secours", step=None, codes=codes
    )


@bp.post("/me/second-factor/removal")
@page_requires_session
def remove():
    try:
        api.remove(request.form.get("current_password", ""))
    except NotEnrolled:
        return _to_page()
    except Invalid as refused:
        return _page(api.standing(), errors=dict(refused.errors)), 422
    except Locked as locked:
        return locked_page(locked)
    return _to_page("retiree")
