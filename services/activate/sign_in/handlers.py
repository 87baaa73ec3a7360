"""Sign-in's commands: the password (a challenge opens), the second factor (a session starts),
signing out. Each takes activate's unit of work (`uow.accounts`, `uow.credentials`,
`uow.active_logins`, `uow.sign_ins`, `uow.sign_in_failures`, `uow.second_factors`,
`uow.sessions`) and `SignInDeps` (the app's: `bootstrap.Activate.sign_in_deps`); the same code
runs on Redis and, in the unit tests, on dicts.

Enumeration: an unknown email, a wrong password and an account that is not active get the same
answer (`SignInRefused`, 401) after the same work: the same reads, one argon2 verification (for
an email with no active account, against a dummy hash made with the same parameters), one
failure counted on the email's throttle. Only an existing account's failure publishes events.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from functools import cached_property

from argon2 import PasswordHasher

from services.activate import domain, passwords
from services.activate.domain import Account, to_holder
from services.activate.second_factor import domain as second_factor
from services.activate.second_factor.domain import SecondFactor
from services.activate.sessions import handlers as session_handlers
from services.activate.sessions.domain import Session
from services.activate.sign_in import codes as sign_in_codes
from services.activate.sign_in import domain as sign_in
from services.activate.sign_in.codes import EmailCodes, NewCode
from services.activate.sign_in.domain import Challenge, Failures, Method, Stage
from shared.contracts import SignInCodeIssued
from shared.errors import DomainError
from shared.sealing import InvalidToken, seal, unseal
from shared.timestamps import iso_utc
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

NOBODY = ""  # the registration id read when no active account uses an email: the same reads


@dataclass(frozen=True)
class SignInDeps:
    """What sign-in needs beside its unit of work: the argon2 hasher, SECRET_KEY (emailed codes
    are digested and sealed with it, authenticator secrets sealed) and the code's validity."""

    hasher: PasswordHasher
    secret_key: str
    code_ttl_seconds: int
    secret_key_previous: str | None = None

    @cached_property
    def codes(self) -> EmailCodes:
        return EmailCodes(self.secret_key)

    @cached_property
    def dummy_hash(self) -> str:
        """A hash of nothing anyone knows, with the hasher's parameters: what a password typed
        for an email with no active account is verified against, so that it takes as long."""
        return self.hasher.hash(secrets.token_urlsafe(16))

    def open_secret(self, sealed: str) -> tuple[str, str | None]:
        """An authenticator secret in clear, and the secret sealed again with SECRET_KEY when it was
        sealed with SECRET_KEY_PREVIOUS (it is stored again: rotation reaches it as people sign in).
        Raises InvalidToken when neither key opens it."""
        try:
            return unseal(sealed, self.secret_key), None
        except InvalidToken:
            if not self.secret_key_previous:
                raise
        secret = unseal(sealed, self.secret_key, self.secret_key_previous)
        return secret, seal(secret, self.secret_key)


# --- the password ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    login_email: str
    password: str
    method: Method | None = None  # Method.EMAIL_CODE: email a code even with an authenticator app


@dataclass(frozen=True)
class Opened:
    """The answer to a right password: the challenge to answer with the second factor."""

    challenge_id: str
    methods: tuple[Method, ...]  # what the account can give
    email_code_sent: bool
    expires_at: int


def sign_in_with_password(cmd: SignIn, uow: UnitOfWork, deps: SignInDeps) -> Opened:
    """The password: a challenge opens (and the emailed code goes out), or SignInRefused (401),
    or Locked (429 + Retry-After) while the email is locked."""
    login = domain.requested_login(cmd.login_email)
    throttle_key = sign_in.throttle_key(login)
    now = uow.clock()
    sign_in.ensure_not_locked(uow.sign_in_failures.get(throttle_key), now)
    owner = uow.active_logins.owner(login)
    account = uow.accounts.get(owner or NOBODY)
    credentials = uow.credentials.get(owner or NOBODY)
    holder = account if owner and account is not None and account.is_active and credentials else None
    password = domain.normalise_password(cmd.password)
    if holder is None or credentials is None:
        passwords.verify(deps.hasher, deps.dummy_hash, password)
        matches, new_hash = False, None
    else:
        matches, new_hash = passwords.verify_and_update(deps.hasher, credentials.password_hash, password)
    if not matches:
        raise uow.run(_failed, uow, throttle_key, holder, Stage.PASSWORD) or sign_in.SignInRefused()
    challenge_id = sign_in_codes.new_challenge_id()
    challenge_hash = sign_in_codes.challenge_hash(challenge_id)
    code = deps.codes.new(challenge_hash)
    opening = _Opening(
        login, throttle_key, holder.registration_id, credentials.password_hash, new_hash, cmd.method
    )
    challenge, totp = uow.run(_open, uow, opening, challenge_hash, code, deps.code_ttl_seconds)
    return Opened(
        challenge_id=challenge_id,
        methods=sign_in.offered_methods(totp),
        email_code_sent=challenge.code_digest is not None,
        expires_at=challenge.expires_at,
    )


@dataclass(frozen=True)
class _Opening:
    login: str
    throttle_key: str
    registration_id: str
    verified_hash: str
    new_hash: str | None
    asked: Method | None


def _open(uow: UnitOfWork, opening: _Opening, challenge_hash: str, code: NewCode, ttl: int):
    """The challenge, once what was verified still holds (the same active account, the same
    password hash: a password changed meanwhile refuses); the previous challenge voided."""
    now = uow.clock()
    registration_id = opening.registration_id
    account = uow.accounts.get(registration_id)
    credentials = uow.credentials.get(registration_id)
    sign_in.ensure_not_locked(uow.sign_in_failures.get(opening.throttle_key), now)
    unchanged = (
        uow.active_logins.owner(opening.login) == registration_id
        and account is not None
        and account.is_active
        and credentials is not None
        and credentials.password_hash == opening.verified_hash
    )
    if not unchanged:
        raise sign_in.SignInRefused()
    if opening.new_hash:  # argon2's parameters changed since it was hashed: upgraded now
        uow.credentials.save(registration_id, replace(credentials, password_hash=opening.new_hash))
    totp = uow.second_factors.get(registration_id) is not None
    _void_latest(uow, registration_id)
    emailed = sign_in.sends_email_code(totp, opening.asked)
    challenge = sign_in.new_challenge(
        challenge_hash, account, opening.throttle_key, totp, code.digest if emailed else None, now, ttl
    )
    uow.sign_ins.save(challenge)
    uow.sign_ins.set_latest(challenge)
    if emailed:
        uow.publish(
            SignInCodeIssued(
                **to_holder(account),
                sealed_code=code.sealed,
                code_expires_at=iso_utc(challenge.expires_at),
                ttl_seconds=ttl,
            )
        )
    return challenge, totp


def after_password_change(uow: UnitOfWork, account: Account) -> None:
    """Within a reset's or a change's transaction: a sign-in opened with the old password can no
    longer be completed with its code, and the login's failures are forgotten (the holder who
    proved their email and secret answer is never left locked out by a stranger's tries)."""
    _void_latest(uow, account.registration_id)
    uow.sign_in_failures.forget(sign_in.throttle_key(domain.login_key(account.login_email)))


def _void_latest(uow: UnitOfWork, registration_id: str) -> None:
    latest = uow.sign_ins.latest_of(registration_id)
    previous = uow.sign_ins.get(latest) if latest else None
    if previous is not None and previous.state is sign_in.ChallengeState.OPEN:
        uow.sign_ins.save(sign_in.voided(previous))


def _failed(
    uow: UnitOfWork, throttle_key: str, account: Account | None, stage: Stage | None
) -> sign_in.Locked | None:
    """One more failure for the email (the body of a transaction, or part of one): counted, its
    events published; the lock it sets or finds, if any (raised once the transaction commits)."""
    now = uow.clock()
    before = uow.sign_in_failures.get(throttle_key)
    after = sign_in.after_failure(before, now)
    uow.sign_in_failures.save(throttle_key, after, now)
    uow.publish(*sign_in.failure_events(account, stage, before, after, now))
    wait = after.retry_after(now)
    return sign_in.Locked(wait) if wait else None


def count_password_failure(uow: UnitOfWork, account: Account) -> sign_in.Locked | None:
    """A wrong current password typed while signed in (to remove the authenticator app…): counted
    against the login email like a sign-in's, so that a session left open does not let anyone
    try passwords at will. The body of a transaction; no SignInFailed (it is not a sign-in)."""
    key = sign_in.throttle_key(domain.login_key(account.login_email))
    return _failed(uow, key, account, None)


def ensure_login_not_locked(uow: UnitOfWork, account: Account) -> None:
    key = sign_in.throttle_key(domain.login_key(account.login_email))
    sign_in.ensure_not_locked(uow.sign_in_failures.get(key), uow.clock())


# --- the second factor -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnterCode:
    challenge_id: str
    code: str


@dataclass(frozen=True)
class SignedInAs:
    """A session started: its id (for the cookie only), the account, how the second factor came."""

    session_id: str
    account: Account
    method: Method


def open_challenge(challenge_id: str, uow: UnitOfWork) -> Challenge:
    """The open challenge behind `challenge_id` (what the code's page tells), or ChallengeGone."""
    if not sign_in_codes.plausible(challenge_id):
        raise sign_in.ChallengeGone()
    found = uow.sign_ins.get(sign_in_codes.challenge_hash(challenge_id))
    return sign_in.ensure_open(found, uow.clock())


def enter_code(cmd: EnterCode, uow: UnitOfWork, deps: SignInDeps) -> SignedInAs:
    """The second factor: a session starts, or CodeRefused (401; the 5th wrong code exhausts the
    challenge), ChallengeGone (410) or Locked (429). A failure is committed before it is raised."""
    if not sign_in_codes.plausible(cmd.challenge_id):
        raise sign_in.ChallengeGone()
    challenge_hash = sign_in_codes.challenge_hash(cmd.challenge_id)
    outcome = uow.run(_try_code, uow, deps, challenge_hash, sign_in_codes.normalise(cmd.code))
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def _try_code(uow: UnitOfWork, deps: SignInDeps, challenge_hash: str, code: str) -> SignedInAs | DomainError:
    now = uow.clock()
    challenge = sign_in.ensure_open(uow.sign_ins.get(challenge_hash), now)
    failures: Failures = uow.sign_in_failures.get(challenge.throttle_key)
    sign_in.ensure_not_locked(failures, now)
    account = uow.accounts.get(challenge.registration_id)
    if account is None or not account.is_active:
        raise sign_in.ChallengeGone()
    factor = uow.second_factors.get(account.registration_id) if Method.TOTP in challenge.accepts else None
    method, factor_after = _second_factor(deps, challenge, factor, code, now)
    if method is None:
        uow.sign_ins.save(sign_in.after_wrong_code(challenge))
        return _failed(uow, challenge.throttle_key, account, Stage.CODE) or sign_in.CodeRefused()
    uow.sign_ins.save(sign_in.used(challenge))
    uow.sign_in_failures.forget(challenge.throttle_key)
    if factor_after is not None:
        uow.second_factors.save(factor_after)
    session_id = session_handlers.start_session(uow, account.registration_id, account.account_id)
    uow.publish(sign_in.signed_in(account, method))
    return SignedInAs(session_id, account, method)


def _second_factor(
    deps: SignInDeps, challenge: Challenge, factor: SecondFactor | None, code: str, now: float
) -> tuple[Method | None, SecondFactor | None]:
    """Which of the challenge's methods `code` (normalised) answers, and the app's record after
    it (its step or recovery code spent); (None, None) when none."""
    if Method.EMAIL_CODE in challenge.accepts and deps.codes.matches(
        challenge.challenge_hash, challenge.code_digest, code
    ):
        return Method.EMAIL_CODE, None
    if factor is None:
        return None, None
    if not sign_in_codes.is_six_digits(code):
        spent = second_factor.matching_recovery_hash(code, factor.recovery_hashes)
        return (Method.RECOVERY_CODE, second_factor.after_recovery(factor, spent)) if spent else (None, None)
    try:
        secret, resealed = deps.open_secret(factor.sealed_secret)
    except InvalidToken:
        log.error("account %s: its authenticator secret does not open (SECRET_KEY?)", challenge.account_id)
        return None, None
    step = second_factor.matching_step(secret, code, now, factor.last_step)
    if step is None:
        return None, None
    return Method.TOTP, second_factor.after_totp(factor, step, resealed)


# --- signing out -------------------------------------------------------------------------------------


def sign_out(session_id: str | None, uow: UnitOfWork) -> None:
    """This session ends (nothing happens for an unknown or ended one)."""
    session_handlers.end_session(session_id, uow)


def sign_out_everywhere(session: Session, uow: UnitOfWork) -> None:
    """« Se déconnecter partout »: every session of the account ends, this one included."""
    uow.run(session_handlers.end_all_sessions, uow, session.registration_id)
