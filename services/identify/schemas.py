"""identify's request and answer schemas (they also make its OpenAPI document)."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validates_schema

from services.identify.domain import IDENTIFIER_TYPES, PARTICULIER
from shared.schemas import Length, PortalSchema


class StartRegistrationSchema(PortalSchema):
    login_email = fields.String(required=True, validate=Length(max=254))
    identifier_type = fields.String(
        load_default="SIRET",
        validate=Length(max=20),
        metadata={"description": f"Type d'identifiant : {', '.join(IDENTIFIER_TYPES)} (SIRET par défaut)"},
    )
    identifier = fields.String(
        load_default="",
        allow_none=True,
        validate=Length(max=64),
        metadata={
            "description": "L'identifiant de la structure (obligatoire, sauf pour un particulier : "
            "PARTICULIER n'en a pas, un identifiant envoyé est ignoré)"
        },
    )
    country = fields.String(
        load_default=None,
        allow_none=True,
        validate=Length(max=2),
        metadata={
            "description": "Pays, code ISO 3166 à deux lettres : déduit du numéro pour SIRET, "
            "UE_HORS_FRANCE, RIDET et TAHITI ; obligatoire pour HORS_UE ; FR par défaut sinon"
        },
    )

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _identifier_unless_private_person(self, data, original_data, **kwargs) -> None:
        """Named with the other missing fields: every type but PARTICULIER sends an identifier."""
        if not isinstance(original_data, dict):
            return  # not an object at all: that is the one error
        kind = str(data.get("identifier_type") or "").strip().upper()
        if kind != PARTICULIER and "identifier" not in original_data:
            raise ValidationError(self.fields["identifier"].error_messages["required"], "identifier")


class RegistrationCreatedSchema(PortalSchema):
    registration_id = fields.String()
    status = fields.String()


class RegistrationSchema(PortalSchema):
    registration_id = fields.String()
    login_email = fields.String()
    identifier_type = fields.String()
    identifier = fields.String()
    country = fields.String()
    status = fields.String()
