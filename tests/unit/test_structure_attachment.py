"""The attachment request (rattachement) of structure's step 2, on the in-memory unit of work."""

from __future__ import annotations

import pytest

from services.structure import attachment, domain, handlers
from services.structure.captcha import CaptchaMaker, SealingKeys
from services.structure.domain import UserForm
from services.structure.sirene.sources import Register
from shared.arrivals import NoWait
from shared.errors import Conflict
from tests.clock import Clock
from tests.unit.fakes.structure import FakeSirene, FakeStructureUnitOfWork
from tests.unit.test_structure_handlers import LOGIN, OPEN, confirm, start

NEWCOMER = "paul.martin@example.fr"


@pytest.fixture
def uow():
    return FakeStructureUnitOfWork(Clock())


@pytest.fixture
def sirene():
    return Register([FakeSirene(OPEN)])


def ask(uow, registration_id="r-2", email=NEWCOMER, captcha=None, **user):
    command = handlers.RequestAttachment(
        registration_id=registration_id,
        user=UserForm(
            **{"last_name": "Martin", "first_name": "Paul", "login_email_confirmation": email, **user}
        ),
        captcha_id=captcha[0] if captcha else None,
        captcha_answer=captcha[1] if captcha else None,
    )
    return handlers.request_attachment(command, uow, captcha_required=captcha is not None, arrivals=NoWait())


@pytest.fixture
def existing(uow, sirene):
    """A structure opened by r-1; r-2, a newcomer with the same SIRET, is started."""
    start(uow, sirene, "r-1")
    opened = confirm(uow, sirene, "r-1")
    start(uow, sirene, "r-2", email=NEWCOMER)
    uow.published.clear()
    return opened


def test_a_newcomer_asks_to_join_the_structure_that_has_the_identifier(uow, existing):
    request = ask(uow)
    assert request.structure.structure_id == existing.structure_id
    (event,) = uow.published
    assert event.type == "AttachmentRequested"
    data = event.data()
    assert data["structure_id"] == existing.structure_id
    assert data["attachment_request_id"] == request.attachment_request_id
    assert data["company_name"] == OPEN.company_name
    assert data["user"]["login_email"] == NEWCOMER and data["user"]["first_name"] == "Paul"
    assert uow.registrations.get("r-2").structure_id == existing.structure_id
    assert uow.registrations.attachments["r-2"] == request.attachment_request_id
    assert list(uow.structures.by_id) == [existing.structure_id]  # never a second structure


def test_a_request_is_made_once(uow, existing, sirene):
    ask(uow)
    with pytest.raises(domain.AlreadyConfirmed):
        ask(uow)
    with pytest.raises(domain.AlreadyConfirmed):
        confirm(uow, sirene, "r-2", email=NEWCOMER)
    assert [e.type for e in uow.published] == ["AttachmentRequested"]


def test_every_faulty_field_of_the_person_is_refused_at_once_and_nothing_written(uow, existing):
    with pytest.raises(domain.Refused) as refused:
        ask(uow, email="someone.else@example.fr", last_name="", first_name="\n")
    assert set(refused.value.errors) == {
        "user.login_email_confirmation",
        "user.last_name",
        "user.first_name",
    }
    assert not uow.published and not uow.registrations.get("r-2").confirmed


def test_there_is_nothing_to_join_when_the_identifier_has_no_structure(uow, sirene):
    start(uow, sirene, "r-1", email=LOGIN)
    with pytest.raises(attachment.NoStructureToJoin) as caught:
        ask(uow, "r-1", email=LOGIN)
    assert isinstance(caught.value, Conflict) and "identifier" in caught.value.errors
    assert not uow.published and not uow.registrations.get("r-1").confirmed


def test_an_unknown_registration_cannot_ask(uow):
    with pytest.raises(domain.UnknownRegistration):
        ask(uow, "nobody")


def test_the_challenge_is_checked_and_spent_as_at_step_two(uow, existing):
    maker = CaptchaMaker(text=lambda: "HK7RNA")
    issued = handlers.issue_captcha(uow, maker, SealingKeys("unit-test-secret"), "r-2")
    with pytest.raises(domain.Refused) as refused:
        ask(uow, captcha=(issued.captcha_id, "WRONG1"))
    assert list(refused.value.errors) == ["captcha"]
    issued = handlers.issue_captcha(uow, maker, SealingKeys("unit-test-secret"), "r-2")
    assert ask(uow, captcha=(issued.captcha_id, "hk7 rna")).structure.structure_id == existing.structure_id
