"""Step 2 as a web page: the person, the structure pre-filled from SIRENE, the features wanted.

Same handlers as the JSON API. A new bot challenge is drawn at every render (a challenge is
single-use: the one of a rejected form is spent), and a GET of the page gives a new image.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import redirect, render_template, request

from services.identify.wording import wording_of
from services.structure import api, domain, handlers
from services.structure.domain import (
    AlreadyConfirmed,
    Refused,
    Registration,
    StructureExists,
    UnknownRegistration,
    UnusableIdentifier,
)
from shared.web import country_names, page_blueprint, problem_page

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

CHECK_THE_SIRET = "Vérifiez le numéro de SIRET de votre entreprise et recommencez à l'étape 1."
UNKNOWN_REGISTRATION = (
    "Cette inscription n'existe pas ou a expiré. Recommencez la création de votre compte à l'étape 1."
)


def next_step(registration_id: str):
    return redirect(f"/activate/registrations/{registration_id}/workspaces", code=303)


@bp.get("/registrations/<registration_id>")
def step_two(registration_id: str):
    try:
        registration = api.form(registration_id)
    except UnknownRegistration as error:
        return unknown_registration(error)
    except UnusableIdentifier as error:
        return unusable_identifier(error)
    if registration.confirmed:
        return next_step(registration_id)  # back on step 2 afterwards: straight on to step 3
    if api.existing_structure(registration) is not None:  # never taken over: ask to join it
        return redirect(f"/structure/registrations/{registration_id}/attachment", code=303)
    return _render(registration, _prefilled(registration), {})


@bp.post("/registrations/<registration_id>")
def confirm(registration_id: str):
    form = request.form
    command = handlers.ConfirmStructure(
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
    try:
        api.confirm(command)
    except UnknownRegistration as error:
        return unknown_registration(error)
    except AlreadyConfirmed:
        return next_step(registration_id)
    except StructureExists as error:
        return _structure_exists(error)
    except Refused as error:
        return _render(error.registration, _typed(form), error.errors), 422
    return next_step(registration_id)


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


def page_captcha(registration_id: str) -> dict[str, str] | None:
    """The challenge a form page shows, when one is asked for: a new one at every render (the
    last one is spent), for this registration, which keeps only its latest few. Its image is
    drawn when the page's <img> loads it, its audio said when the page's player plays it;
    `new_url` is where the page's script asks for another one."""
    if not api.captcha_required():
        return None
    issued = api.new_captcha(registration_id)
    return {
        "id": issued.captcha_id,
        "image_url": api.captcha_image_url(issued),
        "audio_url": api.captcha_audio_url(issued),
        "new_url": api.new_captcha_url(registration_id),
    }


def _render(registration: Registration, values: dict[str, Any], errors: dict[str, list[str]]):
    captcha = page_captcha(registration.registration_id)
    identity = registration.identity
    return render_template(
        "structure/step2.html",
        title="Complétez les informations demandées",
        step=2,
        registration=registration,
        # The type's name and expected format, as step 1 words them (services/identify/wording.py).
        identifier_wording=wording_of(identity.identifier_type),
        private_person=domain.is_private_person(identity),
        being_registered=domain.is_being_registered(identity),
        identity_country=dict(country_names()).get(identity.country, identity.country),
        values=values,
        errors=in_page_order(errors),
        labels=LABELS,
        summary_labels=SUMMARY_LABELS,
        captcha=captcha,
    )


def in_page_order(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """The errors as the fields come on the page, so the summary reads top to bottom."""
    order = {name: position for position, name in enumerate(LABELS)}
    return dict(sorted(errors.items(), key=lambda item: order.get(item[0], len(order))))


def unknown_registration(error: UnknownRegistration):
    return problem_page(error, title="Inscription introuvable", message=UNKNOWN_REGISTRATION)


def unusable_identifier(error: UnusableIdentifier):
    return problem_page(
        error,
        step=2,
        title="Ce numéro ne permet pas de créer une structure",
        message=f"{error.message} {CHECK_THE_SIRET}",
    )


def _structure_exists(error: StructureExists):
    identity = error.registration.identity
    kind = wording_of(identity.identifier_type).name
    return problem_page(
        error,
        step=2,
        title="Cette structure existe déjà",
        message=(
            f"Une structure ayant l'identifiant {identity.identifier} ({kind}) a déjà été créée sur le "
            "portail par une autre personne : elle ne peut pas être créée une seconde fois, et votre "
            "compte n'y a pas été ajouté. Demandez votre rattachement à cette structure : son "
            "gestionnaire principal, la personne qui l'a créée sur le portail, valide les demandes "
            "de rattachement."
        ),
    )
