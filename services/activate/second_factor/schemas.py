"""The authenticator app's request and answer schemas (and their OpenAPI); its confirmation takes
sign-in's `CodeSchema`."""

from __future__ import annotations

from marshmallow import fields

from services.activate.schemas import SECRET_MAX
from shared.schemas import Length, PortalSchema


class EnrolmentSchema(PortalSchema):
    secret = fields.String(metadata={"description": "La clé (base32), pour la saisir à la main."})
    otpauth_uri = fields.String()
    qr_svg = fields.String(metadata={"description": "Le QR code de `otpauth_uri`, élément <svg> à insérer."})
    expires_at = fields.String(metadata={"description": "Fin de validité de l'association (ISO 8601, UTC)."})


class SecondFactorStandingSchema(PortalSchema):
    enrolled = fields.Boolean()
    recovery_codes_left = fields.Integer()
    pending = fields.Boolean(metadata={"description": "Une association attend son premier code."})


class RecoveryCodesSchema(PortalSchema):
    recovery_codes = fields.List(
        fields.String(),
        metadata={"description": "Dix codes de secours à usage unique, montrés cette fois seulement."},
    )


class CurrentPasswordSchema(PortalSchema):
    current_password = fields.String(required=True, validate=Length(max=SECRET_MAX))
