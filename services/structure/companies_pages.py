"""« Je ne connais pas mon SIRET », without JavaScript: `GET /structure/entreprises?q=…` shows the
search form and what it found; choosing an open establishment goes back to step 1 with its SIRET
filled in. Same search as `GET /structure/api/companies`.

The blueprint also serves `/structure/static/company-search.js` (and its style sheet): the
step-1 page loads it to turn the same form into suggestions while typing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from babel.numbers import format_decimal
from flask import render_template, request
from stdnum.fr import siret as siret_number

from services.structure import companies
from services.structure.companies_api import TEXT_MAX, search
from services.structure.sirene.model import MASKED, CompanyHit, CompanyResults
from shared.errors import Invalid
from shared.web import page_blueprint

bp = page_blueprint("structure_companies_pages", __name__, "structure")
bp.static_folder = str(Path(__file__).parent / "static")
bp.static_url_path = "/static"

STEP_ONE = "/identify/"
FIELDS = ("q", "postal_code", "city")
LABELS = {
    "q": "Nom, SIREN ou SIRET de l'entreprise",
    "postal_code": "Code postal",
    "city": "Ville",
}
MASKED_NAME = "Entreprise non diffusible"


@dataclass(frozen=True)
class ShownHit:
    """One establishment as the page shows it."""

    siret: str
    siret_formatted: str
    company_name: str
    address: str
    place: str
    open: bool
    choose_url: str | None  # back to step 1 with this SIRET; None for a closed establishment


@bp.get("/entreprises")
def search_page():
    typed = {name: request.args.get(name, "")[:TEXT_MAX] for name in FIELDS}
    if not any(name in request.args for name in FIELDS):
        return _render(typed)
    try:
        found = search(typed["q"], typed["postal_code"], typed["city"])
    except Invalid as error:
        return _render(typed, errors=error.errors), 422
    except companies.SearchUnavailable as error:
        return _render(typed, unavailable=error.message), error.status, error.headers
    return _render(typed, found=found)


def shown(hit: CompanyHit) -> ShownHit:
    return ShownHit(
        siret=hit.siret,
        siret_formatted=siret_number.format(hit.siret),
        company_name=MASKED_NAME if hit.company_name in ("", MASKED) else hit.company_name,
        address="" if hit.address == MASKED else hit.address,
        place=" ".join(part for part in (hit.postal_code, hit.city) if part and part != MASKED),
        open=hit.open,
        choose_url=f"{STEP_ONE}?{urlencode({'siret': hit.siret})}" if hit.open else None,
    )


def _render(
    typed: dict[str, str],
    *,
    errors: dict[str, list[str]] | None = None,
    found: CompanyResults | None = None,
    unavailable: str | None = None,
):
    return render_template(
        "structure/companies.html",
        title="Trouver le numéro de SIRET de votre entreprise",
        step=1,
        typed=typed,
        errors=errors or {},
        labels=LABELS,
        hits=[shown(hit) for hit in found.results] if found else [],
        total=found.total if found else 0,
        total_text=format_decimal(found.total, locale="fr_FR") if found else "",
        searched=found is not None,
        unavailable=unavailable,
        step_one=STEP_ONE,
        query_max=companies.QUERY_MAX,
        city_max=companies.CITY_MAX,
    )
