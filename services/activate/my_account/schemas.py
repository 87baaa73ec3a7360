"""« Mon compte »'s request and answer schemas (they also make its part of the OpenAPI document)."""

from __future__ import annotations

from marshmallow import fields

from services.activate.domain import LOGIN_EMAIL_MAX_LENGTH
from services.activate.schemas import SECRET_MAX
from shared.schemas import Count, Length, PortalSchema


class MyStructureRoleSchema(PortalSchema):
    structure_id = fields.String()
    role = fields.String(metadata={"description": "GESTIONNAIRE_PRINCIPAL ou UTILISATEUR"})
    company_name = fields.String(metadata={"description": "La raison sociale de la structure"})


class MeSchema(PortalSchema):
    """The signed-in account."""

    account_id = fields.String()
    login_email = fields.String(metadata={"description": "L'identifiant de connexion : il ne change jamais."})
    contact_email = fields.String(metadata={"description": "Où vont les notifications."})
    last_name = fields.String()
    first_name = fields.String()
    structures = fields.List(
        fields.Nested(MyStructureRoleSchema),
        metadata={
            "description": "Les structures du compte et son rôle dans chacune : la première est celle de "
            "son inscription, les suivantes celles qu'il a rejointes par une demande de rattachement."
        },
    )
    company_name = fields.String(
        metadata={
            "description": "La raison sociale de la structure, telle que saisie à l'étape 2 ; vide pour "
            "les comptes plus anciens que ce champ."
        }
    )
    workspaces = fields.List(fields.String(), metadata={"description": "Les codes des espaces ouverts."})


class MyWorkspacesChangeSchema(PortalSchema):
    workspaces = fields.List(
        fields.String(validate=Length(max=64)),
        required=True,
        validate=Count(max=50),
        metadata={"description": "Les codes de tous les espaces ouverts désormais (ceux de l'étape 3)."},
    )


class MyWorkspacesSchema(PortalSchema):
    workspaces = fields.List(fields.String())


def _secret(description: str) -> fields.String:
    # "" when missing, so that the rules name every faulty field in one answer (as at step 4).
    return fields.String(
        load_default="", validate=Length(max=SECRET_MAX), metadata={"description": description}
    )


class MyPasswordChangeSchema(PortalSchema):
    current_password = _secret("Le mot de passe actuel")
    password = _secret("Le nouveau mot de passe : les règles de l'étape 4")
    password_confirmation = _secret("Le même nouveau mot de passe")


class MySecretQuestionChangeSchema(PortalSchema):
    current_password = _secret("Le mot de passe actuel")
    secret_question = _secret("Le texte d'une des questions proposées à l'étape 4")
    secret_answer = _secret("100 caractères au plus")


class MyDeactivationSchema(PortalSchema):
    current_password = _secret("Le mot de passe actuel")


class MyContactEmailRequestSchema(PortalSchema):
    contact_email = fields.String(
        required=True,
        validate=Length(max=LOGIN_EMAIL_MAX_LENGTH),
        metadata={"description": "La nouvelle adresse de contact : un lien de confirmation y est envoyé."},
    )


class MyContactEmailRequestedSchema(PortalSchema):
    """202: the link is on its way; the contact email changes once it is opened."""

    status = fields.String(metadata={"description": "sent"})
    contact_email = fields.String(metadata={"description": "L'adresse à confirmer"})
    expires_at = fields.DateTime(metadata={"description": "La fin de validité du lien"})


class ContactEmailConfirmedSchema(PortalSchema):
    contact_email = fields.String()


class MyAccountDoneSchema(PortalSchema):
    status = fields.String()


class ContactLinkGoneSchema(PortalSchema):
    """410: the link was used, replaced by a newer one, expired, or its account is no longer active."""

    code = fields.Integer()
    status = fields.String()
    message = fields.String()
    reason = fields.String(metadata={"description": "used, replaced, expired ou closed"})
