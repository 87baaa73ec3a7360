"""« Mon compte » as web pages: the account and its forms (workspaces, password, secret question,
contact email, deactivation), and the page of the link that confirms a new contact email. Its
« Se déconnecter » and « Se déconnecter partout » buttons are sign-in's (the `sign_out_buttons`
macro of `activate/sign_out.html`, posting to /activate/sign-out).

Every form posts to its own path under /activate/me/…; a refused form shows the page again (422)
with the faults next to their fields; a change done redirects (303) to the page with `?avis=…`,
which names the notice shown on top. Same calls as the JSON API (`api.py`).

The confirmation link shows the new address and a button: the change is made by the POST, so that
a mail filter that opens links to check them does not use it up.
"""

from __future__ import annotations

from flask import make_response, redirect, render_template, request, url_for

from services.activate.approvals import api as approvals_api
from services.activate.approvals.domain import managed_structures
from services.activate.catalogue import SECRET_QUESTIONS, WORKSPACES
from services.activate.domain import Account
from services.activate.my_account import api
from services.activate.my_account.domain import (
    CONTACT_LINK_TTL_SECONDS,
    ContactLinkGone,
    PrincipalManagerStays,
    UnknownContactLink,
    can_leave,
)
from services.activate.sessions.web import page_requires_session
from shared.contracts import Role
from shared.errors import Invalid
from shared.web import page_blueprint
from shared.wording import validity_in_words

bp = page_blueprint("activate_me_pages", __name__, "activate")

SECOND_FACTOR_PAGE = "/activate/me/second-factor"
SIGN_IN_PAGE = "/activate/sign-in"
ON, OFF = "1", "0"

ROLE_LABELS = {Role.GESTIONNAIRE_PRINCIPAL: "gestionnaire principal", Role.UTILISATEUR: "utilisateur"}

LABELS = {
    "current_password": "Mot de passe actuel",
    "password": "Nouveau mot de passe",
    "password_confirmation": "Confirmation du nouveau mot de passe",
    "secret_current_password": "Mot de passe actuel",
    "secret_question": "Question secrète",
    "secret_answer": "Réponse",
    "contact_email": "Nouvelle adresse électronique de contact",
    **{f"ws-{w.code}": w.label for w in WORKSPACES},
}
PASSWORD_HINT = (
    "Au moins 8 caractères, dont au moins 3 des 4 types suivants : majuscules, minuscules, chiffres, "
    "caractères spéciaux (ponctuation, lettres accentuées…). Sont aussi refusés : les mots de passe trop "
    "courants et ceux qui reprennent vos nom, prénom ou adresse électronique."
)

NOTICES = {
    "detache": "L'utilisateur a été détaché de votre structure.",
    "espaces": "Vos espaces de travail ont été mis à jour.",
    "mot-de-passe": "Votre mot de passe a été modifié. Vos sessions ouvertes sur d'autres appareils ont été "
    "fermées.",
    "question-secrete": "Votre question secrète et sa réponse ont été modifiées.",
    "adresse-de-contact": "Un lien de confirmation a été envoyé à la nouvelle adresse électronique de "
    f"contact. Elle remplacera l'adresse actuelle quand vous aurez ouvert ce lien, valable "
    f"{validity_in_words(CONTACT_LINK_TTL_SECONDS)}.",
}


# --- « Mon compte » ------------------------------------------------------------------------------------


@bp.get("/me")
@page_requires_session
def my_account():
    return _page(api.me(), notice=NOTICES.get(request.args.get("avis", "")))


def _page(
    account: Account,
    *,
    notice: str | None = None,
    errors: dict[str, list[str]] | None = None,
    kept: dict[str, str] | None = None,
    choices: dict[str, bool] | None = None,
):
    kept = kept or {}
    page = render_template(
        "activate/my_account.html",
        title="Mon compte",
        step=None,
        account=account,
        role=ROLE_LABELS.get(account.role, account.role or ""),
        memberships=[(m.company_name or m.structure_id, ROLE_LABELS[m.role]) for m in account.memberships],
        users=approvals_api.users() if managed_structures(account) else None,
        can_leave=can_leave(account),
        refusal=PrincipalManagerStays.default_message,
        notice=notice,
        errors=errors or {},
        labels=LABELS,
        kept=kept,
        workspaces=WORKSPACES,
        choices=choices or {w.code: w.code in account.workspaces for w in WORKSPACES},
        questions=[("", "Choisissez une question")] + [(q, q) for q in SECRET_QUESTIONS],
        password_hint=PASSWORD_HINT,
        validity=validity_in_words(CONTACT_LINK_TTL_SECONDS),
        second_factor_page=SECOND_FACTOR_PAGE,
    )
    return (page, 422) if errors else page


def _done(notice: str):
    return redirect(url_for(".my_account", avis=notice), code=303)


@bp.post("/me/workspaces")
@page_requires_session
def change_workspaces():
    account = api.me()
    choices, errors = _read_switches(account)
    if not errors:
        try:
            api.change_workspaces([code for code, on in choices.items() if on])
        except Invalid as refused:
            errors = dict(refused.errors)
    if errors:
        return _page(account, errors=errors, choices=choices)
    return _done("espaces")


def _read_switches(account: Account) -> tuple[dict[str, bool], dict[str, list[str]]]:
    """Each workspace's OUI/NON; a switch not sent keeps its current position."""
    choices: dict[str, bool] = {}
    errors: dict[str, list[str]] = {}
    for workspace in WORKSPACES:
        value = request.form.get(f"ws-{workspace.code}")
        choices[workspace.code] = workspace.code in account.workspaces if value is None else value == ON
        if value not in (None, ON, OFF):
            errors[f"ws-{workspace.code}"] = [f"Choisissez OUI ou NON pour l'espace « {workspace.label} »."]
    return choices, errors


@bp.post("/me/password")
@page_requires_session
def change_password():
    form = request.form
    try:
        api.change_password(
            form.get("current_password", ""), form.get("password", ""), form.get("password_confirmation", "")
        )
    except Invalid as refused:
        return _page(api.me(), errors=dict(refused.errors))
    return _done("mot-de-passe")


@bp.post("/me/secret-question")
@page_requires_session
def change_secret_question():
    form = request.form
    kept = {name: form.get(name, "") for name in ("secret_question", "secret_answer")}
    try:
        api.change_secret_question(form.get("secret_current_password", ""), **kept)
    except Invalid as refused:
        errors = {_secret_form_name(name): messages for name, messages in refused.errors.items()}
        return _page(api.me(), errors=errors, kept=kept)
    return _done("question-secrete")


def _secret_form_name(name: str) -> str:
    """The password form and the secret question's both ask for the current password: on the page,
    the second one has its own name (one id per page)."""
    return "secret_current_password" if name == "current_password" else name


@bp.post("/me/contact-email")
@page_requires_session
def change_contact_email():
    contact_email = request.form.get("contact_email", "")
    try:
        api.request_contact_email(contact_email)
    except Invalid as refused:
        return _page(api.me(), errors=dict(refused.errors), kept={"contact_email": contact_email})
    return _done("adresse-de-contact")


# --- deactivation: a confirmation step, the password asked --------------------------------------------


@bp.get("/me/deactivation")
@page_requires_session
def deactivation():
    return _deactivation_page(api.me(), {})


@bp.post("/me/deactivation")
@page_requires_session
def deactivate():
    try:
        api.deactivate(request.form.get("current_password", ""))
    except PrincipalManagerStays:
        return _deactivation_page(api.me(), {}), PrincipalManagerStays.status
    except Invalid as refused:
        return _deactivation_page(api.me(), dict(refused.errors)), 422
    page = _farewell(
        "Votre compte est désactivé",
        "Votre compte est désactivé et toutes vos sessions ont été fermées. Vous ne pouvez plus vous "
        "connecter avec ce compte. Vos données personnelles (nom, prénom, adresses électroniques, mot de "
        "passe, question secrète) ont été effacées ; votre adresse de connexion peut servir à un nouveau "
        "compte.",
    )
    return api.signed_out(make_response(page))


def _deactivation_page(account: Account, errors: dict[str, list[str]]) -> str:
    return render_template(
        "activate/my_account_deactivation.html",
        title="Désactiver mon compte",
        step=None,
        account=account,
        can_leave=can_leave(account),
        refusal=PrincipalManagerStays.default_message,
        errors=errors,
        labels=LABELS,
    )


def _farewell(title: str, message: str) -> str:
    return render_template(
        "activate/my_account_farewell.html", title=title, message=message, step=None, sign_in=SIGN_IN_PAGE
    )


# --- the link that confirms a new contact email -------------------------------------------------------


@bp.get("/contact-emails/<token>")
def contact_email_link(token: str):
    try:
        link = api.open_contact_link(token)
    except (UnknownContactLink, ContactLinkGone) as dead:
        return _dead_link(dead)
    return render_template(
        "activate/contact_email_link.html",
        title="Confirmez votre nouvelle adresse électronique de contact",
        step=None,
        token=token,
        contact_email=link.contact_email,
    )


@bp.post("/contact-emails/<token>")
def confirm_contact_email(token: str):
    try:
        account = api.confirm_contact_email(token)
    except (UnknownContactLink, ContactLinkGone) as dead:
        return _dead_link(dead)
    return render_template(
        "activate/my_account_farewell.html",
        title="Votre adresse électronique de contact est modifiée",
        message=f"Les notifications du portail seront désormais envoyées à {account.contact_email}.",
        step=None,
        sign_in=None,
    )


def _dead_link(dead: UnknownContactLink | ContactLinkGone):
    titles = {
        404: "Ce lien de confirmation n'est pas valable",
        410: "Ce lien de confirmation ne fonctionne plus",
    }
    return render_template(
        "activate/my_account_farewell.html",
        title=titles[dead.status],
        message=dead.message,
        step=None,
        sign_in=None,
    ), dead.status
