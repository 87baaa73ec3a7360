"""A row of the stock files (StockEtablissement joined with its StockUniteLegale row) as an
`Establishment`. Columns are read by name: INSEE appends new ones at the end."""

from __future__ import annotations

from services.structure.sirene.addresses import Row, company_name, street_line, value
from services.structure.sirene.model import Establishment

ESTABLISHMENTS_FILE = "StockEtablissement_utf8.csv"
LEGAL_UNITS_FILE = "StockUniteLegale_utf8.csv"


def establishment_from_rows(establishment: Row, unit: Row | None) -> Establishment:
    """Join a StockEtablissement row with its StockUniteLegale row (None when missing).

    A unit or establishment that is not fully diffusible (statutDiffusion other than "O")
    asked INSEE not to publish it: only its postal code and city are kept, never its name or
    street, which are an individual's personal data.
    """
    open_ = value(establishment, "etatAdministratifEtablissement") == "A" and (
        value(unit, "etatAdministratifUniteLegale") != "C"
    )
    diffusible = value(establishment, "statutDiffusionEtablissement") == "O" and (
        unit is None or value(unit, "statutDiffusionUniteLegale") == "O"
    )
    postal_code = value(establishment, "codePostalEtablissement")
    city = value(establishment, "libelleCommuneEtablissement") or value(
        establishment, "libelleCommuneEtrangerEtablissement"
    )
    siret = value(establishment, "siret")
    if not diffusible:
        return Establishment(siret, open_, False, "", "", "", "", "", postal_code, city)
    return Establishment(
        siret=siret,
        open=open_,
        diffusible=True,
        company_name=company_name(unit),
        label=value(establishment, "denominationUsuelleEtablissement")
        or value(establishment, "enseigne1Etablissement"),
        address=street_line(
            value(establishment, "numeroVoieEtablissement"),
            value(establishment, "indiceRepetitionEtablissement"),
            value(establishment, "typeVoieEtablissement"),
            value(establishment, "libelleVoieEtablissement"),
            value(establishment, "dernierNumeroVoieEtablissement"),
            value(establishment, "indiceRepetitionDernierNumeroVoieEtablissement"),
        ),
        address_complement_1=value(establishment, "complementAdresseEtablissement"),
        address_complement_2=value(establishment, "distributionSpecialeEtablissement"),
        postal_code=postal_code,
        city=city,
    )
