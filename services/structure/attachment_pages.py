"""The attachment request as a web page: step 2 for an identifier that already has a structure.

The step-2 page sends the newcomer here as soon as it opens; the page names the structure (its
name and town, nothing private), keeps the person's block and the bot challenge, and offers
« Demander mon rattachement ». Same handler as the JSON API."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request

from services.structure import api, attachment_api, domain, handlers, pages
from services.structure.attachment import NoStructureToJoin
from services.structure.domain import (
    AlreadyConfirmed,
    Refused,
    Registration,
    UnknownRegistration,
    UnusableIdentifier,
)
from shared.web import page_blueprint

bp = page_blueprint("structure_attachment_pages", __name__, "structure")

PERSON_FIELDS = ("user.login_email_confirmation", "user.last_name", "user.first_name", "user.contact_email")


def _step_two(registration_id: str):
    return redirect(f"/structure/registrations/{registration_id}", code=303)


@bp.get("/registrations/<registration_id>/attachment")
def attachment_form(registration_id: str):
    try:
        registration = api.form(registration_id)
    except UnknownRegistration as error:
        return pages.unknown_registration(error)
    except UnusableIdentifier as error:
        return pages.unusable_identifier(error)
    if registration.confirmed:
        return pages.next_step(registration_id)
    existing = api.existing_structure(registration)
    if existing is None:  # nothing to join (any more): the structure can be created
        return _step_two(registration_id)
    return _render(registration, existing, {"user.contact_email": registration.login_email}, {})


@bp.post("/registrations/<registration_id>/attachment")
def request_attachment(registration_id: str):
    form = request.form
    command = handlers.RequestAttachment(
        registration_id=registration_id,
        user=domain.UserForm(
            last_name=form.get("user.last_name", ""),
            first_name=form.get("user.first_name", ""),
            login_email_confirmation=form.get("user.login_email_confirmation", ""),
            contact_email=form.get("user.contact_email", ""),
            survey_consent=form.get("user.survey_consent") == "1",
        ),
        captcha_id=form.get("captcha_id") or None,
        captcha_answer=form.get("captcha", ""),
    )
    try:
        attachment_api.request(command)
    except UnknownRegistration as error:
        return pages.unknown_registration(error)
    except (AlreadyConfirmed, NoStructureToJoin):
        return _step_two(registration_id)  # step 2 shows where the registration stands
    except Refused as error:
        existing = api.existing_structure(error.registration)
        if existing is None:
            return _step_two(registration_id)
        typed: dict[str, Any] = {name: form.get(name, "") for name in PERSON_FIELDS}
        typed["user.survey_consent"] = form.get("user.survey_consent") == "1"
        return _render(error.registration, existing, typed, error.errors), 422
    return pages.next_step(registration_id)


def _render(
    registration: Registration,
    existing: domain.ExistingStructure,
    values: dict[str, Any],
    errors: dict[str, list[str]],
):
    return render_template(
        "structure/attachment.html",
        title="Cette structure existe déjà",
        step=2,
        registration=registration,
        existing=existing,
        values=values,
        errors=pages.in_page_order(errors),
        labels=pages.LABELS,
        summary_labels=pages.SUMMARY_LABELS,
        captcha=pages.page_captcha(registration.registration_id),
    )
