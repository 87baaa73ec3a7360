"""Structures opened while no SIRENE source could answer: opened `to_verify`, then checked by the
beat's sweep (confirmed quietly, or flagged and released), on the in-memory unit of work."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.structure import domain, sweeps
from services.structure.domain import ClaimStatus, Identity, Verification
from services.structure.sirene.sources import Register
from tests.clock import Clock
from tests.unit.fakes.structure import FakeSirene, FakeStructureUnitOfWork
from tests.unit.test_structure_handlers import LOGIN, OPEN, SEED, confirm, start

IDENTITY = Identity("SIRET", SEED, "FR")


@pytest.fixture
def uow():
    return FakeStructureUnitOfWork(Clock())


@pytest.fixture
def source():
    return FakeSirene(OPEN)


@pytest.fixture
def register(source):
    return Register([source])


@pytest.fixture
def opened_unchecked(uow, register, source):
    """A structure opened while the only source was down; the source is back afterwards."""
    source.unavailable = True
    registration = start(uow, register)
    assert registration.lookup is domain.UNVERIFIED and registration.prefill_source == "none"
    structure = confirm(uow, register)
    source.unavailable = False
    return structure


def test_a_siret_no_source_could_check_opens_a_structure_to_verify(uow, opened_unchecked):
    assert opened_unchecked.verification is Verification.TO_VERIFY
    assert uow.structures.to_verify(10) == [opened_unchecked.structure_id]
    (event,) = uow.published
    assert event.type == "StructureConfirmed" and event.verified is False


def test_a_checked_siret_opens_a_checked_structure(uow, register):
    start(uow, register)
    structure = confirm(uow, register)
    assert structure.verification is Verification.CHECKED and uow.structures.to_verify(10) == []
    assert uow.published[0].verified is True


def test_while_the_sources_are_still_down_nothing_changes(uow, register, source, opened_unchecked):
    source.unavailable = True
    checked = sweeps.verify_unverified(uow, register)
    assert (checked.confirmed, checked.flagged, checked.waiting) == (0, 0, 1)
    assert uow.structures.to_verify(10) == [opened_unchecked.structure_id]
    assert uow.published_types() == ["StructureConfirmed"]


def test_an_open_establishment_is_confirmed_quietly(uow, register, opened_unchecked):
    checked = sweeps.verify_unverified(uow, register)
    assert checked.confirmed == 1
    assert uow.structures.verifications[opened_unchecked.structure_id] is Verification.CONFIRMED
    assert uow.structures.to_verify(10) == [] and uow.published_types() == ["StructureConfirmed"]
    assert uow.structures.claims[opened_unchecked.structure_id].status is ClaimStatus.CLAIMED


@pytest.mark.parametrize("known_as, reason", [(None, "unknown"), (replace(OPEN, open=False), "closed")])
def test_an_unknown_or_closed_siret_is_flagged_and_its_claim_left_to_run_out(
    uow, register, source, opened_unchecked, known_as, reason
):
    source.by_siret = {SEED: known_as} if known_as else {}
    checked = sweeps.verify_unverified(uow, register)
    assert checked.flagged == 1
    structure_id = opened_unchecked.structure_id
    assert uow.structures.verifications[structure_id] is Verification.FLAGGED
    # Released at its deadline by the claim sweep, which waits for activations on their way.
    assert uow.structures.claims[structure_id].status is ClaimStatus.CLAIMED
    assert uow.structures.holders[IDENTITY] == structure_id
    flagged = uow.published[-1]
    assert (flagged.type, flagged.reason, flagged.login_email) == ("StructureFlagged", reason, LOGIN)
    assert (flagged.structure_id, flagged.identifier) == (structure_id, SEED)
    assert sweeps.verify_unverified(uow, register).flagged == 0  # settled once
    assert uow.published_types() == ["StructureConfirmed", "StructureFlagged"]


def test_a_flagged_structure_whose_account_is_active_stays_held(uow, register, source, opened_unchecked):
    uow.structures.hold(opened_unchecked.structure_id)
    source.by_siret = {}
    sweeps.verify_unverified(uow, register)
    assert uow.structures.claims[opened_unchecked.structure_id].status is ClaimStatus.HELD
    assert uow.published_types() == ["StructureConfirmed", "StructureFlagged"]


def test_a_structure_released_as_unclaimed_is_no_longer_checked(uow, register, source, opened_unchecked):
    claim = uow.structures.claims[opened_unchecked.structure_id]
    uow.structures.release(claim, "2026-11-29T00:00:00Z", free_identity=True)
    source.by_siret = {}
    assert sweeps.verify_unverified(uow, register).flagged == 0
    assert uow.published_types() == ["StructureConfirmed"]


def test_without_its_registration_the_flag_names_no_address(uow, register, source, opened_unchecked):
    del uow.registrations.by_id["r-1"]
    source.by_siret = {}
    sweeps.verify_unverified(uow, register)
    assert uow.published[-1].login_email is None
