"""structure's handlers on the in-memory unit of work: the rules of step 2, with no Redis."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.structure import domain, handlers, sweeps
from services.structure.captcha import (
    DRAWS_PER_CHALLENGE,
    KEPT_PER_REGISTRATION,
    WRONG_ANSWER,
    CaptchaExpired,
    CaptchaMaker,
    SealingKeys,
)
from services.structure.domain import Features, Identity, StructureFields, UserForm
from services.structure.sirene.sources import Register
from shared.arrivals import NoWait
from shared.events import new_event
from tests.captcha_drawing import RecordingDrawer
from tests.clock import Clock
from tests.unit.fakes.structure import CLAIM_TTL, FakeSirene, FakeStructureUnitOfWork
from tests.unit.test_structure_domain import GOOD_STRUCTURE
from tests.unit.test_structure_domain import SEED as SEED_ESTABLISHMENT

SEED = "81880244900038"
CLOSED = "31719324100013"
LOGIN = "francoise.fleur@example.fr"
TTL = 86400
ANSWER = "HK7RNA"
KEYS = SealingKeys("unit-test-secret")
OPEN = SEED_ESTABLISHMENT


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def uow(clock):
    return FakeStructureUnitOfWork(clock)


@pytest.fixture
def source():
    return FakeSirene(OPEN, replace(OPEN, siret=CLOSED, open=False))


@pytest.fixture
def sirene(source):
    return Register([source])


@pytest.fixture
def maker():
    return CaptchaMaker(text=lambda: ANSWER)


def start(
    uow, sirene, registration_id="r-1", identifier=SEED, email=LOGIN, identifier_type="SIRET", country="FR"
):
    """RegistrationStarted handled as the bus handles it: inside one transaction."""
    data = {
        "login_email": email,
        "identifier_type": identifier_type,
        "identifier": identifier,
        "country": country,
    }
    event = new_event("RegistrationStarted", "identify", registration_id, data)
    uow.run(handlers.on_registration_started, event, uow, register=sirene, keep_seconds=TTL)
    return uow.registrations.get(registration_id)


def confirm(uow, sirene, registration_id="r-1", email=LOGIN, captcha=None, structure=GOOD_STRUCTURE, **user):
    """Step 2 with a good form for the seed's SIRET; `captcha` is (id, answer) when one is asked."""
    command = handlers.ConfirmStructure(
        registration_id=registration_id,
        structure=structure,
        user=UserForm(
            **{"last_name": "Fleur", "first_name": "Françoise", "login_email_confirmation": email, **user}
        ),
        features=Features(),
        captcha_id=captcha[0] if captcha else None,
        captcha_answer=captcha[1] if captcha else None,
    )
    return handlers.confirm_structure(
        command,
        uow,
        sirene,
        captcha_required=captcha is not None,
        arrivals=NoWait(),
        claim_ttl_seconds=CLAIM_TTL,
    )


# RegistrationStarted ---------------------------------------------------------------------------


def test_a_started_registration_is_kept_with_its_sirene_prefill(uow, sirene):
    registration = start(uow, sirene)
    assert registration.lookup is domain.LookupOutcome.FOUND
    assert registration.prefill == replace(GOOD_STRUCTURE, country="FR")
    assert (registration.login_email, registration.identity) == (LOGIN, Identity("SIRET", SEED, "FR"))
    assert not registration.confirmed
    assert uow.registrations.kept_for["r-1"] == TTL
    assert uow.published == []


@pytest.mark.parametrize(("siret", "outcome"), [(CLOSED, domain.CLOSED), ("73282932000074", domain.UNKNOWN)])
def test_a_closed_or_unknown_siret_is_kept_with_an_empty_form(uow, sirene, siret, outcome):
    registration = start(uow, sirene, identifier=siret)
    assert registration.lookup is outcome
    assert registration.prefill == StructureFields()


def test_other_identifiers_are_not_looked_up_and_start_empty_in_their_country(uow):
    class NoSirene:
        def lookup(self, siret):
            raise AssertionError("only SIRETs are looked up")

    registration = start(
        uow, NoSirene(), identifier="EIN 12-3456789", identifier_type="HORS_UE", country="US"
    )
    assert registration.lookup is domain.LookupOutcome.NOT_APPLICABLE
    assert registration.prefill == StructureFields(country="US")


def test_a_registration_is_written_once(uow, sirene):
    first = start(uow, sirene)
    again = start(uow, sirene, email="autre@example.fr", identifier=CLOSED)
    assert again == first


# The form ---------------------------------------------------------------------------------------


def test_the_form_of_a_started_registration(uow, sirene):
    start(uow, sirene)
    assert (
        handlers.registration_form("r-1", uow, NoWait()).prefill.company_name == "SNC AU PIED DE COCHON LGE"
    )


def test_the_form_of_an_unknown_registration_is_not_found(uow):
    with pytest.raises(domain.UnknownRegistration):
        handlers.registration_form("nope", uow, NoWait())


def test_the_form_of_a_closed_siret_says_why_it_cannot_go_on(uow, sirene):
    start(uow, sirene, identifier=CLOSED)
    with pytest.raises(domain.UnusableIdentifier) as caught:
        handlers.registration_form("r-1", uow, NoWait())
    assert caught.value.errors == {"identifier": [domain.LOOKUP_ERRORS[domain.CLOSED]]}


# Confirming step 2 ------------------------------------------------------------------------------


def test_confirming_opens_the_structure_and_announces_it(uow, sirene):
    start(uow, sirene)
    structure = confirm(uow, sirene, structure=replace(GOOD_STRUCTURE, label="Brasserie"))
    assert uow.structures.by_id[structure.structure_id] == structure
    assert structure.created_at == "2027-01-15T08:00:00+00:00"
    assert uow.structures.holders[Identity("SIRET", SEED, "FR")] == structure.structure_id
    assert uow.registrations.get("r-1").structure_id == structure.structure_id
    assert uow.published_types() == ["StructureConfirmed"]
    event = uow.published[0]
    assert (event.registration_id, event.structure_id) == ("r-1", structure.structure_id)
    assert event.structure["label"] == "Brasserie" and event.structure["identifier"] == SEED
    assert event.user["login_email"] == LOGIN and event.features == {"payment_requests": True, "dume": False}


def test_an_unknown_registration_cannot_confirm(uow, sirene):
    with pytest.raises(domain.UnknownRegistration):
        confirm(uow, sirene, registration_id="nope")
    assert uow.published == []


def test_a_registration_confirms_once(uow, sirene):
    start(uow, sirene)
    confirm(uow, sirene)
    with pytest.raises(domain.AlreadyConfirmed):
        confirm(uow, sirene)
    assert len(uow.structures.by_id) == 1 and uow.published_types() == ["StructureConfirmed"]


def test_an_identifier_that_has_a_structure_is_never_taken_over(uow, sirene):
    start(uow, sirene, "r-1")
    start(uow, sirene, "r-2", email="paul.martin@example.fr")
    first = confirm(uow, sirene, "r-1")
    with pytest.raises(domain.StructureExists) as caught:
        confirm(uow, sirene, "r-2", email="paul.martin@example.fr")
    assert caught.value.registration.registration_id == "r-2"
    assert "rattachement" in caught.value.message and "identifier" in caught.value.errors
    assert list(uow.structures.by_id) == [first.structure_id]
    assert not uow.registrations.get("r-2").confirmed
    assert uow.published_types() == ["StructureConfirmed"]


def test_a_siret_closed_since_the_start_cannot_open_a_structure(uow, sirene, source):
    start(uow, sirene)
    source.by_siret[SEED] = replace(OPEN, open=False)
    with pytest.raises(domain.Refused) as caught:
        confirm(uow, sirene)
    assert caught.value.errors == {"identifier": [domain.LOOKUP_ERRORS[domain.CLOSED]]}
    assert uow.structures.by_id == {} and uow.published == []


def test_every_faulty_field_is_refused_at_once_and_nothing_written(uow, sirene):
    start(uow, sirene)
    with pytest.raises(domain.Refused) as caught:
        confirm(
            uow, sirene, email="autre@example.fr", structure=replace(GOOD_STRUCTURE, city=""), last_name=""
        )
    assert set(caught.value.errors) == {"user.login_email_confirmation", "user.last_name", "structure.city"}
    assert caught.value.registration == uow.registrations.get("r-1")  # to show the form again
    assert uow.structures.by_id == {} and uow.published == [] and uow.commits == 1  # RegistrationStarted's


# The bot challenge ------------------------------------------------------------------------------


@pytest.fixture
def drawer():
    return RecordingDrawer()


@pytest.fixture
def drawing_maker(drawer):
    return CaptchaMaker(text=lambda: ANSWER, drawer=drawer)


def test_a_new_challenge_is_kept_hashed_and_sealed_never_its_text_or_image(uow, drawing_maker, drawer):
    issued = handlers.issue_captcha(uow, drawing_maker, KEYS)
    assert issued.png is None and drawer.drawn == []  # a page's challenge: drawn when its <img> loads
    kept = uow.captchas.by_id[issued.captcha_id]
    assert ANSWER not in kept.stored.answer_hash and ANSWER not in kept.sealed_text
    assert KEYS.unseal(kept.sealed_text) == ANSWER
    assert SealingKeys("another-key").unseal(kept.sealed_text) is None
    png = handlers.captcha_image(issued.captcha_id, uow, drawing_maker, KEYS)
    assert png.startswith(b"\x89PNG") and drawer.drawn == [ANSWER]  # drawn from the sealed text
    with pytest.raises(CaptchaExpired):
        handlers.captcha_image("unknown", uow, drawing_maker, KEYS)


def test_the_image_is_drawn_a_bounded_number_of_times(uow, drawing_maker, drawer):
    """Each drawing costs CPU and shows the text under new noise: a challenge gets only a few."""
    for_a_page = handlers.issue_captcha(uow, drawing_maker, KEYS)
    for _ in range(DRAWS_PER_CHALLENGE):
        handlers.captcha_image(for_a_page.captcha_id, uow, drawing_maker, KEYS)
    with pytest.raises(CaptchaExpired):
        handlers.captcha_image(for_a_page.captcha_id, uow, drawing_maker, KEYS)
    assert len(drawer.drawn) == DRAWS_PER_CHALLENGE

    drawer.drawn.clear()
    with_image = handlers.issue_captcha(uow, drawing_maker, KEYS, with_image=True)
    assert with_image.png is not None and with_image.png.startswith(b"\x89PNG")
    for _ in range(DRAWS_PER_CHALLENGE - 1):  # the image given at once was the first drawing
        handlers.captcha_image(with_image.captcha_id, uow, drawing_maker, KEYS)
    with pytest.raises(CaptchaExpired):
        handlers.captcha_image(with_image.captcha_id, uow, drawing_maker, KEYS)
    assert len(drawer.drawn) == DRAWS_PER_CHALLENGE


def test_an_expired_challenge_has_no_image(uow, drawing_maker, clock, drawer):
    issued = handlers.issue_captcha(uow, drawing_maker, KEYS)
    clock.now += drawing_maker.ttl_seconds + 1
    with pytest.raises(CaptchaExpired):
        handlers.captcha_image(issued.captcha_id, uow, drawing_maker, KEYS)
    assert drawer.drawn == []


def test_a_challenge_sealed_with_the_previous_key_is_still_drawn_while_rotating(uow, drawing_maker):
    issued = handlers.issue_captcha(uow, drawing_maker, KEYS)
    rotated = SealingKeys("the-new-secret", previous=KEYS.current)
    assert handlers.captcha_image(issued.captcha_id, uow, drawing_maker, rotated).startswith(b"\x89PNG")
    with pytest.raises(CaptchaExpired):  # the previous key dropped: the challenge cannot be drawn
        handlers.captcha_image(issued.captcha_id, uow, drawing_maker, SealingKeys("the-new-secret"))


def test_a_registration_keeps_only_its_latest_challenges(uow, sirene, maker, clock):
    """Issuing one more spends the oldest, in the same transaction: a flood of challenges for
    one registration keeps at most KEPT_PER_REGISTRATION of them."""
    start(uow, sirene, "r-1")
    start(uow, sirene, "r-2")
    issued = []
    for _ in range(KEPT_PER_REGISTRATION + 2):
        issued.append(handlers.issue_captcha(uow, maker, KEYS, "r-1").captcha_id)
        clock.now += 1
    other = handlers.issue_captcha(uow, maker, KEYS, "r-2").captcha_id
    unbound = handlers.issue_captcha(uow, maker, KEYS).captcha_id
    kept = issued[-KEPT_PER_REGISTRATION:]
    assert set(uow.captchas.by_id) == {*kept, other, unbound}
    assert set(uow.captchas.read_issued("r-1")()) == set(kept)
    with pytest.raises(domain.Refused) as caught:
        confirm(uow, sirene, "r-1", captcha=(issued[0], ANSWER))  # spent: its right answer fails
    assert caught.value.errors == {"captcha": [WRONG_ANSWER]}
    confirm(uow, sirene, "r-1", captcha=(kept[0], ANSWER))


def test_expired_challenges_of_a_registration_are_forgotten(uow, sirene, maker, clock):
    start(uow, sirene, "r-1")
    old = handlers.issue_captcha(uow, maker, KEYS, "r-1").captcha_id
    clock.now += maker.ttl_seconds + 1
    new = handlers.issue_captcha(uow, maker, KEYS, "r-1").captcha_id
    assert uow.captchas.read_issued("r-1")().keys() == {new}
    assert old not in uow.captchas.by_id


def test_a_challenge_for_an_unknown_registration_is_refused(uow, maker):
    with pytest.raises(domain.UnknownRegistration):
        handlers.issue_captcha(uow, maker, KEYS, "nobody")
    assert uow.captchas.by_id == {} and uow.captchas.issued == {}


def test_a_solved_challenge_lets_the_structure_open_and_is_spent(uow, sirene, maker):
    start(uow, sirene, "r-1")
    start(uow, sirene, "r-2", identifier="EIN 1", identifier_type="HORS_UE", country="US")
    new = handlers.issue_captcha(uow, maker, KEYS)
    confirm(uow, sirene, "r-1", captcha=(new.captcha_id, " hk7 rna "))
    assert new.captcha_id not in uow.captchas.by_id
    with pytest.raises(domain.Refused) as caught:
        confirm(
            uow,
            sirene,
            "r-2",
            captcha=(new.captcha_id, ANSWER),
            structure=replace(GOOD_STRUCTURE, country="US"),
        )
    assert caught.value.errors == {"captcha": [WRONG_ANSWER]}


def test_a_wrong_answer_is_refused_and_spends_the_challenge(uow, sirene, maker):
    start(uow, sirene)
    new = handlers.issue_captcha(uow, maker, KEYS)
    with pytest.raises(domain.Refused) as caught:
        confirm(uow, sirene, captcha=(new.captcha_id, "AAAAAA"))
    assert caught.value.errors == {"captcha": [WRONG_ANSWER]}
    assert new.captcha_id not in uow.captchas.by_id
    with pytest.raises(domain.Refused):
        confirm(uow, sirene, captcha=(new.captcha_id, ANSWER))  # its right answer no longer helps
    assert uow.published == []


def test_a_missing_or_expired_challenge_is_refused(uow, sirene, maker, clock):
    start(uow, sirene)
    with pytest.raises(domain.Refused) as missing:
        confirm(uow, sirene, captcha=(None, None))
    assert missing.value.errors == {"captcha": [WRONG_ANSWER]}
    new = handlers.issue_captcha(uow, maker, KEYS)
    clock.now += maker.ttl_seconds + 1
    with pytest.raises(domain.Refused) as expired:
        confirm(uow, sirene, captcha=(new.captcha_id, ANSWER))
    assert expired.value.errors == {"captcha": [WRONG_ANSWER]}


def test_field_errors_and_the_challenge_come_together_and_the_challenge_is_spent(uow, sirene, maker):
    start(uow, sirene)
    new = handlers.issue_captcha(uow, maker, KEYS)
    with pytest.raises(domain.Refused) as caught:
        confirm(uow, sirene, captcha=(new.captcha_id, "AAAAAA"), last_name="")
    assert set(caught.value.errors) == {"user.last_name", "captcha"}
    assert new.captcha_id not in uow.captchas.by_id


def test_a_challenge_checked_when_the_identifier_is_taken_is_spent_too(uow, sirene, maker):
    """The refusal decided inside the transaction still commits the spent challenge."""
    start(uow, sirene, "r-1")
    start(uow, sirene, "r-2", email="paul.martin@example.fr")
    confirm(uow, sirene, "r-1")
    new = handlers.issue_captcha(uow, maker, KEYS)
    with pytest.raises(domain.StructureExists):
        confirm(uow, sirene, "r-2", email="paul.martin@example.fr", captcha=(new.captcha_id, ANSWER))
    assert new.captcha_id not in uow.captchas.by_id
    assert uow.published_types() == ["StructureConfirmed"]


class Interleaved(FakeStructureUnitOfWork):
    """Runs `meanwhile` once, just before the next transaction: another request that got there
    between this one's first read and its transaction."""

    meanwhile = None

    def run(self, body, *args, **kwargs):
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return super().run(body, *args, **kwargs)


def test_the_transaction_decides_again_on_what_changed_since_the_first_read(clock, sirene):
    """Two people confirm the same structure at once: the second is refused inside the transaction."""
    uow = Interleaved(clock)
    start(uow, sirene, "r-1")
    start(uow, sirene, "r-2", email="paul.martin@example.fr")
    uow.meanwhile = lambda: confirm(uow, sirene, "r-2", email="paul.martin@example.fr")
    with pytest.raises(domain.StructureExists):
        confirm(uow, sirene, "r-1")
    assert [s.registration_id for s in uow.structures.by_id.values()] == ["r-2"]
    assert not uow.registrations.get("r-1").confirmed


def test_the_same_registration_confirmed_twice_at_once_counts_once(clock, sirene):
    uow = Interleaved(clock)
    start(uow, sirene)
    uow.meanwhile = lambda: confirm(uow, sirene)
    with pytest.raises(domain.AlreadyConfirmed):
        confirm(uow, sirene)
    assert len(uow.structures.by_id) == 1 and uow.published_types() == ["StructureConfirmed"]


# The claim on the identity: held by an activation, released when none comes in time -------------

PAST_THE_DEADLINE = CLAIM_TTL + domain.RELEASE_MARGIN_SECONDS
NO_ACTIVATION_PENDING = lambda: False  # noqa: E731
SQUATTER = "squatter@example.net"


def activated(uow, structure, role="GESTIONNAIRE_PRINCIPAL"):
    """AccountActivated for the structure's first account, handled as the bus does."""
    data = {"account_id": "a-1", "structure_id": structure.structure_id, "role": role}
    event = new_event("AccountActivated", "activate", structure.registration_id, data)
    uow.run(handlers.on_account_activated, event, uow)


def sweep(uow, pending=NO_ACTIVATION_PENDING):
    return sweeps.release_unclaimed(uow, pending)


def test_a_new_structure_is_claimed_until_its_deadline_which_activate_learns(uow, sirene, clock):
    start(uow, sirene)
    structure = confirm(uow, sirene)
    deadline = int(clock.now) + CLAIM_TTL
    assert structure.claim_expires_at == deadline
    assert uow.structures.claims[structure.structure_id].status is domain.ClaimStatus.CLAIMED
    assert uow.structures.deadlines == {structure.structure_id: deadline}
    (confirmed,) = uow.published
    assert confirmed.claim_expires_at == "2027-01-22T08:00:00+00:00"


def test_a_squatted_identifier_is_released_and_opens_a_new_structure(uow, sirene, clock):
    start(uow, sirene, "squat", email=SQUATTER)
    squatted = confirm(uow, sirene, "squat", email=SQUATTER)
    clock.advance(PAST_THE_DEADLINE)
    assert sweep(uow) == 1
    (released,) = [e for e in uow.published if e.type == "StructureReleased"]
    assert (released.registration_id, released.structure_id, released.identifier) == (
        "squat",
        squatted.structure_id,
        SEED,
    )
    assert released.released_at == "2027-01-22T08:00:02+00:00"
    assert uow.structures.claims[squatted.structure_id].status is domain.ClaimStatus.RELEASED
    assert uow.structures.deadlines == {}

    start(uow, sirene, "company")
    company = confirm(uow, sirene, "company")
    assert uow.structures.holders[Identity("SIRET", SEED, "FR")] == company.structure_id
    assert sweep(uow) == 0  # a second beat finds nothing left


def test_the_attack_succeeds_without_the_sweep(uow, sirene, clock):
    """What the sweep prevents: the identifier stays taken however long the squatter waits."""
    start(uow, sirene, "squat", email=SQUATTER)
    confirm(uow, sirene, "squat", email=SQUATTER)
    clock.advance(10 * PAST_THE_DEADLINE)
    start(uow, sirene, "company")
    with pytest.raises(domain.StructureExists):
        confirm(uow, sirene, "company")


def test_nothing_is_released_before_the_deadline_and_its_margin(uow, sirene, clock):
    start(uow, sirene)
    structure = confirm(uow, sirene)
    clock.advance(PAST_THE_DEADLINE - 1)
    assert sweep(uow) == 0
    assert uow.structures.holders[structure.identity] == structure.structure_id
    clock.advance(1)
    assert sweep(uow) == 1


def test_nothing_is_released_while_an_activation_is_still_unhandled(uow, sirene, clock):
    start(uow, sirene)
    structure = confirm(uow, sirene)
    clock.advance(PAST_THE_DEADLINE)
    assert sweep(uow, pending=lambda: True) == 0
    assert uow.structures.claims[structure.structure_id].status is domain.ClaimStatus.CLAIMED
    assert uow.structures.deadlines == {structure.structure_id: structure.claim_expires_at}
    assert uow.published_types() == ["StructureConfirmed"]
    assert sweep(uow) == 1  # the next round, once it was handled (and held nothing)


def test_the_principal_manager_s_activation_holds_the_structure_for_good(uow, sirene, clock):
    start(uow, sirene)
    structure = confirm(uow, sirene)
    activated(uow, structure)
    activated(uow, structure)  # a second delivery changes nothing
    assert uow.structures.claims[structure.structure_id].status is domain.ClaimStatus.HELD
    assert uow.structures.deadlines == {}
    clock.advance(10 * PAST_THE_DEADLINE)
    assert sweep(uow) == 0
    assert uow.structures.holders[structure.identity] == structure.structure_id
    assert uow.published_types() == ["StructureConfirmed"]


def test_another_role_or_an_unknown_structure_holds_nothing(uow, sirene, clock):
    start(uow, sirene)
    structure = confirm(uow, sirene)
    activated(uow, structure, role="UTILISATEUR")
    activated(uow, replace(structure, structure_id="unknown"))
    assert uow.structures.claims[structure.structure_id].status is domain.ClaimStatus.CLAIMED
    clock.advance(PAST_THE_DEADLINE)
    assert sweep(uow) == 1


def test_an_activation_of_a_released_structure_is_logged_and_changes_nothing(uow, sirene, clock, caplog):
    start(uow, sirene)
    structure = confirm(uow, sirene)
    clock.advance(PAST_THE_DEADLINE)
    sweep(uow)
    activated(uow, structure)
    assert uow.structures.claims[structure.structure_id].status is domain.ClaimStatus.RELEASED
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert structure.structure_id in caplog.records[0].getMessage()


def test_a_guard_that_names_another_structure_is_left_alone(uow, sirene, clock):
    start(uow, sirene)
    structure = confirm(uow, sirene)
    uow.structures.holders[structure.identity] = "another-structure"
    clock.advance(PAST_THE_DEADLINE)
    assert sweep(uow) == 1
    assert uow.structures.holders[structure.identity] == "another-structure"


def test_a_deadline_left_by_a_forgotten_structure_is_dropped(uow, clock):
    uow.structures.deadlines["gone"] = int(clock.now) - CLAIM_TTL
    assert sweep(uow) == 0
    assert uow.structures.deadlines == {} and uow.published == []


def test_an_activation_handled_during_the_sweep_keeps_its_structure(clock, sirene):
    """The activation is handled between the sweep's look at the deadlines and its transaction:
    the transaction reads the claim again and releases nothing."""
    uow = Interleaved(clock)
    start(uow, sirene)
    structure = confirm(uow, sirene)
    clock.advance(PAST_THE_DEADLINE)
    uow.meanwhile = lambda: activated(uow, structure)
    assert sweep(uow) == 0
    assert uow.structures.claims[structure.structure_id].status is domain.ClaimStatus.HELD
    assert uow.structures.holders[structure.identity] == structure.structure_id
    assert "StructureReleased" not in uow.published_types()


def test_two_sweeps_at_once_release_once(clock, sirene):
    uow = Interleaved(clock)
    start(uow, sirene)
    confirm(uow, sirene)
    clock.advance(PAST_THE_DEADLINE)
    uow.meanwhile = lambda: sweep(uow)
    assert sweep(uow) == 0
    assert uow.published_types().count("StructureReleased") == 1


def test_a_newcomer_sees_the_structure_that_already_has_the_identifier(uow, sirene):
    start(uow, sirene, "r-1")
    assert handlers.existing_structure(Identity("SIRET", SEED, "FR"), uow) is None
    first = confirm(uow, sirene, "r-1")
    existing = handlers.existing_structure(Identity("SIRET", SEED, "FR"), uow)
    assert existing == domain.ExistingStructure(
        first.structure_id, GOOD_STRUCTURE.company_name, GOOD_STRUCTURE.postal_code, GOOD_STRUCTURE.city
    )
    assert handlers.existing_structure(Identity("SIRET", CLOSED, "FR"), uow) is None
