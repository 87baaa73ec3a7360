"""« Mot de passe oublié » on the in-memory unit of work: the request by login email, the link
(single use, replaced by a newer one, time-limited, 5 answers), the reset that ends every session."""

from __future__ import annotations

from dataclasses import replace

import pytest
from argon2 import PasswordHasher

from services.activate import passwords, tokens
from services.activate.catalogue import SECRET_QUESTIONS
from services.activate.domain import PASSWORD_RULE, Account, AccountStatus, Credentials, login_key
from services.activate.password_reset import domain as password_resets
from services.activate.password_reset import handlers
from services.activate.password_reset.domain import (
    MAX_ANSWERS,
    GoneReason,
    RefusedReset,
    ResetLink,
    ResetLinkGone,
    ResetState,
)
from services.activate.sessions import handlers as session_handlers
from services.activate.tokens import LinkMaker
from shared.errors import Invalid, Unauthorized
from shared.sealing import unseal
from tests.clock import Clock
from tests.hashing import Interfering
from tests.unit.fakes.activate import FakeActivateUnitOfWork

KEY = "test-secret-key"
TTL = 3600
LINKS = LinkMaker(KEY, TTL)
CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}  # argon2id at its cheapest, for tests
FAST = PasswordHasher(**CHEAP)
EMAIL = "marie.curie@example.fr"
OLD_PASSWORD = "Ruisseau-Calme-73"
NEW_PASSWORD = "Falaise-Orange-58"
QUESTION = SECRET_QUESTIONS[0]
ANSWER = "Rex"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def uow(clock):
    return FakeActivateUnitOfWork(clock)


# --- how a test says what happens ----------------------------------------------------------------


def active_account(uow, registration_id="r1", email=EMAIL, status=AccountStatus.ACTIVE) -> Account:
    """An account as step 4 leaves it: active, its login claimed, its credentials hashed."""
    account = Account(
        registration_id=registration_id,
        account_id=f"acc-{registration_id}",
        structure_id=f"structure-{registration_id}",
        last_name="Curie",
        first_name="Marie",
        login_email=email,
        contact_email="contact@example.fr",
        survey_consent=False,
        status=status,
    )
    uow.accounts.save(account)
    uow.active_logins.claim(login_key(email), registration_id)
    uow.credentials.save(
        registration_id,
        Credentials(
            password_hash=FAST.hash(OLD_PASSWORD),
            secret_question=QUESTION,
            secret_answer_hash=FAST.hash(ANSWER.casefold()),  # normalised, as step 4 hashes it
        ),
    )
    return account


def request(uow, email=EMAIL) -> bool:
    return handlers.request_password_reset(handlers.RequestPasswordReset(email), uow, LINKS)


def token_of_last_request(uow) -> str:
    """The token as notify unseals it from the last PasswordResetRequested."""
    return unseal(uow.published[-1].sealed_token, KEY)


def requested_token(uow, email=EMAIL) -> str:
    assert request(uow, email)
    return token_of_last_request(uow)


def reset(uow, token, answer=ANSWER, password=NEW_PASSWORD, confirmation=None, hasher=FAST):
    command = handlers.ResetPassword(
        token, secret_answer=answer, password=password, password_confirmation=confirmation or password
    )
    return handlers.reset_password(command, uow, hasher)


def gone_reason(call) -> GoneReason:
    with pytest.raises(ResetLinkGone) as gone:
        call()
    assert gone.value.status == 410
    return gone.value.reason


def stored_link(uow, token) -> ResetLink:
    return uow.password_resets.get(tokens.token_hash(token))


# --- the request ---------------------------------------------------------------------------------


def test_an_active_accounts_email_gets_a_link_sealed_in_the_event_and_stored_as_its_hash(uow, clock):
    account = active_account(uow)
    assert request(uow, " Marie.Curie@EXAMPLE.fr ") is True  # the login as logins are compared
    (event,) = uow.published
    token = unseal(event.sealed_token, KEY)
    assert event.type == "PasswordResetRequested"
    assert event.data() == {
        "registration_id": "r1",
        "account_id": "acc-r1",
        "login_email": EMAIL,  # the account's own, not what was typed
        "first_name": "Marie",
        "last_name": "Curie",
        "sealed_token": event.sealed_token,
        "token_expires_at": "2027-01-15T09:00:00+00:00",
        "ttl_seconds": TTL,
    }
    assert token not in repr(uow.published)
    assert stored_link(uow, token) == ResetLink(tokens.token_hash(token), "r1", int(clock()) + TTL)
    assert token not in repr(vars(uow.password_resets))
    assert handlers.open_password_reset(token, uow).secret_question == QUESTION
    assert handlers.open_password_reset(token, uow).login_email == account.login_email


@pytest.mark.parametrize("status", [AccountStatus.AWAITING_ACTIVATION, AccountStatus.DEACTIVATED])
def test_no_link_for_an_unknown_email_nor_an_account_that_is_not_active(uow, status):
    active_account(uow, status=status)
    assert request(uow) is False
    assert request(uow, "nobody@example.fr") is False
    assert uow.published == [] and uow.password_resets.links == {}


def test_an_empty_or_oversized_email_is_refused_on_its_field(uow):
    for wrong in ("", "   ", "a" * 250 + "@example.fr"):
        with pytest.raises(Invalid) as refused:
            request(uow, wrong)
        assert list(refused.value.errors) == ["login_email"]


def test_a_new_request_replaces_the_previous_link(uow):
    active_account(uow)
    first = requested_token(uow)
    second = requested_token(uow)
    assert gone_reason(lambda: handlers.open_password_reset(first, uow)) is GoneReason.REPLACED
    assert gone_reason(lambda: reset(uow, first)) is GoneReason.REPLACED
    assert handlers.open_password_reset(second, uow).secret_question == QUESTION


# --- the link ------------------------------------------------------------------------------------


def test_a_link_expires_after_its_validity(uow, clock):
    active_account(uow)
    token = requested_token(uow)
    clock.advance(TTL - 1)
    handlers.open_password_reset(token, uow)
    clock.advance(1)
    assert gone_reason(lambda: handlers.open_password_reset(token, uow)) is GoneReason.EXPIRED
    assert gone_reason(lambda: reset(uow, token)) is GoneReason.EXPIRED


def test_a_token_never_issued_answers_410_unknown_like_a_mistyped_one(uow):
    active_account(uow)
    token = requested_token(uow)
    for wrong in (tokens.new_token(), token[:-1], "", "x" * 500):
        assert gone_reason(lambda w=wrong: handlers.open_password_reset(w, uow)) is GoneReason.UNKNOWN
        assert gone_reason(lambda w=wrong: reset(uow, w)) is GoneReason.UNKNOWN


def test_a_link_dies_with_its_account_deactivated(uow):
    account = active_account(uow)
    token = requested_token(uow)
    uow.accounts.save(replace(account, status=AccountStatus.DEACTIVATED))
    assert gone_reason(lambda: handlers.open_password_reset(token, uow)) is GoneReason.EXPIRED


# --- the reset -----------------------------------------------------------------------------------


def start_session(uow, registration_id="r1") -> str:
    return uow.run(session_handlers.start_session, uow, registration_id, f"acc-{registration_id}")


def test_the_reset_changes_the_password_ends_every_session_and_spends_the_link(uow):
    active_account(uow)
    active_account(uow, "r2", "other@example.fr")
    mine, also_mine, theirs = start_session(uow), start_session(uow), start_session(uow, "r2")
    token = requested_token(uow)
    before = uow.credentials.get("r1")

    reset(uow, token, answer="  REX ")  # the answer compared as step 4 normalised it

    after = uow.credentials.get("r1")
    assert passwords.verify(FAST, after.password_hash, NEW_PASSWORD)
    assert not passwords.verify(FAST, after.password_hash, OLD_PASSWORD)
    assert (after.secret_question, after.secret_answer_hash) == (
        before.secret_question,
        before.secret_answer_hash,
    )
    for ended in (mine, also_mine):
        with pytest.raises(Unauthorized):
            session_handlers.resume_session(ended, uow)
    assert session_handlers.resume_session(theirs, uow).registration_id == "r2"
    changed = uow.published[-1]
    assert changed.type == "PasswordChanged"
    assert changed.data() == {
        "registration_id": "r1",
        "account_id": "acc-r1",
        "reason": "reset",
        "login_email": EMAIL,
        "first_name": "Marie",
        "last_name": "Curie",
    }
    assert stored_link(uow, token).state is ResetState.USED
    assert uow.password_resets.current("r1") is None
    assert gone_reason(lambda: handlers.open_password_reset(token, uow)) is GoneReason.USED
    assert gone_reason(lambda: reset(uow, token, password="Autre-Chemin-91")) is GoneReason.USED
    for secret in (token, NEW_PASSWORD, ANSWER, "rex"):
        assert secret not in repr(uow.published)


def test_a_wrong_answer_is_422_on_secret_answer_and_five_kill_the_link(uow):
    active_account(uow)
    token = requested_token(uow)
    published = len(uow.published)
    for left in range(MAX_ANSWERS - 1, 0, -1):
        with pytest.raises(RefusedReset) as refused:
            reset(uow, token, answer="Médor")
        assert refused.value.status == 422 and list(refused.value.errors) == ["secret_answer"]
        assert f"Il vous reste {left} essai" in refused.value.message and not refused.value.link_dead
        assert refused.value.page.secret_question == QUESTION
    with pytest.raises(RefusedReset) as last:
        reset(uow, token, answer="Félix")
    assert last.value.link_dead and "ne fonctionne plus" in last.value.message
    assert gone_reason(lambda: reset(uow, token)) is GoneReason.LOCKED  # even the right answer now
    assert gone_reason(lambda: handlers.open_password_reset(token, uow)) is GoneReason.LOCKED
    assert passwords.verify(FAST, uow.credentials.get("r1").password_hash, OLD_PASSWORD)
    assert len(uow.published) == published  # nothing changed, nothing announced
    assert handlers.open_password_reset(requested_token(uow), uow)  # a new link asks again


def test_a_right_answer_after_wrong_ones_resets(uow):
    active_account(uow)
    token = requested_token(uow)
    for _ in range(MAX_ANSWERS - 1):
        with pytest.raises(RefusedReset):
            reset(uow, token, answer="Médor")
    reset(uow, token)  # the fifth answer, right
    assert passwords.verify(FAST, uow.credentials.get("r1").password_hash, NEW_PASSWORD)


def test_a_faulty_form_names_every_field_and_counts_no_answer(uow):
    active_account(uow)
    token = requested_token(uow)
    with pytest.raises(RefusedReset) as refused:
        reset(uow, token, answer=" ", password="court", confirmation="autre")
    assert set(refused.value.errors) == {"password", "password_confirmation", "secret_answer"}
    assert refused.value.errors["password"] == [PASSWORD_RULE]
    with pytest.raises(RefusedReset) as personal:
        reset(uow, token, password="Marie-Curie-1867")  # built from the person's names: step 4's rules
    assert list(personal.value.errors) == ["password"]
    assert stored_link(uow, token).answers_checked == 0


class Meanwhile(PasswordHasher):
    """A hasher that, the first time it compares an answer, lets `meanwhile` happen."""

    def __init__(self, meanwhile, **parameters) -> None:
        super().__init__(**parameters)
        self.meanwhile = meanwhile

    def verify(self, hash, password) -> bool:  # noqa: A002 (argon2's name)
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return super().verify(hash, password)


def test_answers_sent_at_once_cannot_check_more_than_five(uow):
    """Each answer is counted, in its own transaction, before it is compared: while a first
    answer is being compared, four more are checked and the next ones are refused uncompared."""
    active_account(uow)
    token = requested_token(uow)
    outcomes = []

    def more_answers():
        for _ in range(MAX_ANSWERS):
            try:
                reset(uow, token, answer="Médor")
            except (RefusedReset, ResetLinkGone) as refused:
                outcomes.append(refused.status)

    reset(uow, token, hasher=Meanwhile(more_answers, **CHEAP))  # the first answer, right, resets
    assert outcomes == [422] * (MAX_ANSWERS - 1) + [410]
    assert stored_link(uow, token).answers_checked == MAX_ANSWERS
    assert passwords.verify(FAST, uow.credentials.get("r1").password_hash, NEW_PASSWORD)


def test_a_newer_link_asked_for_during_the_hashing_wins(uow):
    active_account(uow)
    token = requested_token(uow)
    hasher = Interfering(lambda: request(uow), **CHEAP)
    assert gone_reason(lambda: reset(uow, token, hasher=hasher)) is GoneReason.REPLACED
    assert passwords.verify(FAST, uow.credentials.get("r1").password_hash, OLD_PASSWORD)
    assert [e.type for e in uow.published] == ["PasswordResetRequested", "PasswordResetRequested"]


def test_an_answer_hashed_with_older_parameters_is_rehashed_at_the_reset(uow):
    active_account(uow)
    old = uow.credentials.get("r1")
    weaker = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, salt_len=8)
    stored = Credentials(old.password_hash, old.secret_question, weaker.hash("rex"))
    uow.credentials.save("r1", stored)
    reset(uow, requested_token(uow))
    renewed = uow.credentials.get("r1").secret_answer_hash
    assert renewed != stored.secret_answer_hash and not FAST.check_needs_rehash(renewed)
    assert passwords.verify(FAST, renewed, "rex")


# --- the rules alone -----------------------------------------------------------------------------


def test_the_rules_of_a_link_in_their_order():
    link = ResetLink("h", "r1", expires_at=100)
    account = Account("r1", "a", "s", "Curie", "Marie", EMAIL, EMAIL, False, status=AccountStatus.ACTIVE)
    credentials = Credentials("p", QUESTION, "q")

    def reason(**changes) -> GoneReason:
        args = {"link": link, "account": account, "current": "h", "credentials": credentials, "now": 50}
        args.update(changes)
        with pytest.raises(ResetLinkGone) as gone:
            password_resets.ensure_link_opens(**args, same_hash=tokens.same_hash)
        return gone.value.reason

    assert password_resets.ensure_link_opens(link, account, "h", credentials, 50, tokens.same_hash)
    assert reason(link=None) is reason(account=None) is reason(credentials=None) is GoneReason.UNKNOWN
    assert reason(link=ResetLink("h", "r1", 100, ResetState.USED), current=None) is GoneReason.USED
    assert reason(current="other") is reason(current=None) is GoneReason.REPLACED
    assert reason(now=100) is GoneReason.EXPIRED
    assert reason(link=ResetLink("h", "r1", 100, answers_checked=MAX_ANSWERS)) is GoneReason.LOCKED
    counted = ResetLink("h", "r1", 100, answers_checked=MAX_ANSWERS)
    assert password_resets.ensure_link_opens(
        counted, account, "h", credentials, 50, tokens.same_hash, counting_answers=False
    )


def test_an_upgraded_answer_hash_is_kept_only_while_the_stored_one_is_unchanged():
    assert password_resets.kept_answer_hash("a", "a", "new") == "new"
    assert password_resets.kept_answer_hash("b", "a", "new") == "b"  # changed meanwhile
    assert password_resets.kept_answer_hash("a", "a", None) == "a"
