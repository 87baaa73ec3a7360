"""« Mot de passe oublié »'s request and answer schemas (they also make its OpenAPI document)."""

from __future__ import annotations

from marshmallow import fields

from services.activate.domain import LOGIN_EMAIL_MAX_LENGTH
from services.activate.schemas import SECRET_MAX
from shared.schemas import Length, PortalSchema


class PasswordResetRequestSchema(PortalSchema):
    login_email = fields.String(
        required=True,
        validate=Length(max=LOGIN_EMAIL_MAX_LENGTH),
        metadata={"description": "L'adresse électronique de connexion du compte."},
    )


class PasswordResetRequestedSchema(PortalSchema):
    """202, the same whatever the email: nothing tells whether an active account uses it."""

    status = fields.String(metadata={"description": "accepted"})
    message = fields.String()


class PasswordResetPageSchema(PortalSchema):
    secret_question = fields.String(metadata={"description": "La question choisie à l'activation."})


def _secret(description: str) -> fields.String:
    # Missing fields default to "" so that the rules name every faulty field in one answer.
    return fields.String(
        load_default="", validate=Length(max=SECRET_MAX), metadata={"description": description}
    )


class ResetPasswordSchema(PortalSchema):
    secret_answer = _secret("La réponse à la question secrète (majuscules et espaces en trop ignorés)")
    password = _secret(
        "8 à 128 caractères, au moins 3 des 4 types ; ni trop courant ni tiré du nom ou de l'adresse"
    )
    password_confirmation = _secret("Le même mot de passe")


class PasswordResetDoneSchema(PortalSchema):
    status = fields.String(metadata={"description": "changed"})
    message = fields.String()


class ResetLinkGoneSchema(PortalSchema):
    """410: the link expired, was used, replaced, refused 5 answers, or was never issued. Nothing
    in it names the account: a new link is asked for with the login email."""

    code = fields.Integer()
    status = fields.String()
    message = fields.String()
    reason = fields.String(metadata={"description": "expired, used, replaced, locked ou unknown"})
