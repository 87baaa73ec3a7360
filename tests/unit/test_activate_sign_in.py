"""Sign-in on the in-memory unit of work: the password opens a challenge, the second factor (an
emailed code, a TOTP code, a recovery code) starts a session; the same refusal whatever is wrong;
the per-email throttle; signing out."""

from __future__ import annotations

import pyotp
import pytest
from argon2 import PasswordHasher

from services.activate.domain import Account, AccountStatus, Credentials, login_key
from services.activate.second_factor import domain as second_factor
from services.activate.second_factor.domain import SecondFactor
from services.activate.sign_in import domain as sign_in
from services.activate.sign_in import handlers as sign_in_handlers
from services.activate.sign_in.domain import (
    ChallengeGone,
    CodeRefused,
    Failures,
    Locked,
    Method,
    SignInRefused,
    Stage,
)
from services.activate.sign_in.handlers import EnterCode, SignIn, SignInDeps
from shared.contracts import Role
from shared.errors import DomainError, Invalid, Unauthorized
from shared.sealing import seal, unseal
from tests.clock import Clock
from tests.unit.fakes.activate import FakeActivateUnitOfWork

KEY = "test-secret-key"
CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
PASSWORD = "Ruisseau-Calme-73"
EMAIL = "marie.curie@example.fr"


class CountingHasher(PasswordHasher):
    """argon2 at its cheapest, counting verifications (the work that takes time at sign-in)."""

    def __init__(self, **parameters) -> None:
        super().__init__(**{**CHEAP, **parameters})
        self.verified = 0

    def verify(self, hash, password) -> bool:  # noqa: A002 (argon2's own parameter name)
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def uow(clock):
    return FakeActivateUnitOfWork(clock)


@pytest.fixture
def hasher():
    return CountingHasher()


@pytest.fixture
def deps(hasher):
    return SignInDeps(hasher=hasher, secret_key=KEY, code_ttl_seconds=600)


def account(registration_id="r1", email=EMAIL, status=AccountStatus.ACTIVE) -> Account:
    return Account(
        registration_id=registration_id,
        account_id=f"acc-{registration_id}",
        structure_id=f"structure-{registration_id}",
        last_name="Curie",
        first_name="Marie",
        login_email=email,
        contact_email="contact@example.fr",
        survey_consent=False,
        status=status,
        role=Role.GESTIONNAIRE_PRINCIPAL if status is AccountStatus.ACTIVE else None,
    )


def holder(uow, hasher, registration_id="r1", email=EMAIL, status=AccountStatus.ACTIVE) -> Account:
    """An account with its password; the login email claimed when it is active."""
    found = account(registration_id, email, status)
    uow.accounts.save(found)
    uow.credentials.save(registration_id, Credentials(hasher.hash(PASSWORD), "Q ?", hasher.hash("rex")))
    if status is AccountStatus.ACTIVE:
        uow.active_logins.claim(login_key(email), registration_id)
    return found


def enrol(uow, registration_id="r1", secret_key=KEY) -> str:
    """An authenticator app already enrolled for the account; its secret."""
    secret = pyotp.random_base32()
    uow.second_factors.save(SecondFactor(registration_id, seal(secret, secret_key), -1, (), 0))
    return secret


def emailed_code(uow) -> str:
    (issued,) = [e for e in uow.published if e.type == "SignInCodeIssued"][-1:]
    return unseal(issued.sealed_code, KEY)


def password_step(uow, deps, email=EMAIL, password=PASSWORD, method=None):
    return sign_in_handlers.sign_in_with_password(SignIn(email, password, method), uow, deps)


def code_step(uow, deps, challenge_id, code):
    return sign_in_handlers.enter_code(EnterCode(challenge_id, code), uow, deps)


def totp_now(secret, clock, offset_steps=0) -> str:
    return pyotp.TOTP(secret).at(clock() + 30 * offset_steps)


# --- the rules ---------------------------------------------------------------------------------------


def test_every_fifth_failure_in_a_row_locks_for_longer_up_to_an_hour():
    assert [sign_in.lock_seconds(n) for n in (1, 4, 5, 6, 9, 10, 15, 20, 100)] == [
        0, 0, 60, 0, 0, 900, 3600, 3600, 3600,
    ]  # fmt: skip
    failures, now = Failures(), 1000.0
    for _ in range(4):
        failures = sign_in.after_failure(failures, now)
        sign_in.ensure_not_locked(failures, now)
    failures = sign_in.after_failure(failures, now)
    with pytest.raises(Locked) as locked:
        sign_in.ensure_not_locked(failures, now + 10)
    assert locked.value.status == 429 and locked.value.headers == {"Retry-After": "50"}
    sign_in.ensure_not_locked(failures, now + 60)


def test_the_lock_is_announced_once_and_only_for_an_existing_account():
    before, now = Failures(4, 0), 1000.0
    after = sign_in.after_failure(before, now)
    types = [e.type for e in sign_in.failure_events(account(), Stage.PASSWORD, before, after, now)]
    assert types == ["SignInFailed", "AccountLocked"]
    again = sign_in.after_failure(after, now + 1)  # a 6th failure while locked: no new lock
    assert [e.type for e in sign_in.failure_events(account(), Stage.CODE, after, again, now + 1)] == [
        "SignInFailed"
    ]
    assert sign_in.failure_events(None, Stage.PASSWORD, before, after, now) == []


def test_a_challenge_takes_five_wrong_codes():
    challenge = sign_in.new_challenge("h", account(), "k", False, "digest", 0, 600)
    for _ in range(4):
        challenge = sign_in.after_wrong_code(challenge)
        assert challenge.is_open(1)
    assert not sign_in.after_wrong_code(challenge).is_open(1)
    assert not challenge.is_open(600)


def test_with_an_authenticator_app_no_code_is_emailed_unless_asked():
    assert sign_in.sends_email_code(totp_enrolled=False, asked=None)
    assert not sign_in.sends_email_code(totp_enrolled=True, asked=None)
    assert sign_in.sends_email_code(totp_enrolled=True, asked=Method.EMAIL_CODE)
    assert sign_in.offered_methods(True) == (Method.EMAIL_CODE, Method.TOTP)


# --- the password and the emailed code ---------------------------------------------------------------


def test_the_password_then_the_emailed_code_start_a_session(uow, deps, hasher):
    found = holder(uow, hasher)
    opened = password_step(uow, deps, email="  Marie.CURIE@example.fr ")  # as logins are compared
    assert opened.methods == (Method.EMAIL_CODE,) and opened.email_code_sent
    (issued,) = uow.published
    assert issued.type == "SignInCodeIssued" and issued.login_email == EMAIL
    code = emailed_code(uow)
    assert len(code) == 6 and code.isdigit()
    assert code not in repr([e.data() for e in uow.published]) + repr(uow.sign_ins.by_hash)
    assert opened.challenge_id not in repr(uow.sign_ins.by_hash)  # kept by its hash

    signed = code_step(uow, deps, opened.challenge_id, f"{code[:3]} {code[3:]}")
    assert signed.method is Method.EMAIL_CODE and signed.account == found
    session = uow.sessions.get(sign_in_handlers.session_handlers.sessions.session_hash(signed.session_id))
    assert session.registration_id == "r1"
    assert uow.published_types()[-1] == "SignedIn" and uow.published[-1].method == "email_code"
    with pytest.raises(ChallengeGone):  # single use
        code_step(uow, deps, opened.challenge_id, code)


def test_unknown_email_wrong_password_and_inactive_account_get_the_same_answer_after_the_same_work(
    uow, deps, hasher
):
    holder(uow, hasher)
    holder(uow, hasher, "r2", "pending@example.fr", AccountStatus.AWAITING_ACTIVATION)
    holder(uow, hasher, "r3", "gone@example.fr", AccountStatus.DEACTIVATED)
    answers = []
    for email, password in (
        ("nobody@example.fr", PASSWORD),
        (EMAIL, "Wrong-Password-1"),
        ("pending@example.fr", PASSWORD),
        ("gone@example.fr", PASSWORD),
    ):
        hasher.verified = 0
        with pytest.raises(Unauthorized) as refused:
            password_step(uow, deps, email, password)
        answers.append((type(refused.value), refused.value.status, refused.value.message, hasher.verified))
    assert set(answers) == {(SignInRefused, 401, SignInRefused.default_message, 1)}
    # Only the existing account's failure is announced, with ids only.
    (failed,) = uow.published
    assert failed.type == "SignInFailed" and failed.data() == {
        "registration_id": "r1",
        "account_id": "acc-r1",
        "stage": "password",
    }


def test_a_wrong_code_is_refused_and_the_fifth_exhausts_the_challenge(uow, deps, hasher):
    holder(uow, hasher)
    opened = password_step(uow, deps)
    code = emailed_code(uow)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(4):
        with pytest.raises(CodeRefused):
            code_step(uow, deps, opened.challenge_id, wrong)
    assert [e.data()["stage"] for e in uow.published if e.type == "SignInFailed"] == ["code"] * 4
    with pytest.raises(Locked):  # the 5th wrong code: the email's 5th failure in a row too
        code_step(uow, deps, opened.challenge_id, wrong)
    with pytest.raises(ChallengeGone):
        code_step(uow, deps, opened.challenge_id, code)


def test_an_expired_or_unknown_challenge_is_gone(uow, deps, hasher, clock):
    holder(uow, hasher)
    opened = password_step(uow, deps)
    code = emailed_code(uow)
    clock.advance(600)
    with pytest.raises(ChallengeGone):
        code_step(uow, deps, opened.challenge_id, code)
    for unknown in ("", "x" * 500, "made-up"):
        with pytest.raises(ChallengeGone):
            code_step(uow, deps, unknown, code)


def test_a_new_sign_in_voids_the_previous_code(uow, deps, hasher):
    holder(uow, hasher)
    first = password_step(uow, deps)
    first_code = emailed_code(uow)
    second = password_step(uow, deps)
    with pytest.raises(ChallengeGone):
        code_step(uow, deps, first.challenge_id, first_code)
    assert code_step(uow, deps, second.challenge_id, emailed_code(uow)).method is Method.EMAIL_CODE


def test_a_hash_made_with_older_parameters_is_upgraded_at_sign_in(uow, deps, hasher):
    holder(uow, hasher)
    older = PasswordHasher(time_cost=1, memory_cost=16, parallelism=1)
    uow.credentials.save("r1", Credentials(older.hash(PASSWORD), "Q ?", "h"))
    assert hasher.check_needs_rehash(uow.credentials.get("r1").password_hash)
    password_step(uow, deps)
    upgraded = uow.credentials.get("r1").password_hash
    assert not hasher.check_needs_rehash(upgraded) and hasher.verify(upgraded, PASSWORD)


def test_a_password_changed_while_it_was_checked_refuses(uow, deps, hasher):
    holder(uow, hasher)

    class ChangedMeanwhile(CountingHasher):
        def verify(self, hash, password) -> bool:  # noqa: A002
            uow.credentials.save("r1", Credentials(hasher.hash("Autre-Chose-42"), "Q ?", "h"))
            return super().verify(hash, password)

    with pytest.raises(SignInRefused):
        password_step(uow, SignInDeps(ChangedMeanwhile(), KEY, 600))
    assert uow.published == []


# --- throttling ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("email", [EMAIL, "nobody@example.fr"])
def test_five_wrong_passwords_lock_the_email_for_a_minute_whether_it_has_an_account_or_not(
    uow, deps, hasher, clock, email
):
    holder(uow, hasher)
    for _ in range(4):
        with pytest.raises(SignInRefused):
            password_step(uow, deps, email, "Wrong-Password-1")
    with pytest.raises(Locked) as fifth:
        password_step(uow, deps, email, "Wrong-Password-1")
    assert fifth.value.headers == {"Retry-After": "60"}
    hasher.verified = 0
    clock.advance(30)
    with pytest.raises(Locked) as during:  # even the right password, and nothing verified
        password_step(uow, deps, email, PASSWORD)
    assert during.value.headers == {"Retry-After": "30"} and hasher.verified == 0
    locks = [e for e in uow.published if e.type == "AccountLocked"]
    if email == EMAIL:
        (lock,) = locks
        assert lock.login_email == EMAIL and lock.locked_until.startswith("2027-01-15T08:01:00")
    else:
        assert locks == []
    clock.advance(30)
    if email == EMAIL:  # unlocked: the right password works, and a full sign-in forgets the count
        opened = password_step(uow, deps)
        code_step(uow, deps, opened.challenge_id, emailed_code(uow))
        assert uow.sign_in_failures.get(sign_in.throttle_key(login_key(EMAIL))) == Failures()


def test_locks_grow_then_stay_at_an_hour_and_failures_are_forgotten_after_a_day(uow, deps, hasher, clock):
    holder(uow, hasher)

    def fail_until_locked() -> int:
        while True:
            try:
                password_step(uow, deps, EMAIL, "Wrong-Password-1")
            except Locked as locked:
                return int(locked.headers["Retry-After"])
            except SignInRefused:
                continue

    waits = []
    for _ in range(4):
        waits.append(fail_until_locked())
        clock.advance(waits[-1])
    assert waits == [60, 900, 3600, 3600]
    clock.advance(24 * 3600)
    for _ in range(4):
        with pytest.raises(SignInRefused):
            password_step(uow, deps, EMAIL, "Wrong-Password-1")


# --- the authenticator app at sign-in -----------------------------------------------------------------


def test_with_an_authenticator_app_no_code_is_emailed_and_a_totp_code_signs_in_once(uow, deps, hasher, clock):
    holder(uow, hasher)
    secret = enrol(uow)
    opened = password_step(uow, deps)
    assert opened.methods == (Method.EMAIL_CODE, Method.TOTP) and not opened.email_code_sent
    assert "SignInCodeIssued" not in uow.published_types()
    code = totp_now(secret, clock)
    assert code_step(uow, deps, opened.challenge_id, code).method is Method.TOTP
    replay = password_step(uow, deps)
    with pytest.raises(CodeRefused):  # the same step cannot sign in twice
        code_step(uow, deps, replay.challenge_id, code)
    with pytest.raises(CodeRefused):  # nor an earlier one
        code_step(uow, deps, replay.challenge_id, totp_now(secret, clock, -1))
    clock.advance(30)
    assert code_step(uow, deps, replay.challenge_id, totp_now(secret, clock)).method is Method.TOTP


def test_a_code_from_the_next_step_is_accepted_but_not_one_from_further(uow, deps, hasher, clock):
    holder(uow, hasher)
    secret = enrol(uow)
    opened = password_step(uow, deps)
    with pytest.raises(CodeRefused):
        code_step(uow, deps, opened.challenge_id, totp_now(secret, clock, 2))
    assert code_step(uow, deps, opened.challenge_id, totp_now(secret, clock, 1)).method is Method.TOTP


def test_the_emailed_code_can_still_be_asked_for_with_an_authenticator_app(uow, deps, hasher):
    holder(uow, hasher)
    enrol(uow)
    opened = password_step(uow, deps, method=Method.EMAIL_CODE)
    assert opened.email_code_sent
    assert code_step(uow, deps, opened.challenge_id, emailed_code(uow)).method is Method.EMAIL_CODE


def test_without_an_emailed_code_no_six_digits_other_than_the_apps_sign_in(uow, deps, hasher, clock):
    holder(uow, hasher)
    enrol(uow)
    opened = password_step(uow, deps)  # no code emailed: the challenge has no code digest
    with pytest.raises(CodeRefused):
        code_step(uow, deps, opened.challenge_id, "000000")


def test_a_recovery_code_signs_in_once(uow, deps, hasher):
    holder(uow, hasher)
    codes = second_factor.new_recovery_codes()
    hashes = tuple(second_factor.recovery_hash(c) for c in codes)
    uow.second_factors.save(SecondFactor("r1", seal(pyotp.random_base32(), KEY), -1, hashes, 0))
    opened = password_step(uow, deps)
    typed = codes[3].lower().replace("-", " ")  # as a person may type it
    assert code_step(uow, deps, opened.challenge_id, typed).method is Method.RECOVERY_CODE
    assert len(uow.second_factors.get("r1").recovery_hashes) == 9
    again = password_step(uow, deps)
    with pytest.raises(CodeRefused):
        code_step(uow, deps, again.challenge_id, codes[3])
    assert code_step(uow, deps, again.challenge_id, codes[4]).method is Method.RECOVERY_CODE


def test_a_secret_sealed_with_the_previous_key_still_signs_in_and_is_sealed_again(uow, hasher, clock):
    holder(uow, hasher)
    secret = enrol(uow, secret_key="old-key")
    rotated = SignInDeps(hasher, "new-key", 600, secret_key_previous="old-key")
    opened = password_step(uow, rotated)
    code_step(uow, rotated, opened.challenge_id, totp_now(secret, clock))
    assert unseal(uow.second_factors.get("r1").sealed_secret, "new-key") == secret


def test_a_secret_no_key_opens_refuses_the_code_without_failing(uow, hasher, clock, caplog):
    holder(uow, hasher)
    secret = enrol(uow, secret_key="lost-key")
    opened = password_step(uow, SignInDeps(hasher, KEY, 600))
    with pytest.raises(CodeRefused):
        code_step(uow, SignInDeps(hasher, KEY, 600), opened.challenge_id, totp_now(secret, clock))
    assert "does not open" in caplog.text


# --- signing out ---------------------------------------------------------------------------------------


def test_signing_out_ends_this_session_and_everywhere_ends_them_all(uow, deps, hasher):
    holder(uow, hasher)
    sessions = []
    for _ in range(3):
        opened = password_step(uow, deps)
        sessions.append(code_step(uow, deps, opened.challenge_id, emailed_code(uow)).session_id)
    resume = sign_in_handlers.session_handlers.resume_session
    sign_in_handlers.sign_out(sessions[0], uow)
    with pytest.raises(Unauthorized):
        resume(sessions[0], uow)
    sign_in_handlers.sign_out_everywhere(resume(sessions[1], uow), uow)
    for ended in sessions[1:]:
        with pytest.raises(Unauthorized):
            resume(ended, uow)
    sign_in_handlers.sign_out("not-a-session", uow)  # nothing to end: nothing happens


def test_an_empty_email_is_a_form_error_not_a_sign_in_failure(uow, deps):
    with pytest.raises(Invalid):
        password_step(uow, deps, email="  ")
    assert uow.sign_in_failures.by_key == {}


# --- a new password (reset, or changed from « Mon compte ») ------------------------------------------


def test_a_sign_in_opened_before_a_password_change_cannot_be_completed(uow, deps, hasher):
    account = holder(uow, hasher)
    opened = password_step(uow, deps)
    code = emailed_code(uow)
    uow.run(sign_in_handlers.after_password_change, uow, account)
    with pytest.raises(DomainError) as refused:
        code_step(uow, deps, opened.challenge_id, code)
    assert refused.value.status == 410
    assert uow.sessions.by_hash == {}


def test_a_password_change_forgets_the_logins_failures(uow, deps, hasher, clock):
    account = holder(uow, hasher)
    for _ in range(5):
        with pytest.raises(DomainError):
            password_step(uow, deps, password="wrong-Password-1")
    with pytest.raises(DomainError) as locked:
        password_step(uow, deps)
    assert locked.value.status == 429
    uow.run(sign_in_handlers.after_password_change, uow, account)
    assert password_step(uow, deps).challenge_id
