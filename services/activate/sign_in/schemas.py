"""Sign-in's request and answer schemas (and their OpenAPI)."""

from __future__ import annotations

from marshmallow import fields

from services.activate.domain import LOGIN_EMAIL_MAX_LENGTH
from services.activate.schemas import SECRET_MAX
from services.activate.sign_in.codes import MAX_CODE_LENGTH
from services.activate.sign_in.domain import Method
from shared.schemas import Length, OneOf, PortalSchema


class SignInSchema(PortalSchema):
    login_email = fields.String(
        required=True,
        validate=Length(max=LOGIN_EMAIL_MAX_LENGTH),
        metadata={"description": "L'adresse électronique de connexion."},
    )
    password = fields.String(required=True, validate=Length(max=SECRET_MAX))
    method = fields.String(
        load_default=None,
        validate=[OneOf([Method.EMAIL_CODE.value]), Length(max=len(Method.EMAIL_CODE.value))],
        metadata={
            "description": "`email_code` : envoyer un code par courriel même quand une application "
            "d'authentification est associée au compte (sinon, aucun code n'est envoyé : le code de "
            "l'application ou un code de secours est attendu)."
        },
    )


class ChallengeSchema(PortalSchema):
    challenge_id = fields.String(metadata={"description": "À rappeler dans `POST /sign-in/{challenge_id}`."})
    methods = fields.List(
        fields.String(),
        metadata={"description": "Possibles pour ce compte : `email_code`, et `totp` avec une application."},
    )
    email_code_sent = fields.Boolean(metadata={"description": "Un code est envoyé à l'adresse de connexion."})
    expires_at = fields.String(metadata={"description": "Fin de validité de la demande (ISO 8601, UTC)."})


class CodeSchema(PortalSchema):
    code = fields.String(
        required=True,
        validate=Length(max=MAX_CODE_LENGTH),
        metadata={
            "description": "Le code reçu par courriel, le code de l'application (6 chiffres) ou un code de "
            "secours (XXXX-XXXX-XXXX-XXXX)."
        },
    )


class StructureRoleSchema(PortalSchema):
    structure_id = fields.String()
    role = fields.String()
    company_name = fields.String()


class SignedInSchema(PortalSchema):
    account_id = fields.String()
    role = fields.String()
    structures = fields.List(fields.Nested(StructureRoleSchema))


class SignOutQuerySchema(PortalSchema):
    everywhere = fields.Boolean(
        load_default=False,
        metadata={"description": "`1` : mettre fin à toutes les sessions du compte, celle-ci comprise."},
    )
