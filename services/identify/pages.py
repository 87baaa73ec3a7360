"""Step 1 as a web page: « Vous êtes nouveau ? ». Same handler as the JSON API."""

from __future__ import annotations

from pathlib import Path

from flask import redirect, render_template, request

from services.identify import api, handlers, wording
from shared.errors import Invalid
from shared.web import page_blueprint

bp = page_blueprint("identify_pages", __name__, "identify")
# `/identify/static/identifier-formats.js`: shows the format of the type chosen (the page lists
# them all without JavaScript).
bp.static_folder = str(Path(__file__).parent / "static")
bp.static_url_path = "/static"

LABELS = {
    "login_email": "Adresse électronique de connexion",
    "siret": "Numéro de SIRET",
    "identifier_type": "Type d'identifiant",
    "identifier": "Identifiant de la structure",
    "country": "Pays",
}


@bp.get("/")
def step_one():
    """The form, with the SIRET filled in when « Je ne connais pas mon SIRET » chose one
    (`?siret=`: up to 20 digits and spaces, or it is ignored)."""
    chosen = request.args.get("siret", "")
    well_formed = 0 < len(chosen) <= 20 and set(chosen) <= set("0123456789 ")
    return _render({"siret": chosen} if well_formed else {}, {})


@bp.post("/")
def start():
    form = request.form
    without_siret = form.get("no_siret") == "1"
    command = handlers.StartRegistration(
        login_email=form.get("login_email", "")[:254],
        identifier=(form.get("identifier") if without_siret else form.get("siret", "")) or "",
        identifier_type=form.get("identifier_type", "AUTRE") if without_siret else "SIRET",
        country=(form.get("country") or None) if without_siret else None,
    )
    try:
        registration = api.start(command)
    except Invalid as error:
        errors = dict(error.errors)
        if not without_siret and "identifier" in errors:
            errors["siret"] = errors.pop("identifier")
        return _render(form, errors), 422
    return redirect(f"/structure/registrations/{registration.registration_id}", code=303)


def _render(form, errors):
    return render_template(
        "identify/step1.html",
        title="Vous êtes nouveau ?",
        step=1,
        form=form,
        errors=errors,
        labels=LABELS,
        identifier_types=[(kind.code, kind.option) for kind in wording.WITHOUT_SIRET],
        identifier_formats=wording.WITHOUT_SIRET,
        siret_format=wording.BY_CODE["SIRET"].expected_format,
    )
