"""`GET /structure/api/companies`: the company search of « Je ne connais pas mon SIRET », as JSON
(what the step-1 page's suggestions read while a person types)."""

from __future__ import annotations

from dataclasses import asdict

from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.error_handler import ErrorSchema
from marshmallow import EXCLUDE, fields

from services.structure import companies
from services.structure.sirene.model import MASKED, CompanyResults
from shared.bootstrap import wiring_of
from shared.schemas import Length, PortalSchema

TEXT_MAX = 500  # above every limit of `companies`: only keeps oversized values from going further

RETRY_AFTER = {"Retry-After": {"description": "Secondes à attendre", "schema": {"type": "integer"}}}

blp = Blueprint(
    "structure_companies",
    __name__,
    url_prefix="/structure/api",
    description="Step 1's help: find a company's SIRET by its name, SIREN or SIRET",
)


class CompanySearchQuerySchema(PortalSchema):
    """Shaped here; the rules (required, lengths, the postal code's form) are `companies`'."""

    class Meta:
        unknown = EXCLUDE  # other query parameters (a cache buster…) are ignored

    q = fields.String(
        load_default="",
        validate=Length(max=TEXT_MAX),
        metadata={
            "description": f"Nom, SIREN ou SIRET de l'entreprise (obligatoire, {companies.QUERY_MIN} à "
            f"{companies.QUERY_MAX} caractères ; un numéro saisi par groupes est recherché d'un bloc)"
        },
    )
    postal_code = fields.String(
        load_default="",
        validate=Length(max=TEXT_MAX),
        metadata={"description": "Code postal de l'établissement, 5 chiffres (facultatif)"},
    )
    city = fields.String(
        load_default="",
        validate=Length(max=TEXT_MAX),
        metadata={"description": f"Ville de l'établissement ({companies.CITY_MAX} caractères au plus)"},
    )


class CompanyHitSchema(PortalSchema):
    siret = fields.String(metadata={"description": "14 chiffres"})
    company_name = fields.String(
        metadata={"description": f"Dénomination ; « {MASKED} » pour une unité non diffusible"}
    )
    address = fields.String()
    postal_code = fields.String()
    city = fields.String()
    open = fields.Boolean(
        metadata={"description": "Faux pour un établissement fermé : il ne peut pas être choisi"}
    )


class CompanyResultsSchema(PortalSchema):
    results = fields.List(
        fields.Nested(CompanyHitSchema),
        metadata={"description": f"Les {companies.RESULTS_SHOWN} premiers établissements trouvés"},
    )
    total = fields.Integer(metadata={"description": "Le nombre d'établissements trouvés en tout"})


def search(q: str, postal_code: str = "", city: str = "") -> CompanyResults:
    """The search with this process's register, for the API and the page alike."""
    return companies.search_companies(q, postal_code, city, wiring_of().register)


@blp.route("/companies")
class Companies(MethodView):
    @blp.arguments(CompanySearchQuerySchema, location="query")
    @blp.response(200, CompanyResultsSchema)
    @blp.alt_response(
        429, schema=ErrorSchema, headers=RETRY_AFTER, description="Trop de recherches depuis cette adresse"
    )
    @blp.alt_response(
        503, schema=ErrorSchema, headers=RETRY_AFTER, description="Aucune source ne peut chercher maintenant"
    )
    def get(self, query):
        """Establishments by company name, SIREN or SIRET, optionally in one postal code or city.

        Open and closed establishments are listed (`open`); only an open one can be chosen at
        step 1."""
        found = search(query["q"], query["postal_code"], query["city"])
        return {"results": [asdict(hit) for hit in found.results], "total": found.total}
