"""Step 2 as a web page: the person, the structure pre-filled from SIRENE, the features wanted.

Same handlers as the JSON API. A new bot challenge is drawn at every render (a challenge is
single-use: the one of a rejected form is spent), and a GET of the page gives a new image.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, redirect, render_template, request, url_for

from services.structure import domain, handlers
from services.structure.repository import Registration
from shared.errors import Conflict, Invalid, NotFound
from shared.web import country_names, page_blueprint

bp = page_blueprint("structure_pages", __name__, "structure")

LABELS = {
    "login_email": "Adresse électronique de connexion",
    "user.login_email_confirmation": "Ressaisissez votre adresse électronique de connexion",
    "user.last_name": "Nom",
    "user.first_name": "Prénom",
    "user.contact_email": "Adresse électronique de contact",
    "user.survey_consent": "Enquête de satisfaction",
    "identifier": "Identifiant",
    "structure.company_name": "Raison sociale",
    "structure.label": "Libellé de la structure",
    "structure.address": "Adresse",
    "structure.address_complement_1": "Complément adresse 1",
    "structure.address_complement_2": "Complément adresse 2",
    "structure.postal_code": "Code postal",
    "structure.city": "Ville",
    "structure.country": "Pays",
    "features.payment_requests": "Déposer des demandes de paiement",
    "features.dume": "Créer et/ou consulter des DUME",
    "captcha": "Entrez les caractères générés par l'image",
}

# In the error summary, where the field's own label would repeat its message.
SUMMARY_LABELS = {
    **LABELS,
    "user.login_email_confirmation": "Confirmation de l'adresse de connexion",
    "captcha": "Caractères de l'image",
}

TEXT_FIELDS = (
    "user.login_email_confirmation",
    "user.last_name",
    "user.first_name",
    "user.contact_email",
    *(f"structure.{name}" for name in domain.STRUCTURE_FIELDS),
    "structure.country",
)

IDENTIFIER_TYPES = {
    domain.SIRET: "SIRET",
    "UE_HORS_FRANCE": "numéro de TVA intracommunautaire",
    "HORS_UE": "identifiant hors Union européenne",
    "RIDET": "numéro RIDET",
    "TAHITI": "numéro TAHITI",
    "PARTICULIER": "particulier",
    "AUTRE": "structure en cours d'immatriculation ou autre",
}

UNKNOWN_REGISTRATION = (
    "Cette inscription n'existe pas ou a expiré. Recommencez la création de votre compte à l'étape 1."
)


def _deps():
    return current_app.extensions["structure"]


def _next_step(registration_id: str):
    return redirect(f"/activate/registrations/{registration_id}/workspaces", code=303)


@bp.get("/registrations/<registration_id>")
def step_two(registration_id: str):
    deps = _deps()
    try:
        registration = handlers.registration_form(
            registration_id, deps.repo, deps.settings.event_wait_seconds
        )
    except NotFound:
        return _unknown_registration()
    except Invalid as error:
        return _unusable_identifier(error)
    if registration.structure_id:
        return _next_step(registration_id)
    return _render(registration, _prefilled(registration), {})


@bp.post("/registrations/<registration_id>")
def confirm(registration_id: str):
    deps = _deps()
    form = request.form
    cmd = handlers.ConfirmStructure(
        registration_id=registration_id,
        structure=domain.StructureFields(
            **{name: form.get(f"structure.{name}", "") for name in domain.STRUCTURE_FIELDS},
            country=form.get("structure.country", ""),
        ),
        user=domain.UserForm(
            last_name=form.get("user.last_name", ""),
            first_name=form.get("user.first_name", ""),
            login_email_confirmation=form.get("user.login_email_confirmation", ""),
            contact_email=form.get("user.contact_email", ""),
            survey_consent=_checked(form, "user.survey_consent"),
        ),
        # The box is locked on the page: this feature is not the person's to drop.
        features=domain.Features(payment_requests=True, dume=_checked(form, "features.dume")),
        captcha_id=form.get("captcha_id") or None,
        captcha_answer=form.get("captcha", ""),
    )
    captchas = deps.captchas if deps.settings.captcha_enabled else None
    try:
        handlers.confirm_structure(
            cmd, deps.repo, deps.sirene, captchas, deps.clock, deps.settings.event_wait_seconds
        )
    except NotFound:
        return _unknown_registration()
    except Conflict as error:
        if error.message == handlers.ALREADY_CONFIRMED:
            return _next_step(registration_id)
        return _structure_exists(deps.repo.get(registration_id))
    except Invalid as error:
        registration = deps.repo.get(registration_id)
        if registration is None:
            return _unknown_registration()
        return _render(registration, _typed(form), error.errors), 422
    return _next_step(registration_id)


def _checked(form: Mapping[str, str], name: str) -> bool:
    return form.get(name) == "1"


def _prefilled(registration: Registration) -> dict[str, Any]:
    """The form's first values: SIRENE's for the structure, the login email for contact."""
    values: dict[str, Any] = {
        f"structure.{name}": getattr(registration.prefill, name) for name in domain.STRUCTURE_FIELDS
    }
    values["structure.country"] = registration.prefill.country or domain.DEFAULT_COUNTRY
    values["user.contact_email"] = registration.login_email
    return values


def _typed(form: Mapping[str, str]) -> dict[str, Any]:
    """What the person sent, to show again (the challenge's answer apart: its image is new)."""
    values: dict[str, Any] = {name: form.get(name, "") for name in TEXT_FIELDS}
    values["user.survey_consent"] = _checked(form, "user.survey_consent")
    values["features.dume"] = _checked(form, "features.dume")
    return values


def _render(registration: Registration, values: dict[str, Any], errors: dict[str, list[str]]):
    deps = _deps()
    captcha = None
    if deps.settings.captcha_enabled:
        issued = deps.captchas.issue()
        captcha = {
            "id": issued.captcha_id,
            "image_url": url_for("structure.CaptchaImage", captcha_id=issued.captcha_id),
        }
    identity = registration.identity
    return render_template(
        "structure/step2.html",
        title="Complétez les informations demandées",
        step=2,
        registration=registration,
        identifier_type=IDENTIFIER_TYPES.get(identity.identifier_type, identity.identifier_type),
        identity_country=dict(country_names()).get(identity.country, identity.country),
        values=values,
        errors=_in_page_order(errors),
        labels=LABELS,
        summary_labels=SUMMARY_LABELS,
        captcha=captcha,
    )


def _in_page_order(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """The errors as the fields come on the page, so the summary reads top to bottom."""
    order = {name: position for position, name in enumerate(LABELS)}
    return dict(sorted(errors.items(), key=lambda item: order.get(item[0], len(order))))


def _problem(status: int, title: str, message: str, step: int | None):
    return render_template("portal/problem.html", title=title, message=message, step=step), status


def _unknown_registration():
    return _problem(404, "Inscription introuvable", UNKNOWN_REGISTRATION, None)


def _unusable_identifier(error: Invalid):
    message = " ".join(m for msgs in error.errors.values() for m in msgs) or error.message
    return _problem(
        422,
        "Ce numéro ne permet pas de créer une structure",
        f"{message} Vérifiez le numéro de SIRET de votre entreprise et recommencez à l'étape 1.",
        2,
    )


def _structure_exists(registration: Registration | None):
    identifier_type = ""
    if registration is not None:
        kind = registration.identity.identifier_type
        identifier_type = IDENTIFIER_TYPES.get(kind, kind)
    return render_template(
        "structure/exists.html",
        title="Cette structure existe déjà",
        step=2,
        registration=registration,
        identifier_type=identifier_type,
    ), 409
