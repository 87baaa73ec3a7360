"""activate's request and answer schemas (they also make its OpenAPI document)."""

from __future__ import annotations

from marshmallow import fields

from services.activate.domain import LOGIN_EMAIL_MAX_LENGTH
from shared.schemas import Count, Length, PortalSchema


class WorkspaceSchema(PortalSchema):
    code = fields.String()
    label = fields.String()
    description = fields.String()
    default = fields.Boolean()


class OfferedWorkspaces(fields.List):
    """The workspaces offered are a constant (a tuple of frozen dataclasses): serialised once,
    not on every request (it was a tenth of step 3's read)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._serialised: dict[tuple, list] = {}

    def _serialize(self, value, attr, obj, **kwargs):
        if not isinstance(value, tuple):
            return super()._serialize(value, attr, obj, **kwargs)
        if value not in self._serialised:
            self._serialised[value] = super()._serialize(value, attr, obj, **kwargs)
        return self._serialised[value]


class WorkspacesPageSchema(PortalSchema):
    """Step 3's page: « BIENVENUE {Prénom} {Nom} — Votre compte utilisateur {email} a été créé »."""

    registration_id = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    login_email = fields.String()
    status = fields.String()
    workspaces = OfferedWorkspaces(fields.Nested(WorkspaceSchema))


class ChooseWorkspacesSchema(PortalSchema):
    workspaces = fields.List(
        fields.String(validate=Length(max=64)),
        load_default=None,
        validate=Count(max=50),
        metadata={"description": "Codes des espaces ouverts ; absent : les espaces ouverts par défaut."},
    )


class AccountCreatedSchema(PortalSchema):
    account_id = fields.String()


class LinkSentSchema(PortalSchema):
    status = fields.String()


class LinkRequestSchema(PortalSchema):
    login_email = fields.String(
        required=True,
        validate=Length(max=LOGIN_EMAIL_MAX_LENGTH),
        metadata={"description": "L'adresse électronique de connexion du compte à activer."},
    )


class LinkRequestedSchema(PortalSchema):
    """202, the same whatever the email: nothing tells whether an account uses it."""

    status = fields.String(metadata={"description": "accepted"})
    message = fields.String()


class ActivationPageSchema(PortalSchema):
    login_email = fields.String()
    contact_email = fields.String()
    last_name = fields.String()
    first_name = fields.String()
    secret_questions = fields.List(fields.String())
    existing_account = fields.Boolean(
        metadata={
            "description": "Vrai pour une demande de rattachement acceptée dont l'adresse a déjà un compte "
            "actif : seul le mot de passe de ce compte est demandé, pour le rattacher à la structure"
        }
    )


SECRET_MAX = 1024


def _secret(description: str) -> fields.String:
    # Missing fields default to "" so that the rules name every faulty field in one answer. The
    # bound is above the rules' own limits (128 characters for a password, 100 for an answer),
    # which `domain` reports with its own message.
    return fields.String(
        load_default="", validate=Length(max=SECRET_MAX), metadata={"description": description}
    )


class ActivateSchema(PortalSchema):
    password = _secret(
        "8 à 128 caractères, au moins 3 des 4 types ; ni trop courant ni tiré du nom ou de l'adresse"
    )
    password_confirmation = _secret("Le même mot de passe")
    secret_question = _secret("Le texte d'une des questions proposées")
    secret_answer = _secret("100 caractères au plus")


class ActivatedSchema(PortalSchema):
    status = fields.String()
    role = fields.String()
    structure_id = fields.String()
    account_id = fields.String()


class TokenGoneSchema(PortalSchema):
    """410: the link expired, was used or was replaced. Nothing in it names the account: a new
    link is asked for with the login email (`POST /activate/api/activation-links`)."""

    code = fields.Integer()
    status = fields.String()
    message = fields.String()
    reason = fields.String(metadata={"description": "expired, used ou replaced"})
