"""« Approbations » as a web page, and detaching a user from « Mon compte ».

The gestionnaire principal, signed in, sees the attachment requests of their structures, each with
« Accepter » and « Refuser » (and an optional reason for a refusal, emailed to the newcomer). A
decision redirects (303) to the page with `?avis=…`; a refused form shows the page again (422) with
the fault next to its request. Same calls as the JSON API (`api.py`).
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from services.activate.approvals import api
from services.activate.approvals.domain import REASON_MAX_LENGTH, NotAManager
from services.activate.sessions.web import page_requires_session
from shared.errors import Conflict, Invalid, NotFound
from shared.web import page_blueprint, problem_page

bp = page_blueprint("activate_approvals_pages", __name__, "activate")

NOTICES = {
    "acceptee": "La demande a été acceptée : la personne reçoit un courriel pour activer son compte "
    "(ou, si elle en a déjà un, pour le rattacher à votre structure avec son mot de passe).",
    "refusee": "La demande a été refusée : la personne en est informée par courriel.",
    "detache": "L'utilisateur a été détaché de votre structure.",
}


@bp.get("/approvals")
@page_requires_session
def approvals():
    try:
        return _page(notice=NOTICES.get(request.args.get("avis", "")))
    except NotAManager as error:
        return problem_page(error, title="Approbations")


def _page(*, notice: str | None = None, errors: dict[str, list[str]] | None = None, failed: str = ""):
    page = render_template(
        "activate/approvals.html",
        title="Approbations",
        step=None,
        requests=api.pending(),
        notice=notice,
        errors=errors or {},
        failed=failed,
        reason_max=REASON_MAX_LENGTH,
    )
    return (page, 422) if errors else page


@bp.post("/approvals/<attachment_request_id>")
@page_requires_session
def decide(attachment_request_id: str):
    decision = request.form.get("decision", "")
    try:
        decided = api.decide(attachment_request_id, decision, request.form.get("reason"))
    except NotAManager as error:
        return problem_page(error, title="Approbations")
    except Invalid as refused:
        return _page(errors=dict(refused.errors), failed=attachment_request_id)
    except (NotFound, Conflict) as gone:
        return _page(errors={"decision": [gone.message]}, failed=attachment_request_id)
    avis = "refusee" if decided.status == "refused" else "acceptee"
    return redirect(url_for(".approvals", avis=avis), code=303)


@bp.post("/me/users/<account_id>/detachment")
@page_requires_session
def detach(account_id: str):
    try:
        api.detach(request.form.get("structure_id", ""), account_id)
    except NotAManager as error:
        return problem_page(error, title="Mon compte")
    except (NotFound, Conflict) as refused:
        return problem_page(refused, title="Détacher un utilisateur")
    return redirect(url_for("activate_me_pages.my_account", avis="detache", _anchor="utilisateurs"), code=303)
