"""Rules of activation links: what state a link is in, whether it opens its account, what the
sweep makes of it and what a person who opens a dead one may do. Pure, like `domain`.

A link is stored as a `TokenRecord` (the token's SHA-256, never the token). It is `issued`,
then `used` (the account was activated with it), `replaced` (a newer link was sent) or `expired`
(the sweep found it past its expiry, unused, or its structure was released). An issued link past
its expiry is already expired for whoever opens it, before the sweep comes; so is every link of
an account past its structure's claim deadline, before the structure is released.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from services.activate.domain import Account, AccountStatus, claim_lapsed
from shared.contracts import ActivationTokenExpired
from shared.errors import Gone, NotFound
from shared.timestamps import iso_utc


class TokenState(StrEnum):
    """What became of an activation link (its stored state; see `token_state` for "as of now")."""

    ISSUED = "issued"
    USED = "used"
    REPLACED = "replaced"
    EXPIRED = "expired"


@dataclass(frozen=True)
class TokenRecord:
    """What is stored of an activation token: its hash, never the token."""

    token_hash: str
    registration_id: str
    expires_at: int
    state: TokenState = TokenState.ISSUED


class TokenGone(Gone):
    """A link that existed but can no longer be used; the page offers to send a new one.

    `registration_id` tells the pages what became of the account (`after_dead_link`); it never
    leaves the service: whoever holds a dead link asks for a new one by the login email."""

    def __init__(self, message: str, registration_id: str, reason: TokenState) -> None:
        super().__init__(message)
        self.registration_id = registration_id
        self.reason = reason


class UnknownLink(NotFound):
    default_message = (
        "Ce lien d'activation est inconnu : vérifiez que vous l'avez copié en entier depuis le courriel reçu."
    )


UNKNOWN_LINK = UnknownLink.default_message
_GONE_MESSAGES = {
    TokenState.EXPIRED: "Ce lien d'activation a expiré. Demandez l'envoi d'un nouveau lien.",
    TokenState.REPLACED: (
        "Ce lien d'activation a été remplacé par un lien plus récent : utilisez le dernier courriel "
        "reçu ou demandez l'envoi d'un nouveau lien."
    ),
    TokenState.USED: (
        "Ce lien d'activation a déjà été utilisé : votre compte est actif, connectez-vous avec votre "
        "adresse électronique et votre mot de passe."
    ),
}


CLAIM_LAPSED = (
    "Ce lien d'activation a expiré : le compte n'a pas été activé dans le délai prévu et cette "
    "inscription est close. Recommencez la création de votre compte depuis la première étape."
)


def _gone(record: TokenRecord, state: TokenState) -> TokenGone:
    return TokenGone(_GONE_MESSAGES[state], record.registration_id, state)


def token_state(record: TokenRecord, now: float) -> TokenState:
    """The state as of `now`: an issued token past its expiry is expired before any sweep runs."""
    if record.state is TokenState.ISSUED and now >= record.expires_at:
        return TokenState.EXPIRED
    return record.state


def ensure_token_usable(record: TokenRecord | None, now: float) -> TokenRecord:
    if record is None:
        raise UnknownLink()
    state = token_state(record, now)
    if state is not TokenState.ISSUED:
        raise _gone(record, state)
    return record


SameHash = Callable[[str, str], bool]


def ensure_link_opens(
    record: TokenRecord | None, account: Account | None, now: float, same_hash: SameHash
) -> tuple[TokenRecord, Account]:
    """The link and the account it may activate now, or UnknownLink / TokenGone.

    A link dies with its structure's claim: once the account can no longer be activated in
    time, the link is expired whatever its own state, and says so."""
    if record is None:
        raise UnknownLink()
    if account is not None and claim_lapsed(account, now):
        raise TokenGone(CLAIM_LAPSED, record.registration_id, TokenState.EXPIRED)
    usable = ensure_token_usable(record, now)
    return usable, ensure_token_is_accounts(usable, account, same_hash)


def _is_current_link(account: Account, record: TokenRecord, same_hash: SameHash) -> bool:
    return (
        account.status is AccountStatus.AWAITING_ACTIVATION
        and account.token_hash is not None
        and same_hash(account.token_hash, record.token_hash)
    )


def ensure_token_is_accounts(record: TokenRecord, account: Account | None, same_hash: SameHash) -> Account:
    """The account must still await activation with this very link (`same_hash` compares)."""
    if account is None:
        raise UnknownLink()
    if account.is_active:
        raise _gone(record, TokenState.USED)
    if not _is_current_link(account, record, same_hash):
        raise _gone(record, TokenState.REPLACED)
    return account


class SweepStep(StrEnum):
    """What the sweep does with a link whose deadline has come."""

    EXPIRE = "expire"  # issued and past its expiry: it becomes `expired`
    FORGET = "forget"  # gone or already dead (used, replaced): only its deadline is left
    WAIT = "wait"  # not past its expiry (yet): nothing


def sweep_step(record: TokenRecord | None, now: float) -> SweepStep:
    if record is None or record.state is not TokenState.ISSUED:
        return SweepStep.FORGET
    if token_state(record, now) is TokenState.EXPIRED:
        return SweepStep.EXPIRE
    return SweepStep.WAIT


def link_lapsed(
    account: Account | None, record: TokenRecord, same_hash: SameHash
) -> tuple[Account, ActivationTokenExpired] | None:
    """An expired link that was its account's current one: the account becomes `expired` (a new
    link can be asked for), announced once. None when the link was no longer the current one."""
    if account is None or not _is_current_link(account, record, same_hash):
        return None
    lapsed = replace(account, status=AccountStatus.EXPIRED)
    return lapsed, ActivationTokenExpired(
        registration_id=lapsed.registration_id,
        account_id=lapsed.account_id,
        token_expires_at=iso_utc(record.expires_at),
    )


class NextStep(StrEnum):
    """What the page of a link that no longer works offers."""

    NEW_LINK = "new_link"  # the account still awaits activation: ask for a new link
    SIGN_IN = "sign_in"  # the account is active: sign in
    NONE = "none"  # the account is gone, or was not activated in time


def after_dead_link(account: Account | None, now: float) -> NextStep:
    if account is None or claim_lapsed(account, now):
        return NextStep.NONE
    return NextStep.SIGN_IN if account.is_active else NextStep.NEW_LINK


MAX_LINKS_PER_REQUEST = 3
LINK_REQUESTED = (
    "Si un compte en attente d'activation utilise cette adresse électronique de connexion, un nouveau "
    "lien d'activation vient d'y être envoyé ; l'ancien lien ne fonctionne plus."
)


def renewed_on_request(active_owner: str | None, awaiting: Sequence[str]) -> list[str]:
    """The registrations whose link a request by login email renews: those awaiting activation
    with it (read most recent first, at most MAX_LINKS_PER_REQUEST), and none once an active
    account uses the email: their links could activate nothing (one active account per login)."""
    if active_owner is not None:
        return []
    return list(awaiting[:MAX_LINKS_PER_REQUEST])


def retired_link_fate(link: TokenRecord | None, dies_as: TokenState) -> TokenState | None:
    """What retiring an account's link makes of it: a link still issued dies as `dies_as`
    (REPLACED when a new link goes out, EXPIRED when its structure is released); one already
    dead (used, expired, replaced) stays as it is."""
    if link is not None and link.state is TokenState.ISSUED:
        return dies_as
    return None
