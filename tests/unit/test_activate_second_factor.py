"""The authenticator app from « Mon compte », on the in-memory unit of work: enrolment confirmed by
a first code, recovery codes shown once and kept hashed, the secret kept sealed, removal with the
current password."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from services.activate.second_factor import domain as second_factor
from services.activate.second_factor import handlers as second_factor_handlers
from services.activate.second_factor.domain import AlreadyEnrolled, NoEnrolment, NotEnrolled
from services.activate.sessions.domain import Session
from services.activate.sign_in import handlers as sign_in_handlers
from services.activate.sign_in.domain import Locked, Method
from services.activate.sign_in.handlers import EnterCode, SignIn, SignInDeps
from shared.errors import Invalid, Unauthorized
from shared.sealing import unseal
from tests.clock import Clock
from tests.unit.fakes.activate import FakeActivateUnitOfWork
from tests.unit.test_activate_sign_in import EMAIL, KEY, PASSWORD, CountingHasher, holder

RECOVERY_SHAPE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}")


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


@pytest.fixture
def session(uow, hasher, clock) -> Session:
    holder(uow, hasher)
    return Session("session-hash", "r1", "acc-r1", clock(), clock())


def enrolled(uow, deps, session, clock) -> tuple[str, list[str]]:
    shown = second_factor_handlers.start_enrolment(session, uow, deps)
    codes = second_factor_handlers.confirm_enrolment(session, pyotp.TOTP(shown.secret).at(clock()), uow, deps)
    return shown.secret, codes


def test_enrolment_shows_a_secret_its_uri_and_a_qr_code_kept_pending_and_sealed(uow, deps, session):
    shown = second_factor_handlers.start_enrolment(session, uow, deps)
    uri = urlsplit(shown.otpauth_uri)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["secret"] == [shown.secret] and parse_qs(uri.query)["issuer"] == [
        "Portail de facturation"
    ]
    assert EMAIL in uri.path.replace("%40", "@")
    assert shown.qr_svg.startswith("<svg") and "<title>" in shown.qr_svg
    assert len(shown.secret) == 32 and shown.grouped_secret.count(" ") == 7
    pending = uow.second_factors.pending("r1")
    assert shown.secret not in repr(pending) and unseal(pending.sealed_secret, KEY) == shown.secret
    assert uow.second_factors.get("r1") is None
    standing = second_factor_handlers.standing(session, uow, deps)
    assert not standing.enrolled and standing.pending.secret == shown.secret


def test_the_first_code_confirms_and_ten_recovery_codes_are_shown_once_and_kept_hashed(
    uow, deps, session, clock
):
    shown = second_factor_handlers.start_enrolment(session, uow, deps)
    with pytest.raises(Invalid) as wrong:
        second_factor_handlers.confirm_enrolment(session, "123456", uow, deps)
    assert list(wrong.value.errors) == ["code"]
    codes = second_factor_handlers.confirm_enrolment(
        session, pyotp.TOTP(shown.secret).at(clock()), uow, deps
    )
    assert len(set(codes)) == 10 and all(RECOVERY_SHAPE.fullmatch(c) for c in codes)
    factor = uow.second_factors.get("r1")
    assert factor.recovery_hashes == tuple(second_factor.recovery_hash(c) for c in codes)
    assert not any(c in repr(factor) or c.replace("-", "") in repr(factor) for c in codes)
    assert shown.secret not in repr(factor)
    assert uow.second_factors.pending("r1") is None
    (event,) = uow.published
    assert event.type == "SecondFactorEnrolled" and event.data() == {
        "registration_id": "r1",
        "account_id": "acc-r1",
        "method": "totp",
        "login_email": EMAIL,
        "first_name": "Marie",
        "last_name": "Curie",
    }
    standing = second_factor_handlers.standing(session, uow, deps)
    assert standing.enrolled and standing.recovery_codes_left == 10
    with pytest.raises(AlreadyEnrolled):
        second_factor_handlers.start_enrolment(session, uow, deps)


def test_the_code_that_confirmed_the_app_cannot_sign_in(uow, deps, session, clock):
    secret, _ = enrolled(uow, deps, session, clock)
    opened = sign_in_handlers.sign_in_with_password(SignIn(EMAIL, PASSWORD), uow, deps)

    def enter_app_code():
        code = pyotp.TOTP(secret).at(clock())
        return sign_in_handlers.enter_code(EnterCode(opened.challenge_id, code), uow, deps)

    with pytest.raises(Unauthorized):
        enter_app_code()
    clock.advance(30)
    assert enter_app_code().method is Method.TOTP


def test_an_enrolment_expires_unconfirmed(uow, deps, session, clock):
    shown = second_factor_handlers.start_enrolment(session, uow, deps)
    clock.advance(second_factor.ENROLMENT_TTL_SECONDS)
    with pytest.raises(NoEnrolment):
        second_factor_handlers.confirm_enrolment(session, pyotp.TOTP(shown.secret).at(clock()), uow, deps)
    assert second_factor_handlers.standing(session, uow, deps).pending is None


def test_removal_needs_the_current_password_and_wrong_ones_count_towards_the_lock(uow, deps, session, clock):
    enrolled(uow, deps, session, clock)
    for _ in range(4):
        with pytest.raises(Invalid) as wrong:
            second_factor_handlers.remove_second_factor(session, "Wrong-Password-1", uow, deps)
        assert list(wrong.value.errors) == ["current_password"]
    with pytest.raises(Locked):
        second_factor_handlers.remove_second_factor(session, "Wrong-Password-1", uow, deps)
    assert "SignInFailed" not in uow.published_types() and "AccountLocked" in uow.published_types()
    with pytest.raises(Locked):
        second_factor_handlers.remove_second_factor(session, PASSWORD, uow, deps)
    clock.advance(60)
    second_factor_handlers.remove_second_factor(session, PASSWORD, uow, deps)
    assert uow.second_factors.get("r1") is None and uow.published_types()[-1] == "SecondFactorRemoved"
    with pytest.raises(NotEnrolled):
        second_factor_handlers.remove_second_factor(session, PASSWORD, uow, deps)
    opened = sign_in_handlers.sign_in_with_password(SignIn(EMAIL, PASSWORD), uow, deps)
    assert opened.email_code_sent  # the emailed code is back


def test_a_session_whose_account_is_no_longer_active_can_do_nothing(uow, deps, session):
    uow.accounts.by_id.clear()
    for act in (
        lambda: second_factor_handlers.start_enrolment(session, uow, deps),
        lambda: second_factor_handlers.standing(session, uow, deps),
        lambda: second_factor_handlers.remove_second_factor(session, PASSWORD, uow, deps),
    ):
        with pytest.raises(Unauthorized):
            act()


def test_recovery_codes_are_read_as_crockford_base32():
    code = "0A1B-2C3D-4E5F-6G7H"
    hashes = (second_factor.recovery_hash("XXXX-XXXX-XXXX-XXXX"), second_factor.recovery_hash(code))
    assert second_factor.matching_recovery_hash("oa1b2c3d4e5f6g7h".upper(), hashes) == hashes[1]
    assert second_factor.matching_recovery_hash("OAIB2C3D4E5F6G7H", hashes) == hashes[1]
    assert second_factor.matching_recovery_hash("0A1B2C3D4E5F6G7J", hashes) is None
