"""The emails of sign-in and of the authenticator app: what their templates are given. Pure, like
`domain`: no Redis, no SMTP, no clock.

- the sign-in code (SignInCodeIssued), to the login email: the 6 digits, how long they last;
- the temporary lock (AccountLocked): until when, and what to do if it was not the holder;
- the authenticator app enrolled or removed (SecondFactorEnrolled, SecondFactorRemoved): a notice.

None of them holds a link that acts: only where to sign in and where to reset a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.notify.domain import clean_name, deadline_in_words
from shared.wording import validity_in_words

CODE_SUBJECT = "Votre code de connexion"
LOCKED_SUBJECT = "Votre compte est temporairement verrouillé"
# Short enough for one header line: folded, Python's email package drops the space between two
# encoded words (« associéeà »).
ENROLLED_SUBJECT = "Application d'authentification associée à votre compte"
REMOVED_SUBJECT = "Application d'authentification retirée de votre compte"


def sign_in_link(public_base_url: str) -> str:
    return f"{public_base_url.rstrip('/')}/activate/sign-in"


def password_reset_link(public_base_url: str) -> str:
    """« Mot de passe oublié »: where a reset link is asked for."""
    return f"{public_base_url.rstrip('/')}/activate/password-resets/new"


@dataclass(frozen=True)
class SignInCodeEmail:
    to: str
    first_name: str
    last_name: str
    code: str
    validity: str
    deadline: str
    password_reset_link: str
    subject: str = CODE_SUBJECT


def sign_in_code_email(
    *,
    to: str,
    first_name: str,
    last_name: str,
    code: str,
    ttl_seconds: int,
    expires_at: datetime,
    public_base_url: str,
) -> SignInCodeEmail:
    return SignInCodeEmail(
        to=to,
        first_name=clean_name(first_name),
        last_name=clean_name(last_name),
        code=code,
        validity=validity_in_words(ttl_seconds),
        deadline=deadline_in_words(expires_at),
        password_reset_link=password_reset_link(public_base_url),
    )


@dataclass(frozen=True)
class AccountLockedEmail:
    to: str
    first_name: str
    last_name: str
    until: str
    password_reset_link: str
    subject: str = LOCKED_SUBJECT


def account_locked_email(
    *, to: str, first_name: str, last_name: str, locked_until: datetime, public_base_url: str
) -> AccountLockedEmail:
    return AccountLockedEmail(
        to=to,
        first_name=clean_name(first_name),
        last_name=clean_name(last_name),
        until=deadline_in_words(locked_until),
        password_reset_link=password_reset_link(public_base_url),
    )


@dataclass(frozen=True)
class SecondFactorEmail:
    """The notice of an authenticator app enrolled (`enrolled`) or removed."""

    to: str
    first_name: str
    last_name: str
    enrolled: bool
    sign_in_link: str
    password_reset_link: str
    subject: str


def second_factor_email(
    *, to: str, first_name: str, last_name: str, enrolled: bool, public_base_url: str
) -> SecondFactorEmail:
    return SecondFactorEmail(
        to=to,
        first_name=clean_name(first_name),
        last_name=clean_name(last_name),
        enrolled=enrolled,
        sign_in_link=sign_in_link(public_base_url),
        password_reset_link=password_reset_link(public_base_url),
        subject=ENROLLED_SUBJECT if enrolled else REMOVED_SUBJECT,
    )
