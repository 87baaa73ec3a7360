"""Steps 3 and 4 as web pages: workspaces, the account created, the activation link, and a new
link asked for by the login email (what a dead link's page offers).

Same handlers as the JSON API; a page renders what a handler returns, or the domain error it
raises. The activation token is in the path of the step 4 pages: it is never logged
(shared.redaction), never cached (`Cache-Control: no-store` on HTML), never sent in a Referer
(`Referrer-Policy: no-referrer`), and no link on these pages carries it.
"""

from __future__ import annotations

from pathlib import Path

from flask import redirect, render_template, request, url_for

from services.activate import api, handlers
from services.activate.catalogue import SECRET_QUESTIONS, WORKSPACES
from services.activate.domain import (
    LOGIN_EMAIL_MAX_LENGTH,
    Account,
    AccountStatus,
    AlreadyActive,
    RefusedForm,
    WorkspacesAlreadyChosen,
    WorkspacesNotChosen,
)
from services.activate.links import LINK_REQUESTED, NextStep, TokenGone, TokenState, UnknownLink
from shared.contracts import Role
from shared.errors import Conflict, Invalid, NotFound
from shared.web import page_blueprint, problem_page
from shared.wording import validity_in_words

bp = page_blueprint("activate_pages", __name__, "activate")
# The live password meter: /activate/static/password-meter.js (the shared assets are /activate/assets/).
bp.static_folder = str(Path(__file__).parent / "static")
bp.static_url_path = "/static"

STEP_WORKSPACES, STEP_ACTIVATION = 3, 4

LABELS = {
    "password": "Mot de passe",
    "password_confirmation": "Confirmation du mot de passe",
    "secret_question": "Question secrète",
    "secret_answer": "Réponse",
    "current_password": "Mot de passe de votre compte",
}
PASSWORD_HINT = (
    "Au moins 8 caractères, dont au moins 3 des 4 types suivants : majuscules, minuscules, chiffres, "
    "caractères spéciaux (ponctuation, lettres accentuées…)."
)
ROLE_LABELS = {Role.GESTIONNAIRE_PRINCIPAL: "gestionnaire principal", Role.UTILISATEUR: "utilisateur"}
ON, OFF = "1", "0"

UNKNOWN_LINK_TITLE = "Ce lien d'activation n'est pas valable"
UNKNOWN_LINK_MESSAGE = (
    "Cette adresse ne correspond à aucun lien d'activation. Vérifiez que vous l'avez copiée en entier "
    "depuis le courriel d'activation reçu. Si le lien ne fonctionne toujours pas, demandez un nouveau "
    "lien depuis la page de confirmation de création de votre compte, ou recommencez la création de "
    "votre compte."
)
GONE_TITLES = {
    TokenState.EXPIRED: "Ce lien d'activation a expiré",
    TokenState.USED: "Ce lien d'activation a déjà été utilisé",
    TokenState.REPLACED: "Ce lien d'activation a été remplacé par un lien plus récent",
}
LOGIN_EMAIL_LABEL = "Adresse électronique de connexion"
ALREADY_ACTIVE_TITLE = "Votre compte est déjà actif"
ALREADY_ACTIVE = (
    "Votre compte est déjà actif : connectez-vous avec votre adresse électronique de connexion et votre "
    "mot de passe."
)


def _validity() -> str:
    return validity_in_words(api.wiring().settings.activation_ttl_seconds)


# --- step 3: workspaces --------------------------------------------------------------------------


@bp.get("/registrations/<registration_id>/workspaces")
def workspaces(registration_id: str):
    return _workspaces_form(registration_id, {w.code: w.default for w in WORKSPACES}, {})


@bp.post("/registrations/<registration_id>/workspaces")
def choose_workspaces(registration_id: str):
    choices, errors = _read_switches(request.form)
    if errors:
        return _workspaces_form(registration_id, choices, errors)
    try:
        api.choose(handlers.ChooseWorkspaces(registration_id, [code for code, on in choices.items() if on]))
    except WorkspacesAlreadyChosen:  # sent twice, or a concurrent submit won
        return _to_created(registration_id)
    except NotFound as error:
        return problem_page(error, step=STEP_WORKSPACES)
    return _to_created(registration_id)


def _workspaces_form(registration_id: str, choices: dict[str, bool], errors: dict[str, list[str]]):
    """The form (422 with `errors`); once the workspaces are chosen, the "created" page."""
    wiring = api.wiring()
    try:
        account = handlers.workspaces_to_choose(registration_id, wiring.uow(), wiring.structures)
    except WorkspacesAlreadyChosen:
        return _to_created(registration_id)
    except NotFound as error:
        return problem_page(error, step=STEP_WORKSPACES)
    page = render_template(
        "activate/workspaces.html",
        title=f"Bienvenue {account.first_name} {account.last_name}",
        step=STEP_WORKSPACES,
        account=account,
        workspaces=WORKSPACES,
        choices=choices,
        errors=errors,
        labels={f"ws-{w.code}": w.label for w in WORKSPACES},
    )
    return (page, 422) if errors else page


def _to_created(registration_id: str):
    return redirect(url_for(".created", registration_id=registration_id), code=303)


def _to_workspaces(registration_id: str):
    return redirect(url_for(".workspaces", registration_id=registration_id), code=303)


def _read_switches(form) -> tuple[dict[str, bool], dict[str, list[str]]]:
    """Each workspace's OUI/NON; a switch not sent keeps its default (the page checks one of each)."""
    choices: dict[str, bool] = {}
    errors: dict[str, list[str]] = {}
    for workspace in WORKSPACES:
        value = form.get(f"ws-{workspace.code}")
        choices[workspace.code] = workspace.default if value is None else value == ON
        if value not in (None, ON, OFF):
            errors[f"ws-{workspace.code}"] = [f"Choisissez OUI ou NON pour l'espace « {workspace.label} »."]
    return choices, errors


@bp.get("/registrations/<registration_id>/created")
def created(registration_id: str):
    wiring = api.wiring()
    try:
        account = handlers.account_created(registration_id, wiring.uow(), wiring.structures)
    except WorkspacesNotChosen:
        return _to_workspaces(registration_id)
    except NotFound as error:
        return problem_page(error, step=STEP_WORKSPACES)
    waiting = account.status in ATTACHMENT_STATES
    return render_template(
        "activate/created.html",
        title="Votre demande de rattachement" if waiting else "Votre compte est créé",
        step=STEP_WORKSPACES,
        account=account,
        active=account.is_active,
        link_expired=account.link_expired,
        validity=_validity(),
        attachment_status=account.status if waiting else None,
        attachment_validity=validity_in_words(wiring.settings.attachment_ttl_seconds),
    )


ATTACHMENT_STATES = (
    AccountStatus.AWAITING_APPROVAL,
    AccountStatus.REFUSED,
    AccountStatus.REQUEST_EXPIRED,
    AccountStatus.JOINED,
)


@bp.post("/registrations/<registration_id>/activation-email")
def resend(registration_id: str):
    """A new link (the old one stops working), asked from the created page."""
    try:
        account = api.resend(registration_id)
    except WorkspacesNotChosen:
        return _to_workspaces(registration_id)
    except AlreadyActive as error:
        return problem_page(error, step=STEP_ACTIVATION, title=ALREADY_ACTIVE_TITLE)
    except (NotFound, Conflict) as error:  # gone, or an attachment request not approved (or closed)
        return problem_page(error, step=STEP_ACTIVATION)
    return render_template(
        "activate/link_sent.html",
        title="Un nouveau lien d'activation vous a été envoyé",
        step=STEP_ACTIVATION,
        account=account,
        validity=_validity(),
    )


# --- a new link asked for by the login email ----------------------------------------------------


@bp.get("/activation-links")
def link_request():
    return _link_request_form("", {})


@bp.post("/activation-links")
def request_link():
    """The same page whatever the email: whether an account awaits activation with it is not told."""
    login_email = request.form.get("login_email", "")
    try:
        api.request_link(login_email)
    except Invalid as refused:
        return _link_request_form(login_email, dict(refused.errors)), 422
    return render_template(
        "activate/link_requested.html",
        title="Demande de nouveau lien enregistrée",
        step=STEP_ACTIVATION,
        message=LINK_REQUESTED,
        validity=_validity(),
    )


def _link_request_form(login_email: str, errors: dict[str, list[str]]):
    return render_template(
        "activate/link_request.html",
        title="Recevoir un nouveau lien d'activation",
        step=STEP_ACTIVATION,
        validity=_validity(),
        **login_email_request_fields(login_email, errors, {"login_email": LOGIN_EMAIL_LABEL}),
    )


def login_email_request_fields(
    login_email: str, errors: dict[str, list[str]], labels: dict[str, str]
) -> dict[str, object]:
    """What a request by login email (`login_email_request` in `activate/_forms.html`) shows: the
    email typed and its error, if any."""
    return {
        "login_email": login_email,
        "errors": errors,
        "labels": labels,
        "max_length": LOGIN_EMAIL_MAX_LENGTH,
    }


# --- step 4: the activation link -----------------------------------------------------------------


@bp.get("/activations/<token>")
def activation(token: str):
    try:
        account = api.open_link(token)
    except TokenGone as gone:
        return _link_gone(gone)
    except UnknownLink:
        return _unknown_link()
    return _render_activation(token, account, {}, {})


@bp.post("/activations/<token>")
def activate(token: str):
    form = request.form
    try:
        account = api.activate(
            handlers.ActivateAccount(
                token,
                password=form.get("password", ""),
                password_confirmation=form.get("password_confirmation", ""),
                secret_question=form.get("secret_question", ""),
                secret_answer=form.get("secret_answer", ""),
            )
        )
    except TokenGone as gone:
        return _link_gone(gone)
    except UnknownLink:
        return _unknown_link()
    except RefusedForm as refused:
        kept = {
            "secret_question": form.get("secret_question", ""),
            "secret_answer": form.get("secret_answer", ""),
        }
        return _render_activation(token, refused.account, kept, dict(refused.errors)), 422
    except Conflict as error:
        return problem_page(error, step=STEP_ACTIVATION)
    return render_template(
        "activate/activated.html",
        title="Votre compte est rattaché"
        if account.status is AccountStatus.JOINED
        else "Votre compte est actif",
        step=STEP_ACTIVATION,
        account=account,
        role=ROLE_LABELS.get(account.role, account.role or ""),
    )


def _render_activation(token: str, account: Account, form: dict[str, str], errors: dict[str, list[str]]):
    """The form; `form` holds what may be shown again: never the password nor its confirmation."""
    return render_template(
        "activate/activation.html",
        title="Activation du compte utilisateur",
        step=STEP_ACTIVATION,
        token=token,
        account=account,
        form=form,
        errors=errors,
        labels=LABELS,
        password_hint=PASSWORD_HINT,
        questions=[("", "Choisissez une question")] + [(q, q) for q in SECRET_QUESTIONS],
        existing_account=api.joins_an_active_account(account),
    )


def _link_gone(gone: TokenGone):
    """410: say what happened to the link, and what can be done next. A new link is asked for
    with the login email: nothing on the page names the account (no registration id)."""
    title = GONE_TITLES[gone.reason]
    next_step = api.after_dead_link(gone)
    if next_step is NextStep.NEW_LINK:
        message = (
            "Pour activer votre compte, demandez un nouveau lien en saisissant votre adresse électronique "
            f"de connexion : il y sera envoyé par courriel et restera valable {_validity()}."
        )
        page = render_template(
            "activate/link_gone.html",
            title=title,
            message=message,
            step=STEP_ACTIVATION,
            **login_email_request_fields("", {}, {"login_email": LOGIN_EMAIL_LABEL}),
        )
        return page, gone.status
    message = ALREADY_ACTIVE if next_step is NextStep.SIGN_IN else gone.message
    return problem_page(gone, STEP_ACTIVATION, title=title, message=message)


def _unknown_link():
    return problem_page(
        status=UnknownLink.status,
        step=STEP_ACTIVATION,
        title=UNKNOWN_LINK_TITLE,
        message=UNKNOWN_LINK_MESSAGE,
    )
