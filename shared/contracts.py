"""The data of every domain event: the contract between services.

Each schema lists what a consumer may rely on. Loading is tolerant of unknown fields so that
a producer can add facts without breaking older consumers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from marshmallow import INCLUDE, Schema, fields, validate


class Role(StrEnum):
    GESTIONNAIRE_PRINCIPAL = "GESTIONNAIRE_PRINCIPAL"
    UTILISATEUR = "UTILISATEUR"


class LinkReason(StrEnum):
    """Why an activation link went out: step 3, a resend, or an attachment request approved."""

    CREATED = "created"
    RESENT = "resent"
    APPROVED = "approved"


ROLE_PRINCIPAL_MANAGER = Role.GESTIONNAIRE_PRINCIPAL
LINK_REASONS = tuple(LinkReason)


class _EventData(Schema):
    class Meta:
        unknown = INCLUDE

    registration_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class RegistrationStartedData(_EventData):
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


class StructureConfirmedData(_EventData):
    """`claim_expires_at`: when the structure is released unless its first account is activated
    by then (STRUCTURE_CLAIM_TTL_SECONDS); absent from older events, which set no deadline."""

    structure_id = fields.String(required=True)
    structure = fields.Nested(_StructureFacts, required=True)
    user = fields.Nested(_PersonFacts, required=True)
    features = fields.Nested(_Features, required=True)
    claim_expires_at = fields.DateTime(load_default=None, allow_none=True)
    # False when no SIRENE source could check the SIRET: the structure is checked later, and
    # StructureFlagged follows if SIRENE does not know it or it is closed. Absent: checked.
    verified = fields.Boolean(load_default=True)


class _ToHolderData(_EventData):
    """An event that asks notify to email the account's holder: the account, and the login email
    and the person's names that the email is addressed with."""

    account_id = fields.String(required=True)
    login_email = fields.Email(required=True)
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)


class _LinkToHolderData(_ToHolderData):
    """… with a link whose token is sealed with SECRET_KEY, never in clear."""

    sealed_token = fields.String(required=True)
    token_expires_at = fields.DateTime(required=True)
    ttl_seconds = fields.Integer(required=True)


class WorkspacesChosenData(_EventData):
    """`token_expires_at`: when the account's first link expires; None for an attachment request,
    whose link waits for the gestionnaire principal's approval (ApprovalRequested)."""

    account_id = fields.String(required=True)
    workspaces = fields.List(fields.String(), required=True)
    token_expires_at = fields.DateTime(required=True, allow_none=True)


class ActivationLinkIssuedData(_LinkToHolderData):
    """Asks notify to email a link. The token is sealed with SECRET_KEY, never in clear."""

    reason = fields.String(required=True, validate=validate.OneOf(LINK_REASONS))


class RegistrationAttemptOnExistingAccountData(_EventData):
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


class ActivationTokenExpiredData(_EventData):
    account_id = fields.String(required=True)
    token_expires_at = fields.DateTime(required=True)


class AccountActivatedData(_EventData):
    account_id = fields.String(required=True)
    structure_id = fields.String(required=True)
    role = fields.String(required=True)


class RegistrationExpiredData(_EventData):
    pass


FLAG_REASONS = ("unknown", "closed")


class StructureFlaggedData(_EventData):
    """A structure opened while no SIRENE source could check its SIRET, checked since: SIRENE
    does not know it (`reason` unknown) or the establishment is closed (`closed`). The structure
    is released like an unclaimed one: its pending account will not be activated, and notify
    tells the person at the login email."""

    structure_id = fields.String(required=True)
    identifier = fields.String(required=True)
    reason = fields.String(required=True, validate=validate.OneOf(FLAG_REASONS))
    # None when the registration, and with it the address to write to, is no longer kept.
    login_email = fields.Email(required=True, allow_none=True)
    flagged_at = fields.DateTime(required=True)


class StructureReleasedData(_EventData):
    """A structure whose first account was not activated in time: its identifier is free again,
    and the pending account of its registration expires with it."""

    structure_id = fields.String(required=True)
    identifier_type = fields.String(required=True)
    identifier = fields.String(required=True)
    released_at = fields.DateTime(required=True)


# --- joining an existing structure (structure, activate) ------------------------------------------


class AttachmentRequestedData(_EventData):
    """Step 2 of a registration whose identifier already has a structure: the newcomer asks to
    join it (structure). `company_name` is the structure's, for the emails; `user` the newcomer as
    step 2 checked them. activate opens the registration's pending account, as StructureConfirmed
    does, to become an UTILISATEUR of the structure once its gestionnaire principal approves."""

    attachment_request_id = fields.String(required=True)
    structure_id = fields.String(required=True)
    company_name = fields.String(required=True)
    user = fields.Nested(_PersonFacts, required=True)
    features = fields.Nested(_Features, required=True)
    requested_at = fields.DateTime(required=True)


class _AttachmentFacts(_ToHolderData):
    """An attachment request's event: the request, its structure, and the newcomer (`login_email`,
    names) whom notify writes to."""

    attachment_request_id = fields.String(required=True)
    structure_id = fields.String(required=True)
    company_name = fields.String(required=True)


class ApprovalRequestedData(_AttachmentFacts):
    """Step 3 done for an attachment request: it waits for the structure's gestionnaire principal,
    whom notify emails (« Demande de rattachement ») at `manager_email` (their contact address)
    with the newcomer's name and login email only. `manager_email` is None when the structure has
    no active gestionnaire principal yet: the request waits all the same, unannounced."""

    manager_email = fields.Email(required=True, allow_none=True)
    manager_first_name = fields.String(load_default=None, allow_none=True)
    manager_last_name = fields.String(load_default=None, allow_none=True)
    expires_at = fields.DateTime(required=True)


class AttachmentApprovedData(_AttachmentFacts):
    """The gestionnaire principal approved: the activation link follows (ActivationLinkIssued,
    reason `approved`), which tells the newcomer. Opened, it activates the newcomer's account, or,
    when the login email already has an active account, joins that one to the structure once its
    password is given (AccountActivated, then, names that account)."""

    decided_at = fields.DateTime(required=True)


class AttachmentRefusedData(_AttachmentFacts):
    """The gestionnaire principal refused, with an optional `reason` that notify emails to the
    newcomer; the registration ends (`refused`)."""

    reason = fields.String(load_default=None, allow_none=True)
    decided_at = fields.DateTime(required=True)


class AttachmentExpiredData(_AttachmentFacts):
    """Not decided within ATTACHMENT_TTL_SECONDS: the request is closed, notify tells the
    newcomer, the registration expires."""

    expired_at = fields.DateTime(required=True)


class UserDetachedData(_EventData):
    """A gestionnaire principal detached a user from their structure (« Mon compte »): the user's
    account (`registration_id`, `account_id`) no longer belongs to `structure_id`; when it was its
    only structure, the account is deactivated too (AccountDeactivated). Ids only."""

    account_id = fields.String(required=True)
    structure_id = fields.String(required=True)


# --- « Mon compte » (activate): an active account changed by its holder ---------------------------


class WorkspacesChangedData(_EventData):
    """An active account's workspaces changed from « Mon compte »: all those now open, in the
    catalogue's order (as in WorkspacesChosen)."""

    account_id = fields.String(required=True)
    workspaces = fields.List(fields.String(), required=True)


PASSWORD_CHANGE_REASONS = ("change", "reset")


class PasswordChangedData(_ToHolderData):
    """An active account's password changed: from « Mon compte », the current one given
    (`change`), or through « mot de passe oublié » (`reset`). notify emails the notice « Votre
    mot de passe a été modifié » to the login email, which is why the event names it and the
    person. Never the password nor its hash."""

    reason = fields.String(required=True, validate=validate.OneOf(PASSWORD_CHANGE_REASONS))


class ContactEmailChangeRequestedData(_LinkToHolderData):
    """Asks notify to email the new contact address (`contact_email`) a confirmation link; the
    token is sealed with SECRET_KEY, never in clear. `login_email` names the account in the email,
    so that whoever receives it can tell whether the request is theirs."""

    contact_email = fields.Email(required=True)


class ContactEmailChangedData(_EventData):
    """The new contact address was confirmed from its link (ids only: the address is activate's)."""

    account_id = fields.String(required=True)


class AccountDeactivatedData(_EventData):
    """The holder deactivated their account: every session ended, the login email free again.

    `registration_ids`: every registration whose records name the person (the account's own and
    those of the attachment requests it joined structures by), whose personal data each service
    erases from its own keys. Absent from older events: `registration_id` alone."""

    account_id = fields.String(required=True)
    structure_id = fields.String(required=True)
    registration_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)), load_default=None, allow_none=True
    )


def deactivated_registrations(data: dict[str, Any]) -> list[str]:
    """The registrations an AccountDeactivated's data (as loaded) names for erasure, its own first."""
    named = data.get("registration_ids") or []
    return list(dict.fromkeys([data["registration_id"], *named]))


# --- sign-in and the second factor (activate) -----------------------------------------------------

SIGN_IN_METHODS = ("email_code", "totp", "recovery_code")
SIGN_IN_FAILURE_STAGES = ("password", "code")
SECOND_FACTOR_METHODS = ("totp",)


class SignInCodeIssuedData(_ToHolderData):
    """Asks notify to email a sign-in code to the login email. The code is sealed with SECRET_KEY
    (as ActivationLinkIssued's token), never in clear."""

    sealed_code = fields.String(required=True)
    code_expires_at = fields.DateTime(required=True)
    ttl_seconds = fields.Integer(required=True)


class SignedInData(_EventData):
    """A session started, after the password and the second factor `method`. Ids only."""

    account_id = fields.String(required=True)
    method = fields.String(required=True, validate=validate.OneOf(SIGN_IN_METHODS))


class SignInFailedData(_EventData):
    """A wrong password, or a wrong code, for an existing active account (an unknown email makes
    no event). Ids only."""

    account_id = fields.String(required=True)
    stage = fields.String(required=True, validate=validate.OneOf(SIGN_IN_FAILURE_STAGES))


class AccountLockedData(_ToHolderData):
    """Too many failures in a row: sign-in is refused until `locked_until` (a temporary lock).
    notify tells the holder at the login email, which is why the event names it and the person."""

    locked_until = fields.DateTime(required=True)


class SecondFactorEnrolledData(_ToHolderData):
    """An authenticator app now signs the account in (confirmed by a first code); notify sends a
    notice to the login email. Never the secret nor a recovery code."""

    method = fields.String(required=True, validate=validate.OneOf(SECOND_FACTOR_METHODS))


class SecondFactorRemovedData(SecondFactorEnrolledData):
    """The authenticator app was removed (the current password given); the emailed code is back."""


# --- « Mot de passe oublié » (activate) ------------------------------------------------------------


class PasswordResetRequestedData(_LinkToHolderData):
    """Asks notify to email a single-use password reset link to the login email of an active
    account. The token is sealed with SECRET_KEY (as ActivationLinkIssued's), never in clear; an
    email that no active account uses makes no event."""


# --- the events as objects: what a producer builds and the unit of work publishes ---------------


@dataclass(frozen=True)
class DomainEvent:
    """One event of the contract; its class name is its type, its fields are its data."""

    registration_id: str

    @property
    def type(self) -> str:
        return type(self).__name__

    def data(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _ToHolder(DomainEvent):
    """An event whose email goes to the account's holder (as `_ToHolderData`)."""

    account_id: str
    login_email: str
    first_name: str
    last_name: str


@dataclass(frozen=True)
class _LinkToHolder(_ToHolder):
    """… with a sealed link (as `_LinkToHolderData`)."""

    sealed_token: str
    token_expires_at: str
    ttl_seconds: int


@dataclass(frozen=True)
class RegistrationStarted(DomainEvent):
    login_email: str
    identifier_type: str
    identifier: str
    country: str


@dataclass(frozen=True)
class StructureConfirmed(DomainEvent):
    structure_id: str
    structure: dict[str, Any]
    user: dict[str, Any]
    features: dict[str, bool]
    claim_expires_at: str | None = None
    verified: bool = True


@dataclass(frozen=True)
class WorkspacesChosen(DomainEvent):
    account_id: str
    workspaces: list[str]
    token_expires_at: str | None


@dataclass(frozen=True)
class ActivationLinkIssued(_LinkToHolder):
    reason: str


@dataclass(frozen=True)
class RegistrationAttemptOnExistingAccount(DomainEvent):
    login_email: str
    first_name: str | None
    last_name: str | None
    attempted_at: str
    token_expires_at: str
    reason: str


@dataclass(frozen=True)
class ActivationTokenExpired(DomainEvent):
    account_id: str
    token_expires_at: str


@dataclass(frozen=True)
class AccountActivated(DomainEvent):
    account_id: str
    structure_id: str
    role: str


@dataclass(frozen=True)
class RegistrationExpired(DomainEvent):
    pass


@dataclass(frozen=True)
class StructureReleased(DomainEvent):
    structure_id: str
    identifier_type: str
    identifier: str
    released_at: str


@dataclass(frozen=True)
class StructureFlagged(DomainEvent):
    structure_id: str
    identifier: str
    reason: str
    login_email: str | None
    flagged_at: str


@dataclass(frozen=True)
class AttachmentRequested(DomainEvent):
    attachment_request_id: str
    structure_id: str
    company_name: str
    user: dict[str, Any]
    features: dict[str, bool]
    requested_at: str


@dataclass(frozen=True)
class _Attachment(_ToHolder):
    attachment_request_id: str
    structure_id: str
    company_name: str


@dataclass(frozen=True)
class ApprovalRequested(_Attachment):
    manager_email: str | None
    manager_first_name: str | None
    manager_last_name: str | None
    expires_at: str


@dataclass(frozen=True)
class AttachmentApproved(_Attachment):
    decided_at: str


@dataclass(frozen=True)
class AttachmentRefused(_Attachment):
    reason: str | None
    decided_at: str


@dataclass(frozen=True)
class AttachmentExpired(_Attachment):
    expired_at: str


@dataclass(frozen=True)
class UserDetached(DomainEvent):
    account_id: str
    structure_id: str


@dataclass(frozen=True)
class WorkspacesChanged(DomainEvent):
    account_id: str
    workspaces: list[str]


@dataclass(frozen=True)
class PasswordChanged(_ToHolder):
    reason: str


@dataclass(frozen=True)
class ContactEmailChangeRequested(_LinkToHolder):
    contact_email: str


@dataclass(frozen=True)
class ContactEmailChanged(DomainEvent):
    account_id: str


@dataclass(frozen=True)
class AccountDeactivated(DomainEvent):
    account_id: str
    structure_id: str
    registration_ids: list[str] | None = None


@dataclass(frozen=True)
class SignInCodeIssued(_ToHolder):
    sealed_code: str
    code_expires_at: str
    ttl_seconds: int


@dataclass(frozen=True)
class SignedIn(DomainEvent):
    account_id: str
    method: str


@dataclass(frozen=True)
class SignInFailed(DomainEvent):
    account_id: str
    stage: str


@dataclass(frozen=True)
class AccountLocked(_ToHolder):
    locked_until: str


@dataclass(frozen=True)
class SecondFactorEnrolled(_ToHolder):
    method: str


@dataclass(frozen=True)
class SecondFactorRemoved(_ToHolder):
    method: str


@dataclass(frozen=True)
class PasswordResetRequested(_LinkToHolder):
    pass


_SCHEMAS: dict[str, Schema] = {
    schema.__name__.removesuffix("Data"): schema()
    for schema in (
        RegistrationStartedData,
        StructureConfirmedData,
        WorkspacesChosenData,
        ActivationLinkIssuedData,
        RegistrationAttemptOnExistingAccountData,
        ActivationTokenExpiredData,
        AccountActivatedData,
        RegistrationExpiredData,
        StructureReleasedData,
        StructureFlaggedData,
        AttachmentRequestedData,
        ApprovalRequestedData,
        AttachmentApprovedData,
        AttachmentRefusedData,
        AttachmentExpiredData,
        UserDetachedData,
        WorkspacesChangedData,
        PasswordChangedData,
        ContactEmailChangeRequestedData,
        ContactEmailChangedData,
        AccountDeactivatedData,
        SignInCodeIssuedData,
        SignedInData,
        SignInFailedData,
        AccountLockedData,
        SecondFactorEnrolledData,
        SecondFactorRemovedData,
        PasswordResetRequestedData,
    )
}


def schema_for(event_type: str) -> Schema | None:
    return _SCHEMAS.get(event_type)
