"""The data of every domain event: the contract between services.

Each schema lists what a consumer may rely on. Loading is tolerant of unknown fields so that
a producer can add facts without breaking older consumers.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

ROLE_PRINCIPAL_MANAGER = "GESTIONNAIRE_PRINCIPAL"
LINK_REASONS = ("created", "resent")  # why a link went out: step 3, or a resend


class _EventData(Schema):
    class Meta:
        unknown = INCLUDE

    registration_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class RegistrationStarted(_EventData):
    login_email = fields.Email(required=True)
    identifier_type = fields.String(required=True)
    identifier = fields.String(required=True)
    country = fields.String(required=True, validate=validate.Length(equal=2))


class _StructureFacts(Schema):
    class Meta:
        unknown = INCLUDE

    identifier_type = fields.String(required=True)
    identifier = fields.String(required=True)
    country = fields.String(required=True)
    company_name = fields.String(required=True)
    label = fields.String(allow_none=True)
    address = fields.String(required=True)
    address_complement_1 = fields.String(allow_none=True)
    address_complement_2 = fields.String(allow_none=True)
    postal_code = fields.String(required=True)
    city = fields.String(required=True)


class _PersonFacts(Schema):
    class Meta:
        unknown = INCLUDE

    last_name = fields.String(required=True)
    first_name = fields.String(required=True)
    login_email = fields.Email(required=True)
    contact_email = fields.Email(required=True)
    survey_consent = fields.Boolean(required=True)


class _Features(Schema):
    class Meta:
        unknown = INCLUDE

    payment_requests = fields.Boolean(required=True)
    dume = fields.Boolean(required=True)


class StructureConfirmed(_EventData):
    structure_id = fields.String(required=True)
    structure = fields.Nested(_StructureFacts, required=True)
    user = fields.Nested(_PersonFacts, required=True)
    features = fields.Nested(_Features, required=True)


class WorkspacesChosen(_EventData):
    account_id = fields.String(required=True)
    workspaces = fields.List(fields.String(), required=True)
    token_expires_at = fields.DateTime(required=True)


class ActivationLinkIssued(_EventData):
    """Asks notify to email a link. The token is sealed with SECRET_KEY, never in clear."""

    account_id = fields.String(required=True)
    login_email = fields.Email(required=True)
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)
    sealed_token = fields.String(required=True)
    token_expires_at = fields.DateTime(required=True)
    ttl_seconds = fields.Integer(required=True)
    reason = fields.String(required=True, validate=validate.OneOf(LINK_REASONS))


class RegistrationAttemptOnExistingAccount(_EventData):
    """Step 3 or a resend for a login email that an active account already uses.

    The newcomer's answer is the same as for a free email, and no link is sent: notify tells the
    account's holder instead. `first_name`/`last_name` are the holder's (None if unknown);
    `token_expires_at` is when the link would have expired, so that the registration's status
    moves as it would have. Nothing secret.
    """

    login_email = fields.Email(required=True)
    first_name = fields.String(load_default=None, allow_none=True)
    last_name = fields.String(load_default=None, allow_none=True)
    attempted_at = fields.DateTime(required=True)
    token_expires_at = fields.DateTime(required=True)
    reason = fields.String(required=True, validate=validate.OneOf(LINK_REASONS))


class ActivationTokenExpired(_EventData):
    account_id = fields.String(required=True)
    token_expires_at = fields.DateTime(required=True)


class AccountActivated(_EventData):
    account_id = fields.String(required=True)
    structure_id = fields.String(required=True)
    role = fields.String(required=True)


class RegistrationExpired(_EventData):
    pass


_SCHEMAS: dict[str, Schema] = {
    cls.__name__: cls()
    for cls in (
        RegistrationStarted,
        StructureConfirmed,
        WorkspacesChosen,
        ActivationLinkIssued,
        RegistrationAttemptOnExistingAccount,
        ActivationTokenExpired,
        AccountActivated,
        RegistrationExpired,
    )
}


def schema_for(event_type: str) -> Schema | None:
    return _SCHEMAS.get(event_type)
