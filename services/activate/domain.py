"""Rules of steps 3 and 4. Pure: no Redis, no Flask, no clock (the time is passed in).

Each rule takes what was read (an account, a link's record, who holds a login email) and says
what follows: the new state and the events that announce it, or a domain error.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict

from services.activate import passwords
from services.activate.catalogue import DEFAULT_WORKSPACES, SECRET_QUESTIONS, WORKSPACE_CODES
from shared.contracts import (
    AccountActivated,
    ActivationLinkIssued,
    DomainEvent,
    LinkReason,
    RegistrationAttemptOnExistingAccount,
    Role,
    WorkspacesChosen,
)
from shared.errors import Conflict, Invalid, NotFound
from shared.timestamps import iso_utc


class AccountStatus(StrEnum):
    PENDING = "pending"  # StructureConfirmed handled, workspaces not chosen yet
    AWAITING_ACTIVATION = "awaiting_activation"  # a link is out
    EXPIRED = "expired"  # the last link expired unused; a new one can be asked for
    ACTIVE = "active"
    RELEASED = "released"  # its structure was released before it was activated: closed for good
    DEACTIVATED = "deactivated"  # closed by its holder from « Mon compte »; its login email is free again
    # An attachment request (joining a structure that exists), once step 3 is done: its structure's
    # gestionnaire principal approves (a link goes out, or `JOINED`) or refuses (`REFUSED`).
    AWAITING_APPROVAL = "awaiting_approval"
    REFUSED = "refused"  # the attachment request was refused: closed for good
    REQUEST_EXPIRED = "request_expired"  # the attachment request was not decided in time: closed
    # Approved for a login email that already had an active account: that account joined the
    # structure (a membership more), and this registration's own account is closed.
    JOINED = "joined"


@dataclass(frozen=True)
class Membership:
    """A structure an active account belongs to, and its role there."""

    structure_id: str
    role: Role
    company_name: str = ""


# --- the account ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """A user account, keyed by the registration that creates it."""

    registration_id: str
    account_id: str
    structure_id: str
    last_name: str
    first_name: str
    login_email: str
    contact_email: str
    survey_consent: bool
    company_name: str = ""  # the structure's name, shown on the pages ("" for older accounts)
    features: dict[str, Any] = field(default_factory=dict)
    status: AccountStatus = AccountStatus.PENDING
    workspaces: tuple[str, ...] = ()
    token_hash: str | None = None
    token_expires_at: int | None = None
    role: Role | None = None
    # Its structure's claim: unless activated by then (epoch seconds), the structure is released
    # and the account with it. None: no deadline (a StructureConfirmed from before claims).
    claim_expires_at: int | None = None
    # An attachment request (AttachmentRequested): the structure exists, its gestionnaire principal
    # decides before any link goes out; closed unless decided by `attachment_expires_at`.
    attachment_request_id: str | None = None
    requested_at: int | None = None
    attachment_expires_at: int | None = None
    # The structures joined since, besides `structure_id` (its first, with `role`), and the
    # registrations of the attachment requests that made it join them (their accounts, closed as
    # `joined`, still name the person: erased with this one).
    other_memberships: tuple[Membership, ...] = ()
    joined_registrations: tuple[str, ...] = ()

    @property
    def is_attachment(self) -> bool:
        return self.attachment_request_id is not None

    @property
    def memberships(self) -> tuple[Membership, ...]:
        """Every structure of an active account, its first one first."""
        first = (Membership(self.structure_id, self.role, self.company_name),) if self.role else ()
        return first + self.other_memberships

    def structures_view(self) -> list[dict[str, str]]:
        """`structures` of the JSON API: each structure, the account's role there, its name."""
        return [
            {"structure_id": m.structure_id, "role": m.role, "company_name": m.company_name}
            for m in self.memberships
        ]

    def role_in(self, structure_id: str) -> Role | None:
        return next((m.role for m in self.memberships if m.structure_id == structure_id), None)

    @property
    def is_active(self) -> bool:
        return self.status is AccountStatus.ACTIVE

    @property
    def released(self) -> bool:
        return self.status is AccountStatus.RELEASED

    @property
    def link_expired(self) -> bool:
        """Its last link expired unused: the person must ask for a new one."""
        return self.status is AccountStatus.EXPIRED

    @property
    def awaits_activation(self) -> bool:
        """Past step 3 and not active yet: a new link can be asked for by its login email."""
        return self.status in (AccountStatus.AWAITING_ACTIVATION, AccountStatus.EXPIRED)


def pending_account(registration_id: str, account_id: str, confirmed: dict[str, Any]) -> Account:
    """The account that a StructureConfirmed (its data) opens, before step 3."""
    user = confirmed["user"]
    return Account(
        registration_id=registration_id,
        account_id=account_id,
        structure_id=confirmed["structure_id"],
        last_name=user["last_name"],
        first_name=user["first_name"],
        login_email=user["login_email"],
        contact_email=user.get("contact_email") or user["login_email"],
        survey_consent=bool(user.get("survey_consent")),
        company_name=(confirmed.get("structure") or {}).get("company_name") or "",
        features=dict(confirmed.get("features") or {}),
        claim_expires_at=_epoch_seconds(confirmed.get("claim_expires_at")),
    )


def pending_attachment(
    registration_id: str, account_id: str, requested: dict[str, Any], ttl_seconds: int
) -> Account:
    """The account that an AttachmentRequested (its data) opens, before step 3: it joins a
    structure that exists, if its gestionnaire principal approves within `ttl_seconds`."""
    user = requested["user"]
    requested_at = _epoch_seconds(requested["requested_at"]) or 0
    return Account(
        registration_id=registration_id,
        account_id=account_id,
        structure_id=requested["structure_id"],
        last_name=user["last_name"],
        first_name=user["first_name"],
        login_email=user["login_email"],
        contact_email=user.get("contact_email") or user["login_email"],
        survey_consent=bool(user.get("survey_consent")),
        company_name=requested.get("company_name") or "",
        features=dict(requested.get("features") or {}),
        attachment_request_id=requested["attachment_request_id"],
        requested_at=requested_at,
        attachment_expires_at=requested_at + ttl_seconds,
    )


def _epoch_seconds(stamp: str | None) -> int | None:
    """An ISO 8601 stamp of an event (`shared.timestamps`) as whole epoch seconds."""
    return int(datetime.fromisoformat(stamp).timestamp()) if stamp else None


# --- the structure's claim -----------------------------------------------------------------------


class ClaimLapsed(NotFound):
    """The account was not activated by its structure's deadline: the structure is (or is about
    to be) released, and nothing can be done with this registration any more."""

    default_message = (
        "Cette inscription a expiré : le compte n'a pas été activé dans le délai prévu. "
        "Recommencez la création de votre compte depuis la première étape."
    )


def claim_lapsed(account: Account, now: float) -> bool:
    """Not active, and released or past its structure's claim deadline. Activation is refused
    from the deadline on: that and the structure's sweep, which releases only after it, make
    "activated" and "released" exclusive."""
    if account.is_active:
        return False
    return account.released or (account.claim_expires_at is not None and now >= account.claim_expires_at)


def ensure_claim_open(account: Account, now: float) -> Account:
    if claim_lapsed(account, now):
        raise ClaimLapsed()
    return account


def release(account: Account) -> Account | None:
    """The account once its structure is released: closed, its link gone. None when there is
    nothing to change (released already) or nothing may change (active: it holds the structure)."""
    if account.is_active or account.released:
        return None
    return replace(account, status=AccountStatus.RELEASED, token_hash=None, token_expires_at=None)


def login_key(login_email: str) -> str:
    """How a login email is compared: case does not matter."""
    return unicodedata.normalize("NFKC", login_email.strip()).casefold()


LOGIN_EMAIL_MAX_LENGTH = 254


def requested_login(login_email: str) -> str:
    """The login email typed to ask for a new link, as logins are compared (`login_key`).

    Only its presence and length are checked: any other text is an email that no account uses,
    and gets the same answer as one."""
    if not login_email.strip():
        raise Invalid.on("login_email", "Saisissez votre adresse électronique de connexion.")
    if len(login_email) > LOGIN_EMAIL_MAX_LENGTH:
        raise Invalid.on(
            "login_email",
            f"L'adresse électronique de connexion doit contenir au plus {LOGIN_EMAIL_MAX_LENGTH} caractères.",
        )
    return login_key(login_email)


# --- what cannot be done now -----------------------------------------------------------------------


class WorkspacesAlreadyChosen(Conflict):
    """Step 3 again: the page shows the "account created" page, the API answers 409."""

    default_message = (
        "Les espaces de travail de ce compte ont déjà été choisis et le courriel d'activation "
        "a été envoyé. Si vous ne l'avez pas reçu, demandez un nouveau lien."
    )


class WorkspacesNotChosen(NotFound):
    """No link was ever sent: the page goes back to step 3, the API answers 404."""

    default_message = (
        "Aucun lien d'activation n'a encore été envoyé : choisissez d'abord vos espaces de travail."
    )


class AlreadyActive(Conflict):
    default_message = (
        "Ce compte est déjà activé : connectez-vous avec votre adresse électronique et votre mot de passe."
    )


WRONG_HOLDER_PASSWORD = (
    "Cette adresse électronique a déjà un compte actif : saisissez le mot de passe de ce compte pour le "
    "rattacher à la structure."
)


class LoginTaken(Conflict):
    default_message = (
        "Un compte actif utilise déjà cette adresse électronique de connexion : "
        "connectez-vous avec ce compte ou recommencez avec une autre adresse."
    )


# --- step 3: workspaces and links ----------------------------------------------------------------


def kept_workspaces(codes: Iterable[str] | None) -> tuple[str, ...]:
    """The workspaces kept, in the catalogue's order; None means the defaults."""
    if codes is None:
        return DEFAULT_WORKSPACES
    wanted = [c.strip().upper() for c in codes]
    unknown = sorted({c for c in wanted if c not in WORKSPACE_CODES})
    if unknown:
        raise Invalid.on(
            "workspaces",
            f"Espace(s) de travail inconnu(s) : {', '.join(unknown)}. "
            f"Valeurs possibles : {', '.join(WORKSPACE_CODES)}.",
        )
    return tuple(c for c in WORKSPACE_CODES if c in wanted)


def ensure_workspaces_can_be_chosen(account: Account) -> Account:
    if account.status is not AccountStatus.PENDING:
        raise WorkspacesAlreadyChosen()
    return account


def ensure_workspaces_chosen(account: Account) -> Account:
    """Past step 3: a link was sent (whatever became of it)."""
    if account.status is AccountStatus.PENDING:
        raise WorkspacesNotChosen()
    return account


class AwaitingApproval(Conflict):
    default_message = (
        "Votre demande de rattachement attend la décision du gestionnaire principal de la structure : "
        "le courriel d'activation vous sera envoyé dès qu'elle sera acceptée."
    )


class RequestClosed(Conflict):
    default_message = (
        "Cette demande de rattachement est close (refusée, expirée, ou acceptée pour un compte déjà actif) : "
        "aucun lien d'activation ne peut être envoyé."
    )


ATTACHMENT_CLOSED = (AccountStatus.REFUSED, AccountStatus.REQUEST_EXPIRED, AccountStatus.JOINED)


def ensure_link_can_be_resent(account: Account) -> Account:
    if account.is_active:
        raise AlreadyActive()
    if account.status is AccountStatus.AWAITING_APPROVAL:
        raise AwaitingApproval()
    if account.status in ATTACHMENT_CLOSED:
        raise RequestClosed()
    return ensure_workspaces_chosen(account)


def token_expiry(now: float, ttl_seconds: int) -> int:
    """Whole seconds, so that the stored expiry and the one in events are the same instant."""
    return int(now) + ttl_seconds


@dataclass(frozen=True)
class NewLink:
    """A fresh activation link in its two safe forms: the token's hash (stored) and the token
    sealed for notify (in ActivationLinkIssued). The token itself is in neither."""

    token_hash: str
    sealed_token: str
    expires_at: int
    ttl_seconds: int


class ToHolderFields(TypedDict):
    """The fields of an event whose email goes to the account's holder (`_ToHolder` in contracts)."""

    registration_id: str
    account_id: str
    login_email: str
    first_name: str
    last_name: str


def to_holder(account: Account) -> ToHolderFields:
    return {
        "registration_id": account.registration_id,
        "account_id": account.account_id,
        "login_email": account.login_email,
        "first_name": account.first_name,
        "last_name": account.last_name,
    }


class SealedLinkFields(TypedDict):
    """The fields of an event that carries a link for notify to email (`_LinkToHolder`)."""

    sealed_token: str
    token_expires_at: str
    ttl_seconds: int


def sealed_link(link: NewLink) -> SealedLinkFields:
    return {
        "sealed_token": link.sealed_token,
        "token_expires_at": iso_utc(link.expires_at),
        "ttl_seconds": link.ttl_seconds,
    }


@dataclass(frozen=True)
class Holder:
    """Whoever holds, with an active account, the login email of a registration."""

    first_name: str | None = None
    last_name: str | None = None


def login_taken(account: Account, active_owner: str | None) -> bool:
    """Another registration's active account uses this account's login email."""
    return active_owner is not None and active_owner != account.registration_id


def holder_of(found: Account | None) -> Holder:
    """The holder as their account names them (unknown names if it is gone)."""
    if found is None:
        return Holder()
    return Holder(found.first_name or None, found.last_name or None)


def _link_or_warning(
    account: Account, link: NewLink, holder: Holder | None, reason: LinkReason, now: float
) -> DomainEvent:
    """What goes out for a new link: the link itself, or, when the login email is an active
    account's, a warning to its holder. The newcomer is answered the same either way; the link,
    never sent to anyone, opens nothing (and activation refuses a second active account)."""
    if holder is None:
        return ActivationLinkIssued(**to_holder(account), **sealed_link(link), reason=reason)
    return RegistrationAttemptOnExistingAccount(
        registration_id=account.registration_id,
        login_email=account.login_email,
        first_name=holder.first_name,
        last_name=holder.last_name,
        attempted_at=iso_utc(now),
        token_expires_at=iso_utc(link.expires_at),
        reason=reason,
    )


def _awaiting(account: Account, link: NewLink) -> Account:
    return replace(
        account,
        status=AccountStatus.AWAITING_ACTIVATION,
        token_hash=link.token_hash,
        token_expires_at=link.expires_at,
    )


def choose_workspaces(
    account: Account, workspaces: tuple[str, ...], link: NewLink, holder: Holder | None, now: float
) -> tuple[Account, list[DomainEvent]]:
    """Step 3: the workspaces kept and the account's first link (or its holder warned)."""
    ensure_workspaces_can_be_chosen(account)
    chosen = replace(_awaiting(account, link), workspaces=workspaces)
    chosen_event = WorkspacesChosen(
        registration_id=account.registration_id,
        account_id=account.account_id,
        workspaces=list(workspaces),
        token_expires_at=iso_utc(link.expires_at),
    )
    return chosen, [chosen_event, _link_or_warning(chosen, link, holder, LinkReason.CREATED, now)]


def resend_link(
    account: Account, link: NewLink, holder: Holder | None, now: float
) -> tuple[Account, DomainEvent]:
    """A new link for an account past step 3 and not active yet."""
    ensure_link_can_be_resent(account)
    renewed = _awaiting(account, link)
    return renewed, _link_or_warning(renewed, link, holder, LinkReason.RESENT, now)


# --- step 4: activation -------------------------------------------------------------------------


class RefusedForm(Invalid):
    """The activation form's faults, with the account it was for: the page shows the form again."""

    def __init__(self, refused: Invalid, account: Account) -> None:
        super().__init__(refused.message, refused.errors)
        self.account = account


@dataclass(frozen=True)
class Credentials:
    """What activation stores of the form: argon2id hashes, and the question in clear."""

    password_hash: str
    secret_question: str
    secret_answer_hash: str


def ensure_login_free(account: Account, active_owner: str | None) -> Account:
    """A login email belongs to at most one active account."""
    if login_taken(account, active_owner):
        raise LoginTaken()
    return account


def activate(account: Account) -> tuple[Account, AccountActivated]:
    """The first user of a new structure becomes its gestionnaire principal; a newcomer whose
    attachment request was approved, an utilisateur of the structure that exists."""
    role = Role.UTILISATEUR if account.is_attachment else Role.GESTIONNAIRE_PRINCIPAL
    active = replace(account, status=AccountStatus.ACTIVE, role=role, token_hash=None, token_expires_at=None)
    return active, AccountActivated(
        registration_id=active.registration_id,
        account_id=active.account_id,
        structure_id=active.structure_id,
        role=role,
    )


# --- the activation form -------------------------------------------------------------------------


PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
PASSWORD_MIN_GROUPS = 3
ANSWER_MAX_LENGTH = 100

PASSWORD_RULE = (
    "Le mot de passe doit contenir au moins 8 caractères et au moins 3 des 4 types : "
    "majuscules, minuscules, chiffres, caractères spéciaux."
)


@dataclass(frozen=True)
class ActivationForm:
    """A checked activation form: the password as hashed and the answer normalised."""

    password: str
    secret_question: str
    secret_answer: str


def normalise_password(password: str) -> str:
    """NFKC, as NIST 800-63B advises: the same password typed on two keyboards is the same."""
    return unicodedata.normalize("NFKC", password)


def password_groups(password: str) -> int:
    """How many of the 4 groups appear: ASCII upper, ASCII lower, digits, anything else."""
    upper = lower = digit = special = False
    for char in password:
        if "A" <= char <= "Z":
            upper = True
        elif "a" <= char <= "z":
            lower = True
        elif "0" <= char <= "9":
            digit = True
        else:
            special = True
    return upper + lower + digit + special


def password_errors(password: str) -> list[str]:
    """Why `password` (already normalised) breaks the rule's shape; empty when it has it.

    The shape is what the live meter of the page checks too (password-meter.js). The server
    then refuses, in `password_problems`, what has the shape but is still weak.
    """
    if not password:
        return ["Le mot de passe est obligatoire. " + PASSWORD_RULE]
    errors = []
    if len(password) < PASSWORD_MIN_LENGTH or password_groups(password) < PASSWORD_MIN_GROUPS:
        errors.append(PASSWORD_RULE)
    if len(password) > PASSWORD_MAX_LENGTH:
        errors.append(f"Le mot de passe doit contenir au plus {PASSWORD_MAX_LENGTH} caractères.")
    if any(unicodedata.category(c) == "Cc" for c in password):
        errors.append("Le mot de passe ne doit pas contenir de caractère de contrôle (tabulation, retour…).")
    return errors


def password_problems(password: str, personal: Iterable[str | None] = ()) -> list[str]:
    """Why `password` (already normalised) is refused: the rule's shape first; once it is met,
    a common password, or one built from `personal` (the person's names and emails)."""
    return password_errors(password) or passwords.weaknesses(password, personal)


def personal_data(account: Account) -> tuple[str, ...]:
    """What a password must not be built from: the person's names and email addresses."""
    return (account.first_name, account.last_name, account.login_email, account.contact_email)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def normalise_answer(answer: str) -> str:
    """NFKC, case folded, whitespace collapsed and trimmed: « Altran  » and « ALTRAN » match."""
    return _collapse(unicodedata.normalize("NFKC", answer).casefold())


def check_activation_form(
    password: str,
    password_confirmation: str,
    secret_question: str,
    secret_answer: str,
    personal: Iterable[str | None] = (),
) -> ActivationForm:
    """Every faulty field with its reason at once, or the form ready to be hashed.

    `personal`: the names and emails of the account (see `personal_data`).
    """
    errors: dict[str, list[str]] = {}
    normalised = normalise_password(password)
    if problems := password_problems(normalised, personal):
        errors["password"] = problems
    if not password_confirmation:
        errors["password_confirmation"] = ["Confirmez le mot de passe."]
    elif normalise_password(password_confirmation) != normalised:
        errors["password_confirmation"] = ["La confirmation ne correspond pas au mot de passe."]
    question = _collapse(unicodedata.normalize("NFC", secret_question))
    if not question:
        errors["secret_question"] = ["Choisissez une question secrète."]
    elif question not in SECRET_QUESTIONS:
        errors["secret_question"] = ["Choisissez une question secrète dans la liste proposée."]
    answer = normalise_answer(secret_answer)
    if not answer:
        errors["secret_answer"] = ["La réponse à la question secrète est obligatoire."]
    elif len(answer) > ANSWER_MAX_LENGTH:
        errors["secret_answer"] = [
            f"La réponse à la question secrète doit contenir au plus {ANSWER_MAX_LENGTH} caractères."
        ]
    if errors:
        raise Invalid("Le formulaire d'activation contient des erreurs.", errors)
    return ActivationForm(normalised, question, answer)
