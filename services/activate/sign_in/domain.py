"""Sign-in's rules: the challenge between the password and the second factor, and the per-account
throttle. Pure: no Redis, no Flask, no clock, no randomness (the time, ids and codes are passed in).

A sign-in has two stages. The password opens a *challenge* (its id goes back to the client);
the second factor closes it: a 6-digit code emailed to the login address, a code of the
authenticator app (TOTP) or one of its recovery codes. The challenge lives
SIGN_IN_CODE_TTL_SECONDS, takes 5 wrong codes, is used once, and a new one voids the previous.

The throttle counts failures (wrong passwords and wrong codes alike) per login email, whether an
account uses it or not, so that the answers never tell: every 5th failure in a row locks the
login for a while that grows (1 minute, 15 minutes, then an hour each time), and the count is
forgotten a day after the last failure or at a successful sign-in. Never a permanent lock: a
stranger who knows an email can delay its holder, not shut them out.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from enum import StrEnum

from services.activate.domain import Account, to_holder
from shared.contracts import AccountLocked, DomainEvent, SignedIn, SignInFailed
from shared.errors import Gone, TooManyAttempts, Unauthorized
from shared.timestamps import iso_utc

MAX_CODE_TRIES = 5
FAILURES_PER_LOCK = 5
LOCK_SECONDS = (60, 15 * 60, 60 * 60)  # the 1st, 2nd and 3rd lock in a row; every later one as the last
FAILURES_FORGOTTEN_AFTER_SECONDS = 24 * 3600


class Method(StrEnum):
    """How the second factor was given."""

    EMAIL_CODE = "email_code"
    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"


class Stage(StrEnum):
    PASSWORD = "password"
    CODE = "code"


class ChallengeState(StrEnum):
    OPEN = "open"
    USED = "used"
    VOIDED = "voided"  # a newer sign-in of the account replaced it
    EXHAUSTED = "exhausted"  # 5 wrong codes


# --- what the client is told -----------------------------------------------------------------------


class SignInRefused(Unauthorized):
    """The one answer to an unknown email, a wrong password and an account that is not active."""

    default_message = "Adresse électronique ou mot de passe incorrect."


class CodeRefused(Unauthorized):
    default_message = "Code incorrect. Vérifiez le code et réessayez."


class ChallengeGone(Gone):
    """Unknown, used, expired, voided or exhausted: the person signs in again."""

    default_message = "Cette demande de connexion n'est plus valable : reconnectez-vous."


class Locked(TooManyAttempts):
    default_message = (
        "Trop de tentatives de connexion ont échoué : la connexion à ce compte est suspendue pour un moment."
    )


# --- the per-login throttle ------------------------------------------------------------------------


def throttle_key(login_key: str) -> str:
    """What failures are counted against: the login email (`domain.login_key`), as its SHA-256,
    so that the emails typed by strangers do not rest in Redis in clear."""
    return hashlib.sha256(login_key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Failures:
    """Failures in a row for one login email, and until when it is locked (epoch seconds)."""

    count: int = 0
    locked_until: int = 0

    def retry_after(self, now: float) -> int:
        """Whole seconds until the lock ends (0 when not locked)."""
        return max(0, math.ceil(self.locked_until - now))


def lock_seconds(count: int) -> int:
    """How long the `count`-th failure in a row locks the login: 0 unless it is a 5th, 10th…"""
    if count <= 0 or count % FAILURES_PER_LOCK:
        return 0
    nth_lock = count // FAILURES_PER_LOCK
    return LOCK_SECONDS[min(nth_lock, len(LOCK_SECONDS)) - 1]


def ensure_not_locked(failures: Failures, now: float) -> None:
    if (wait := failures.retry_after(now)) > 0:
        raise Locked(wait)


def after_failure(failures: Failures, now: float) -> Failures:
    """One more failure; a lock from now when it is the 5th, 10th… in a row."""
    count = failures.count + 1
    lock = lock_seconds(count)
    return Failures(count, int(now) + lock if lock else failures.locked_until)


def newly_locked(before: Failures, after: Failures, now: float) -> bool:
    return after.retry_after(now) > 0 and after.locked_until != before.locked_until


def failure_events(
    account: Account | None, stage: Stage | None, before: Failures, after: Failures, now: float
) -> list[DomainEvent]:
    """What a failure publishes: nothing for an email no active account uses; otherwise
    SignInFailed (for a sign-in's `stage`; None: a password typed while signed in), and
    AccountLocked when this failure locks the login."""
    if account is None:
        return []
    events: list[DomainEvent] = []
    if stage is not None:
        events.append(
            SignInFailed(registration_id=account.registration_id, account_id=account.account_id, stage=stage)
        )
    if newly_locked(before, after, now):
        events.append(AccountLocked(**to_holder(account), locked_until=iso_utc(after.locked_until)))
    return events


# --- the challenge -----------------------------------------------------------------------------------


def offered_methods(totp_enrolled: bool) -> tuple[Method, ...]:
    """What the account can give as a second factor (the answer's `methods`)."""
    return (Method.EMAIL_CODE, Method.TOTP) if totp_enrolled else (Method.EMAIL_CODE,)


def sends_email_code(totp_enrolled: bool, asked: Method | None) -> bool:
    """An emailed code goes out unless the account has an authenticator app; with one, only when
    asked for (`{"method": "email_code"}`: the phone is not at hand)."""
    return not totp_enrolled or asked is Method.EMAIL_CODE


@dataclass(frozen=True)
class Challenge:
    """An open sign-in between the password and the second factor, kept by its id's SHA-256.

    `accepts`: what its code may be (an emailed code, TOTP and recovery codes);
    `code_digest`: the emailed code's keyed digest (None when no code was emailed)."""

    challenge_hash: str
    registration_id: str
    account_id: str
    throttle_key: str
    accepts: tuple[Method, ...]
    code_digest: str | None
    expires_at: int
    failures: int = 0
    state: ChallengeState = ChallengeState.OPEN

    def is_open(self, now: float) -> bool:
        return self.state is ChallengeState.OPEN and now < self.expires_at


def new_challenge(
    challenge_hash: str,
    account: Account,
    login_throttle_key: str,
    totp_enrolled: bool,
    code_digest: str | None,
    now: float,
    ttl_seconds: int,
) -> Challenge:
    accepts = (Method.TOTP, Method.RECOVERY_CODE) if totp_enrolled else ()
    if code_digest is not None:
        accepts = (Method.EMAIL_CODE, *accepts)
    return Challenge(
        challenge_hash=challenge_hash,
        registration_id=account.registration_id,
        account_id=account.account_id,
        throttle_key=login_throttle_key,
        accepts=accepts,
        code_digest=code_digest,
        expires_at=int(now) + ttl_seconds,
    )


def ensure_open(challenge: Challenge | None, now: float) -> Challenge:
    if challenge is None or not challenge.is_open(now):
        raise ChallengeGone()
    return challenge


def voided(challenge: Challenge) -> Challenge:
    return replace(challenge, state=ChallengeState.VOIDED)


def used(challenge: Challenge) -> Challenge:
    return replace(challenge, state=ChallengeState.USED)


def after_wrong_code(challenge: Challenge) -> Challenge:
    failures = challenge.failures + 1
    state = ChallengeState.EXHAUSTED if failures >= MAX_CODE_TRIES else challenge.state
    return replace(challenge, failures=failures, state=state)


def signed_in(account: Account, method: Method) -> SignedIn:
    return SignedIn(registration_id=account.registration_id, account_id=account.account_id, method=method)
