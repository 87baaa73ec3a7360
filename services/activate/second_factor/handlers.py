"""The authenticator app from « Mon compte »: enrol (a pending secret, then a first code), see where
it stands, remove it (the current password required). Each takes the signed-in `Session`,
activate's unit of work and sign-in's `SignInDeps` (SECRET_KEY seals the secret; the hasher checks
the password).

The secret in clear exists only while an enrolment is shown or confirmed, and while a code is
checked at sign-in; the recovery codes in clear only in `confirm_enrolment`'s answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.activate import domain, passwords
from services.activate.domain import Account
from services.activate.second_factor import domain as second_factor
from services.activate.sessions.domain import Session
from services.activate.sign_in import codes as sign_in_codes
from services.activate.sign_in.handlers import SignInDeps, count_password_failure, ensure_login_not_locked
from shared.errors import Invalid, Unauthorized
from shared.sealing import InvalidToken, seal
from shared.unit_of_work import UnitOfWork

WRONG_PASSWORD = "Le mot de passe actuel est incorrect."


@dataclass(frozen=True)
class Enrolment:
    """What the person scans or types into the app, until `expires_at`."""

    secret: str
    otpauth_uri: str
    qr_svg: str
    expires_at: int

    @property
    def grouped_secret(self) -> str:
        return second_factor.grouped(self.secret)


@dataclass(frozen=True)
class Standing:
    """Where the account's second factor stands, for « Sécurité du compte »."""

    enrolled: bool
    recovery_codes_left: int = 0
    pending: Enrolment | None = None


def signed_in_account(session: Session, uow: UnitOfWork) -> Account:
    """The session's account, while it is active (Unauthorized otherwise: its sessions are void)."""
    account = uow.accounts.get(session.registration_id)
    if account is None or not account.is_active:
        raise Unauthorized()
    return account


def _shown(secret: str, account: Account, expires_at: int) -> Enrolment:
    uri = second_factor.provisioning_uri(secret, account.login_email)
    return Enrolment(secret, uri, second_factor.qr_svg(uri), expires_at)


def start_enrolment(session: Session, uow: UnitOfWork, deps: SignInDeps) -> Enrolment:
    """A new secret, pending until its first code confirms it (a previous pending one is replaced);
    AlreadyEnrolled (409) when an app is enrolled already."""
    secret = second_factor.new_secret()
    sealed = seal(secret, deps.secret_key)

    def record() -> tuple[Account, int]:
        account = signed_in_account(session, uow)
        second_factor.ensure_not_enrolled(uow.second_factors.get(account.registration_id))
        pending = second_factor.pending_enrolment(account.registration_id, sealed, uow.clock())
        uow.second_factors.save_pending(pending)
        return account, pending.expires_at

    account, expires_at = uow.run(record)
    return _shown(secret, account, expires_at)


def standing(session: Session, uow: UnitOfWork, deps: SignInDeps) -> Standing:
    """Enrolled (and how many recovery codes are left), or the enrolment waiting for its first
    code (shown again), or neither. Plain reads."""
    account = signed_in_account(session, uow)
    factor = uow.second_factors.get(account.registration_id)
    if factor is not None:
        return Standing(True, len(factor.recovery_hashes))
    pending = uow.second_factors.pending(account.registration_id)
    if pending is None or uow.clock() >= pending.expires_at:
        return Standing(False)
    try:
        secret, _ = deps.open_secret(pending.sealed_secret)
    except InvalidToken:  # sealed with a key since dropped: the person starts again
        return Standing(False)
    return Standing(False, pending=_shown(secret, account, pending.expires_at))


def confirm_enrolment(session: Session, code: str, uow: UnitOfWork, deps: SignInDeps) -> list[str]:
    """The first code confirms the pending secret: the app is enrolled (SecondFactorEnrolled) and
    its ten recovery codes are returned, in clear for the only time. A wrong code: 422 on `code`;
    no enrolment pending (or expired): NoEnrolment (410)."""
    recovery_codes = second_factor.new_recovery_codes()
    hashes = tuple(second_factor.recovery_hash(c) for c in recovery_codes)
    typed = sign_in_codes.normalise(code)

    def record() -> None:
        now = uow.clock()
        account = signed_in_account(session, uow)
        second_factor.ensure_not_enrolled(uow.second_factors.get(account.registration_id))
        pending = second_factor.ensure_pending(uow.second_factors.pending(account.registration_id), now)
        try:
            secret, _ = deps.open_secret(pending.sealed_secret)
        except InvalidToken:
            raise second_factor.NoEnrolment() from None
        step = second_factor.ensure_enrolment_code(secret, typed, now)
        uow.second_factors.save(second_factor.enrolled(pending, step, hashes, now))
        uow.second_factors.drop_pending(account.registration_id)
        uow.publish(second_factor.enrolled_event(account))

    uow.run(record)
    return recovery_codes


def remove_second_factor(session: Session, current_password: str, uow: UnitOfWork, deps: SignInDeps) -> None:
    """The app removed (SecondFactorRemoved): sign-in emails a code again. The current password is
    required; a wrong one is 422 on `current_password`, and counts as a failed sign-in does
    against the login email (Locked, 429, once too many)."""
    account = signed_in_account(session, uow)
    ensure_login_not_locked(uow, account)
    second_factor.ensure_enrolled(uow.second_factors.get(account.registration_id))
    credentials = uow.credentials.get(account.registration_id)
    password = domain.normalise_password(current_password)
    if credentials is None or not passwords.verify(deps.hasher, credentials.password_hash, password):
        locked = uow.run(count_password_failure, uow, account)
        raise locked or Invalid.on("current_password", WRONG_PASSWORD)

    def record() -> None:
        current = signed_in_account(session, uow)
        second_factor.ensure_enrolled(uow.second_factors.get(current.registration_id))
        uow.second_factors.remove(current.registration_id)
        uow.publish(second_factor.removed_event(current))

    uow.run(record)
