"""« Mot de passe oublié »: the rules. Pure: no Redis, no Flask, no clock (the time is passed in).

A request by login email sends, when an active account uses that email, a link with a fresh
256-bit token (`tokens.LinkMaker`: stored as its SHA-256, sealed for notify). The link is the
account's *current* one until a newer request replaces it; it dies when it is used, at its
expiry (PASSWORD_RESET_TTL_SECONDS), once its account is no longer active, or after
`MAX_ANSWERS` answers to the secret question that did not reset the password.

The secret answer is never enough alone: it is asked only on the link's page, and a try is
counted (`ResetLink.answers_checked`) *before* the answer is compared, so that answers sent at
the same time cannot check more than `MAX_ANSWERS` in all. The new password follows step 4's
rules (`domain.password_problems`), and the answer is compared as step 4 stored it: argon2 of
`domain.normalise_answer`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeGuard

from services.activate import domain
from services.activate.domain import Account, Credentials, NewLink, sealed_link, to_holder
from shared.contracts import PasswordChanged, PasswordResetRequested
from shared.errors import Gone, Invalid

MAX_ANSWERS = 5

CHANGE_REASON = "reset"  # PasswordChanged's `reason`

RESET_REQUESTED = (
    "Si un compte actif utilise cette adresse, un courriel vient de lui être envoyé avec un lien pour "
    "choisir un nouveau mot de passe."
)
PASSWORD_CHANGED = (
    "Votre mot de passe a été modifié. Toutes vos sessions ouvertes ont été fermées : connectez-vous "
    "avec votre nouveau mot de passe."
)


class ResetState(StrEnum):
    """What is stored of a link's fate. `replaced` is not stored: a link is replaced when its
    account's current link is another (see `ensure_link_opens`)."""

    ISSUED = "issued"
    USED = "used"


class GoneReason(StrEnum):
    """Why a link no longer opens (the 410's `reason`)."""

    EXPIRED = "expired"  # past its expiry, or its account is no longer active
    USED = "used"
    REPLACED = "replaced"  # a newer link was asked for
    LOCKED = "locked"  # MAX_ANSWERS answers checked without a reset
    UNKNOWN = "unknown"  # never issued, mistyped, or forgotten a week after its expiry


_GONE_MESSAGES = {
    GoneReason.EXPIRED: "Ce lien de réinitialisation du mot de passe a expiré. Demandez un nouveau lien.",
    GoneReason.USED: (
        "Ce lien de réinitialisation a déjà servi : le mot de passe a été modifié. Connectez-vous, ou "
        "demandez un nouveau lien si vous l'avez de nouveau oublié."
    ),
    GoneReason.REPLACED: (
        "Ce lien de réinitialisation a été remplacé par un lien plus récent : utilisez le dernier courriel "
        "reçu, ou demandez un nouveau lien."
    ),
    GoneReason.LOCKED: (
        f"Ce lien de réinitialisation ne fonctionne plus : la réponse à la question secrète a été refusée "
        f"{MAX_ANSWERS} fois. Demandez un nouveau lien."
    ),
    GoneReason.UNKNOWN: (
        "Ce lien de réinitialisation n'est pas valable : vérifiez que vous l'avez copié en entier depuis le "
        "courriel reçu, ou demandez un nouveau lien."
    ),
}


class ResetLinkGone(Gone):
    """410: the link no longer opens; the page offers a new request. Names no account."""

    def __init__(self, reason: GoneReason) -> None:
        super().__init__(_GONE_MESSAGES[reason])
        self.reason = reason


@dataclass(frozen=True)
class ResetLink:
    """What is stored of a reset link: its token's hash, never the token."""

    token_hash: str
    registration_id: str
    expires_at: int
    state: ResetState = ResetState.ISSUED
    answers_checked: int = 0


@dataclass(frozen=True)
class ResetPage:
    """What the link's page shows: the secret question, and the login (for password managers)."""

    secret_question: str
    login_email: str


# --- the request ---------------------------------------------------------------------------------


def may_reset(account: Account | None) -> TypeGuard[Account]:
    """Only an active account's password is reset; any other email gets the same answer."""
    return account is not None and account.is_active


def issue(account: Account, link: NewLink) -> tuple[ResetLink, PasswordResetRequested]:
    """The link to store (it becomes the account's current one) and the event that emails it."""
    record = ResetLink(link.token_hash, account.registration_id, link.expires_at)
    return record, PasswordResetRequested(**to_holder(account), **sealed_link(link))


# --- the link ------------------------------------------------------------------------------------

SameHash = Callable[[str, str], bool]


def ensure_link_opens(
    link: ResetLink | None,
    account: Account | None,
    current: str | None,
    credentials: Credentials | None,
    now: float,
    same_hash: SameHash,
    *,
    counting_answers: bool = True,
) -> tuple[ResetLink, Account, Credentials]:
    """The link, its account and its credentials, when the link may reset the password now; else
    ResetLinkGone with the reason. `current`: the hash of the account's latest link.

    `counting_answers=False` when the password is being reset by an answer already counted (the
    last try may be the one that reached MAX_ANSWERS)."""
    if link is None or account is None or credentials is None:
        raise ResetLinkGone(GoneReason.UNKNOWN)
    if link.state is ResetState.USED:
        raise ResetLinkGone(GoneReason.USED)
    if now >= link.expires_at or not account.is_active:
        raise ResetLinkGone(GoneReason.EXPIRED)
    if current is None or not same_hash(current, link.token_hash):  # the pointer expires with it
        raise ResetLinkGone(GoneReason.REPLACED)
    if counting_answers and link.answers_checked >= MAX_ANSWERS:
        raise ResetLinkGone(GoneReason.LOCKED)
    return link, account, credentials


def page_of(account: Account, credentials: Credentials) -> ResetPage:
    return ResetPage(credentials.secret_question, account.login_email)


def one_more_answer(link: ResetLink) -> ResetLink:
    """The link once an answer is about to be checked: counted first, right or wrong."""
    return replace(link, answers_checked=link.answers_checked + 1)


def answers_left(link: ResetLink) -> int:
    return max(0, MAX_ANSWERS - link.answers_checked)


# --- the form ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResetForm:
    """A checked form: the new password as hashed (NFKC) and the answer as step 4 hashed it."""

    password: str
    secret_answer: str


class RefusedReset(Invalid):
    """The form's faults (or a wrong answer), with what the page shows again."""

    def __init__(self, refused: Invalid, page: ResetPage) -> None:
        super().__init__(refused.message, refused.errors)
        self.page = page
        self.link_dead = False


def check_reset_form(
    password: str, password_confirmation: str, secret_answer: str, personal: Iterable[str | None] = ()
) -> ResetForm:
    """Every faulty field at once (the password as at step 4), or the form ready to be checked."""
    errors: dict[str, list[str]] = {}
    normalised = domain.normalise_password(password)
    if problems := domain.password_problems(normalised, personal):
        errors["password"] = problems
    if not password_confirmation:
        errors["password_confirmation"] = ["Confirmez le mot de passe."]
    elif domain.normalise_password(password_confirmation) != normalised:
        errors["password_confirmation"] = ["La confirmation ne correspond pas au mot de passe."]
    answer = domain.normalise_answer(secret_answer)
    if not answer:
        errors["secret_answer"] = ["Saisissez la réponse à votre question secrète."]
    if errors:
        raise Invalid("Le formulaire contient des erreurs.", errors)
    return ResetForm(normalised, answer)


def wrong_answer(link: ResetLink, page: ResetPage) -> RefusedReset:
    """422 on `secret_answer`, telling how many tries are left (none: the link is dead)."""
    left = answers_left(link)
    if left == 0:
        message = (
            f"La réponse ne correspond pas à celle que vous avez enregistrée. Après {MAX_ANSWERS} réponses "
            "refusées, ce lien ne fonctionne plus : demandez un nouveau lien."
        )
    else:
        tries = "essai" if left == 1 else "essais"
        message = (
            "La réponse ne correspond pas à celle que vous avez enregistrée. "
            f"Il vous reste {left} {tries} avec ce lien."
        )
    refused = RefusedReset(Invalid(message, {"secret_answer": [message]}), page)
    refused.link_dead = left == 0
    return refused


# --- the reset -----------------------------------------------------------------------------------


def reset(
    link: ResetLink, account: Account, credentials: Credentials, password_hash: str, answer_hash: str
) -> tuple[ResetLink, Credentials, PasswordChanged]:
    """The link spent, the new credentials (the question kept), and the event of the change."""
    changed = replace(credentials, password_hash=password_hash, secret_answer_hash=answer_hash)
    return (
        replace(link, state=ResetState.USED),
        changed,
        PasswordChanged(**to_holder(account), reason=CHANGE_REASON),
    )


def kept_answer_hash(stored: str, verified: str, upgraded: str | None) -> str:
    """The answer's hash to store: the upgraded one (argon2 parameters changed) only while the
    stored hash is still the one the answer was checked against."""
    return upgraded if upgraded is not None and stored == verified else stored
