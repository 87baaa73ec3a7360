"""Steps 3 and 4 as web pages: workspaces, the account created, the activation link.

Same handlers as the JSON API. The activation token is in the path of the step 4 pages: it is
never logged (shared.redaction), never cached (`Cache-Control: no-store` on HTML), never sent
in a Referer (`Referrer-Policy: no-referrer`), and no link on these pages carries it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app, redirect, render_template, request, url_for

from services.activate import domain, handlers
from services.activate.domain import Account, TokenGone
from shared.contracts import ROLE_PRINCIPAL_MANAGER
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
}
PASSWORD_HINT = (
    "Au moins 8 caractères, dont au moins 3 des 4 types suivants : majuscules, minuscules, chiffres, "
    "caractères spéciaux (ponctuation, lettres accentuées…)."
)
ROLE_LABELS = {ROLE_PRINCIPAL_MANAGER: "gestionnaire principal"}
ON, OFF = "1", "0"

UNKNOWN_LINK_TITLE = "Ce lien d'activation n'est pas valable"
UNKNOWN_LINK_MESSAGE = (
    "Cette adresse ne correspond à aucun lien d'activation. Vérifiez que vous l'avez copiée en entier "
    "depuis le courriel d'activation reçu. Si le lien ne fonctionne toujours pas, demandez un nouveau "
    "lien depuis la page de confirmation de création de votre compte, ou recommencez la création de "
    "votre compte."
)
GONE_TITLES = {
    domain.TOKEN_EXPIRED: "Ce lien d'activation a expiré",
    domain.USED: "Ce lien d'activation a déjà été utilisé",
    domain.REPLACED: "Ce lien d'activation a été remplacé par un lien plus récent",
}
ALREADY_ACTIVE = (
    "Votre compte est déjà actif : connectez-vous avec votre adresse électronique de connexion et votre "
    "mot de passe."
)


def _deps():
    return current_app.extensions["activate"]


def _validity() -> str:
    return validity_in_words(_deps().settings.activation_ttl_seconds)


# --- step 3: workspaces --------------------------------------------------------------------------


@bp.get("/registrations/<registration_id>/workspaces")
def workspaces(registration_id: str):
    account, answer = _pending_account(registration_id)
    if answer is not None:
        return answer
    return _render_workspaces(account, {w.code: w.default for w in domain.WORKSPACES}, {})


@bp.post("/registrations/<registration_id>/workspaces")
def choose_workspaces(registration_id: str):
    deps = _deps()
    choices, errors = _read_switches(request.form)
    if errors:
        account, answer = _pending_account(registration_id)
        return answer if answer is not None else (_render_workspaces(account, choices, errors), 422)
    try:
        handlers.choose_workspaces(
            registration_id,
            [code for code, on in choices.items() if on],
            deps.repo,
            deps.clock,
            deps.settings,
        )
    except (NotFound, Conflict) as error:
        current = deps.repo.get_account(registration_id)
        if current is not None and current.status != domain.PENDING:  # sent twice, or a concurrent submit won
            return _to_created(registration_id)
        return problem_page(error, step=STEP_WORKSPACES)
    return _to_created(registration_id)


def _pending_account(registration_id: str):
    """The account still choosing its workspaces and None, or None and the answer to give: a
    problem page (unknown registration) or, once chosen, the "created" page."""
    deps = _deps()
    try:
        account = handlers.find_account(registration_id, deps.repo, deps.settings)
    except NotFound as error:
        return None, problem_page(error, step=STEP_WORKSPACES)
    if account.status != domain.PENDING:
        return None, _to_created(registration_id)
    return account, None


def _to_created(registration_id: str):
    return redirect(url_for(".created", registration_id=registration_id), code=303)


def _read_switches(form) -> tuple[dict[str, bool], dict[str, list[str]]]:
    """Each workspace's OUI/NON; a switch not sent keeps its default (the page checks one of each)."""
    choices: dict[str, bool] = {}
    errors: dict[str, list[str]] = {}
    for workspace in domain.WORKSPACES:
        value = form.get(f"ws-{workspace.code}")
        choices[workspace.code] = workspace.default if value is None else value == ON
        if value not in (None, ON, OFF):
            errors[f"ws-{workspace.code}"] = [f"Choisissez OUI ou NON pour l'espace « {workspace.label} »."]
    return choices, errors


def _render_workspaces(account: Account, choices: dict[str, bool], errors: dict[str, list[str]]):
    return render_template(
        "activate/workspaces.html",
        title=f"Bienvenue {account.first_name} {account.last_name}",
        step=STEP_WORKSPACES,
        account=account,
        workspaces=domain.WORKSPACES,
        choices=choices,
        errors=errors,
        labels={f"ws-{w.code}": w.label for w in domain.WORKSPACES},
    )


@bp.get("/registrations/<registration_id>/created")
def created(registration_id: str):
    deps = _deps()
    try:
        account = handlers.find_account(registration_id, deps.repo, deps.settings)
    except NotFound as error:
        return problem_page(error, step=STEP_WORKSPACES)
    if account.status == domain.PENDING:
        return redirect(url_for(".workspaces", registration_id=registration_id), code=303)
    return render_template(
        "activate/created.html",
        title="Votre compte est créé",
        step=STEP_WORKSPACES,
        account=account,
        active=account.status == domain.ACTIVE,
        link_expired=account.status == domain.EXPIRED,
        validity=_validity(),
    )


@bp.post("/registrations/<registration_id>/activation-email")
def resend(registration_id: str):
    """A new link (the old one stops working), asked from the created page or a dead link's page."""
    deps = _deps()
    current = deps.repo.get_account(registration_id)
    if current is not None and current.status == domain.PENDING:
        return redirect(url_for(".workspaces", registration_id=registration_id), code=303)
    try:
        account = handlers.resend_activation_link(registration_id, deps.repo, deps.clock, deps.settings)
    except Conflict as error:
        return _page("Votre compte est déjà actif", error.message, error.status)
    except NotFound as error:
        return problem_page(error, step=STEP_ACTIVATION)
    return render_template(
        "activate/link_sent.html",
        title="Un nouveau lien d'activation vous a été envoyé",
        step=STEP_ACTIVATION,
        account=account,
        validity=_validity(),
    )


# --- step 4: the activation link -----------------------------------------------------------------


@bp.get("/activations/<token>")
def activation(token: str):
    deps = _deps()
    try:
        account = handlers.open_activation(token, deps.repo, deps.clock)
    except TokenGone as error:
        return _link_gone(error)
    except NotFound:
        return _unknown_link()
    return _render_activation(token, account, {}, {})


@bp.post("/activations/<token>")
def activate(token: str):
    deps = _deps()
    form = request.form
    try:
        account = handlers.activate_account(
            token,
            password=form.get("password", ""),
            password_confirmation=form.get("password_confirmation", ""),
            secret_question=form.get("secret_question", ""),
            secret_answer=form.get("secret_answer", ""),
            repo=deps.repo,
            clock=deps.clock,
            hasher=deps.hasher,
        )
    except TokenGone as error:
        return _link_gone(error)
    except NotFound:
        return _unknown_link()
    except Invalid as error:
        try:
            shown = handlers.open_activation(token, deps.repo, deps.clock)
        except TokenGone as gone:  # the link died while the form was being checked
            return _link_gone(gone)
        kept = {
            "secret_question": form.get("secret_question", ""),
            "secret_answer": form.get("secret_answer", ""),
        }
        return _render_activation(token, shown, kept, dict(error.errors)), 422
    except Conflict as error:
        return problem_page(error, step=STEP_ACTIVATION)
    return render_template(
        "activate/activated.html",
        title="Votre compte est actif",
        step=STEP_ACTIVATION,
        account=account,
        role=ROLE_LABELS.get(account.role or "", account.role or ""),
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
        questions=[("", "Choisissez une question")] + [(q, q) for q in domain.SECRET_QUESTIONS],
    )


def _link_gone(error: TokenGone):
    """410: say what happened to the link; offer a new one unless the account is already active."""
    title = GONE_TITLES.get(error.reason, GONE_TITLES[domain.TOKEN_EXPIRED])
    account = _deps().repo.get_account(error.registration_id)
    if account is None or account.status == domain.ACTIVE:
        return _page(title, ALREADY_ACTIVE if account else error.message, error.status)
    message = (
        "Pour activer votre compte, demandez un nouveau lien : il vous sera envoyé par courriel à votre "
        f"adresse électronique de connexion et restera valable {_validity()}."
    )
    return _page(
        title,
        message,
        error.status,
        action_url=url_for(".resend", registration_id=error.registration_id),
        action_label="Recevoir un nouveau lien",
    )


def _unknown_link():
    return _page(UNKNOWN_LINK_TITLE, UNKNOWN_LINK_MESSAGE, NotFound.status)


def _page(title: str, message: str, status: int, **context: Any):
    return render_template(
        "portal/problem.html", title=title, message=message, step=STEP_ACTIVATION, **context
    ), status
