"""structure's sweeps, run by beat: release the structures not activated in time, and check the
structures opened while no SIRENE source could answer.

Each structure is settled in its own transaction, which reads it again, watched: a sweep run
twice, or twice at once, or an event handled meanwhile, makes it decide again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from services.structure import domain, verification
from services.structure.repository import StructureUnitOfWork
from services.structure.sirene.model import Lookup
from services.structure.sirene.sources import Register
from services.structure.verification import CheckStep
from shared.timestamps import iso_utc

log = logging.getLogger(__name__)

SWEEP_MAX_BATCHES = 100
# Structures checked per round: the INSEE API allows 30 requests a minute to all processes.
CHECKS_PER_ROUND = 20


# --- unclaimed structures --------------------------------------------------------------------


def release_unclaimed(uow: StructureUnitOfWork, activations_pending: Callable[[], bool]) -> int:
    """Structures whose first account was not activated by their claim's deadline are released
    (StructureReleased): their identity may open a new structure. Returns how many.

    Nothing is released while `activations_pending()` says that an AccountActivated is not
    handled yet: it may be the one that holds a structure due now; the next round sees it
    handled. Asked after the clock is read, so that every activation that read its clock before
    the deadline (activate refuses the others) has published its event by then. Each structure
    is released in its own transaction, which reads the claim and the identity's guard again,
    watched: an activation handled meanwhile, or a second sweep, makes it decide again. Safe to
    run twice, or twice at once."""
    now = uow.clock()
    released = 0
    for _ in range(SWEEP_MAX_BATCHES):
        due = uow.structures.due_for_release(domain.release_cutoff(now))
        if not due:
            break
        if activations_pending():
            log.info("structures due for release wait: AccountActivated entries are not handled yet")
            break
        released += sum(uow.run(_release_one, uow, structure_id, now) for structure_id in due)
    return released


def _release_one(uow: StructureUnitOfWork, structure_id: str, now: float) -> bool:
    (claim,) = uow.read_together(uow.structures.read_claim(structure_id))
    step = domain.release_step(claim, now)
    if step is domain.ReleaseStep.FORGET:
        uow.structures.forget_deadline(structure_id)
    if step is not domain.ReleaseStep.RELEASE or claim is None:
        return False
    (holder,) = uow.read_together(uow.structures.read_holder(claim.identity))
    uow.structures.release(claim, iso_utc(now), free_identity=domain.frees_identity(claim, holder))
    uow.publish(domain.structure_released(claim, now))
    return True


# --- structures to verify --------------------------------------------------------------------


@dataclass
class Checked:
    confirmed: int = 0
    flagged: int = 0
    waiting: int = 0  # still to verify: no source could answer


def verify_unverified(uow: StructureUnitOfWork, register: Register, limit: int = CHECKS_PER_ROUND) -> Checked:
    """Ask the sources again about the structures opened `to_verify`, oldest first, up to
    `limit` a round. The round stops at the first SIRET no source could answer: they are down,
    the next round tries again. Safe to run twice, or twice at once."""
    checked = Checked()
    due = uow.structures.to_verify(limit)
    for position, structure_id in enumerate(due):
        (claim,) = uow.read_together(uow.structures.read_claim(structure_id))
        lookup = register.lookup(claim.identity.identifier) if claim is not None else None
        step = uow.run(_settle_one, uow, structure_id, lookup)
        if step is CheckStep.WAIT:
            checked.waiting = len(due) - position
            break
        if step is CheckStep.CONFIRM:
            checked.confirmed += 1
        elif step in (CheckStep.FLAG_UNKNOWN, CheckStep.FLAG_CLOSED):
            checked.flagged += 1
    return checked


def _settle_one(uow: StructureUnitOfWork, structure_id: str, lookup: Lookup | None) -> CheckStep:
    claim, status = uow.read_together(
        uow.structures.read_claim(structure_id), uow.structures.read_verification(structure_id)
    )
    step = verification.check_step(status, lookup if claim is not None else None)
    if step is CheckStep.FORGET or claim is None:
        uow.structures.forget_check(structure_id)
        return CheckStep.FORGET
    if step is CheckStep.WAIT:
        return step
    uow.structures.record_check(structure_id, verification.settled(step))
    if step is CheckStep.CONFIRM:
        return step
    (registration,) = uow.read_together(uow.registrations.read(claim.registration_id))
    login_email = registration.login_email if registration is not None else None
    uow.publish(verification.structure_flagged(claim, step, login_email, uow.clock()))
    return step
