"""« Mon compte »: the rules of what the holder of an active account changes. Pure, like the
account's (`services/activate/domain.py`): no Redis, no Flask, no clock (the time is passed in).

What can change: the workspaces (step 3's catalogue and rules), the password (the current one
given, step 4's rules), the secret question and answer (step 4's questions, the answer normalised
as at step 4), the contact email (confirmed by a link sent to the new address) and whether the
account is active at all. The login email never changes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email

from services.activate import domain
from services.activate.catalogue import SECRET_QUESTIONS
from services.activate.domain import (
    ANSWER_MAX_LENGTH,
    LOGIN_EMAIL_MAX_LENGTH,
    Account,
    AccountStatus,
    NewLink,
    sealed_link,
    to_holder,
)
from shared.contracts import (
    AccountDeactivated,
    ContactEmailChanged,
    ContactEmailChangeRequested,
    PasswordChanged,
    Role,
    WorkspacesChanged,
)
from shared.errors import Conflict, Gone, Invalid, NotFound, Unauthorized

CONTACT_LINK_TTL_SECONDS = 24 * 3600
"""How long a link confirming a new contact email works: a day, so that a person who asks for the
change at work can confirm it from a personal mailbox in the evening. Not a setting: nothing in
the contract names it."""

WRONG_CURRENT_PASSWORD = "Le mot de passe actuel est incorrect."
MISSING_CURRENT_PASSWORD = "Saisissez votre mot de passe actuel."


# --- the account as « Mon compte » sees it --------------------------------------------------------


def ensure_active(account: Account | None) -> Account:
    """The account behind a session; a session whose account is gone or no longer active is no
    session at all (401: sign in again)."""
    if account is None or not account.is_active:
        raise Unauthorized()
    return account


# --- workspaces ---------------------------------------------------------------------------------------


def change_workspaces(account: Account, codes: Iterable[str]) -> tuple[Account, WorkspacesChanged | None]:
    """The workspaces open from now on, by step 3's rules (`domain.kept_workspaces`: known codes,
    the catalogue's order). The same set again changes nothing and announces nothing."""
    workspaces = domain.kept_workspaces(list(codes))
    if workspaces == account.workspaces:
        return account, None
    changed = replace(account, workspaces=workspaces)
    return changed, WorkspacesChanged(
        registration_id=account.registration_id, account_id=account.account_id, workspaces=list(workspaces)
    )


# --- password and secret question ---------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordChange:
    """A password change as typed: the current password and the new one, both normalised as
    step 4 hashes them (NFKC), and the form's faults found without the stored hash."""

    current_password: str
    password: str
    errors: dict[str, list[str]]


def check_password_change(
    current_password: str, password: str, password_confirmation: str, personal: Iterable[str | None] = ()
) -> PasswordChange:
    """Every fault of the form but whether the current password is right (`verify` is for the
    handler: it needs the stored hash)."""
    errors: dict[str, list[str]] = {}
    current = domain.normalise_password(current_password)
    new = domain.normalise_password(password)
    if not current:
        errors["current_password"] = [MISSING_CURRENT_PASSWORD]
    if problems := domain.password_problems(new, personal):
        errors["password"] = problems
    elif current and new == current:
        errors["password"] = ["Choisissez un mot de passe différent du mot de passe actuel."]
    if not password_confirmation:
        errors["password_confirmation"] = ["Confirmez le nouveau mot de passe."]
    elif domain.normalise_password(password_confirmation) != new:
        errors["password_confirmation"] = ["La confirmation ne correspond pas au nouveau mot de passe."]
    return PasswordChange(current, new, errors)


@dataclass(frozen=True)
class SecretQuestionChange:
    current_password: str
    secret_question: str
    secret_answer: str  # normalised as step 4 hashes it (`domain.normalise_answer`)
    errors: dict[str, list[str]]


def check_secret_question_change(
    current_password: str, secret_question: str, secret_answer: str
) -> SecretQuestionChange:
    """Step 4's rules for the question (one of those offered) and the answer (present, 100
    characters at most), and the current password present."""
    errors: dict[str, list[str]] = {}
    current = domain.normalise_password(current_password)
    if not current:
        errors["current_password"] = [MISSING_CURRENT_PASSWORD]
    question = " ".join(unicodedata.normalize("NFC", secret_question).split())
    if not question:
        errors["secret_question"] = ["Choisissez une question secrète."]
    elif question not in SECRET_QUESTIONS:
        errors["secret_question"] = ["Choisissez une question secrète dans la liste proposée."]
    answer = domain.normalise_answer(secret_answer)
    if not answer:
        errors["secret_answer"] = ["La réponse à la question secrète est obligatoire."]
    elif len(answer) > ANSWER_MAX_LENGTH:
        errors["secret_answer"] = [
            f"La réponse à la question secrète doit contenir au plus {ANSWER_MAX_LENGTH} caractères."
        ]
    return SecretQuestionChange(current, question, answer, errors)


def refused(message: str, errors: dict[str, list[str]], current_password_right: bool) -> Invalid | None:
    """The form's faults, with the current password's when it is wrong; None when there is none.
    `current_password_right` is only read when the current password was typed."""
    errors = dict(errors)
    if "current_password" not in errors and not current_password_right:
        errors["current_password"] = [WRONG_CURRENT_PASSWORD]
    return Invalid(message, errors) if errors else None


def password_changed(account: Account, reason: str = "change") -> PasswordChanged:
    """What notify needs to tell the holder, at the login email, that the password changed."""
    return PasswordChanged(**to_holder(account), reason=reason)


# --- contact email ------------------------------------------------------------------------------------


def check_contact_email(raw: str, account: Account) -> str:
    """The new contact address, normalised by email-validator (as step 2 normalises it)."""
    address = raw.strip()
    if not address:
        raise Invalid.on("contact_email", "Saisissez la nouvelle adresse électronique de contact.")
    if len(address) > LOGIN_EMAIL_MAX_LENGTH:
        raise Invalid.on(
            "contact_email",
            f"L'adresse électronique doit contenir au plus {LOGIN_EMAIL_MAX_LENGTH} caractères.",
        )
    try:
        normalised = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        raise Invalid.on(
            "contact_email", "Cette adresse électronique n'est pas valide : vérifiez l'adresse saisie."
        ) from None
    if domain.login_key(normalised) == domain.login_key(account.contact_email):
        raise Invalid.on("contact_email", "C'est déjà votre adresse électronique de contact.")
    return normalised


class ContactLinkState(StrEnum):
    ISSUED = "issued"
    USED = "used"
    REPLACED = "replaced"  # a newer change was asked for
    EXPIRED = "expired"  # never stored: an issued link past its expiry


@dataclass(frozen=True)
class ContactLink:
    """What is stored of a link confirming a new contact email: the token's hash, never the token."""

    token_hash: str
    registration_id: str
    contact_email: str
    expires_at: int
    state: ContactLinkState = ContactLinkState.ISSUED

    def state_at(self, now: float) -> ContactLinkState:
        if self.state is ContactLinkState.ISSUED and now >= self.expires_at:
            return ContactLinkState.EXPIRED
        return self.state


class UnknownContactLink(NotFound):
    default_message = (
        "Ce lien de confirmation est inconnu : vérifiez que vous l'avez copié en entier depuis le "
        "courriel reçu."
    )


_GONE = {
    ContactLinkState.USED: "Ce lien de confirmation a déjà été utilisé : l'adresse électronique de contact "
    "a été modifiée.",
    ContactLinkState.REPLACED: "Ce lien de confirmation a été remplacé par un lien plus récent : utilisez le "
    "dernier courriel reçu.",
    ContactLinkState.EXPIRED: "Ce lien de confirmation a expiré. Demandez à nouveau le changement d'adresse "
    "depuis « Mon compte ».",
}
CLOSED_ACCOUNT = "Ce lien de confirmation n'est plus valable : le compte n'est plus actif."


class ContactLinkGone(Gone):
    """410: a link that existed and no longer works (`reason`: used, replaced, expired, closed)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def ensure_contact_link_opens(link: ContactLink | None, account: Account | None, now: float) -> Account:
    """The account whose contact email the link changes, when it may change it now."""
    if link is None:
        raise UnknownContactLink()
    state = link.state_at(now)
    if state is not ContactLinkState.ISSUED:
        raise ContactLinkGone(state, _GONE[state])
    if account is None or not account.is_active:
        raise ContactLinkGone("closed", CLOSED_ACCOUNT)
    return account


def new_contact_link(
    account: Account, contact_email: str, link: NewLink
) -> tuple[ContactLink, ContactEmailChangeRequested]:
    """The link's record (its hash) and the event that asks notify to email it (sealed)."""
    record = ContactLink(link.token_hash, account.registration_id, contact_email, link.expires_at)
    return record, ContactEmailChangeRequested(
        **to_holder(account), **sealed_link(link), contact_email=contact_email
    )


def confirm_contact_email(account: Account, link: ContactLink) -> tuple[Account, ContactEmailChanged]:
    changed = replace(account, contact_email=link.contact_email)
    return changed, ContactEmailChanged(
        registration_id=account.registration_id, account_id=account.account_id
    )


# --- deactivation ---------------------------------------------------------------------------------------


class PrincipalManagerStays(Conflict):
    """A structure has one manager today, its gestionnaire principal: they cannot leave it."""

    default_message = (
        "Vous êtes le gestionnaire principal de votre structure : votre compte ne peut pas être désactivé "
        "tant que la structure n'a pas d'autre gestionnaire. Pour désactiver votre compte, désignez "
        "d'abord un autre gestionnaire."
    )


def can_leave(account: Account) -> bool:
    return all(m.role is not Role.GESTIONNAIRE_PRINCIPAL for m in account.memberships)


def ensure_can_leave(account: Account) -> Account:
    if not can_leave(account):
        raise PrincipalManagerStays()
    return account


def deactivate(account: Account) -> tuple[Account, AccountDeactivated]:
    """The account deactivated and its event. Asked by its holder, `ensure_can_leave` comes first;
    a structure found closed or unknown to SIRENE deactivates it whatever its role.

    The event carries ids only: every registration whose records name the person
    (`registrations_of`), for each service to erase its own."""
    closed = replace(account, status=AccountStatus.DEACTIVATED)
    return closed, AccountDeactivated(
        registration_id=account.registration_id,
        account_id=account.account_id,
        structure_id=account.structure_id,
        registration_ids=list(registrations_of(account)),
    )


# --- erasure (RGPD art. 17) -------------------------------------------------------------------------


def registrations_of(account: Account) -> tuple[str, ...]:
    """The registrations whose accounts name the person: this one, and the attachment requests
    approved for its login email once it was active (their accounts closed as `joined`)."""
    return tuple(dict.fromkeys((account.registration_id, *account.joined_registrations)))


def anonymised(account: Account) -> Account:
    """What is kept of an account once its personal data is erased: an anonymous record of the
    account (its ids, its structures and roles, its status and dates). Its names, emails, survey
    consent, features and workspaces are gone, and the structures' names too (a private
    person's structure is named after them): the structure ids lead to them while they exist."""
    return replace(
        account,
        last_name="",
        first_name="",
        login_email="",
        contact_email="",
        survey_consent=False,
        company_name="",
        features={},
        workspaces=(),
        token_hash=None,
        token_expires_at=None,
        other_memberships=tuple(replace(m, company_name="") for m in account.other_memberships),
    )


def is_erased(account: Account) -> bool:
    """Whether the account's personal data was erased already (a login email is never empty)."""
    return not account.login_email


class NoActiveAccount(NotFound):
    """An operator's erasure names no active account (`system.erase`)."""

    default_message = "Aucun compte actif ne correspond : rien n'a été désactivé ni effacé."


def ensure_erasable(account: Account | None) -> Account:
    """An erasure on request (`system.erase`): an active account, that its holder could deactivate
    (a gestionnaire principal stays, as on the page)."""
    if account is None or not account.is_active:
        raise NoActiveAccount()
    return ensure_can_leave(account)


def holds_login(account: Account, active_owner: str | None) -> bool:
    """Whether the index of active logins names this account for its login email (and so must
    let it go when the account is deactivated)."""
    return active_owner == account.registration_id
