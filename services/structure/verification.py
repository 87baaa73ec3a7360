"""Rules for a structure opened while no SIRENE source could check its SIRET (`to_verify`).
Pure: no Redis, no clock.

The beat's sweep asks the sources again. Still unavailable: it waits for the next round. Known
and open: the structure is confirmed, quietly. Unknown, or closed: the structure is flagged
(StructureFlagged): activate closes its pending account, so that it is never activated, and
notify tells the person by email. Its claim is left to run out: the claim sweep releases it at
its deadline like any structure whose account was not activated, with the same care for an
activation on its way (an account activated before activate saw the flag holds the structure,
and is left to the operators).
"""

from __future__ import annotations

from enum import StrEnum

from services.structure.domain import Claim, Verification
from services.structure.sirene.model import Lookup
from shared.contracts import StructureFlagged
from shared.timestamps import iso_utc


class CheckStep(StrEnum):
    WAIT = "wait"  # no source could answer: ask again next round
    CONFIRM = "confirm"
    FLAG_UNKNOWN = "unknown"
    FLAG_CLOSED = "closed"
    FORGET = "forget"  # the structure is gone or no longer waits for a check


def check_step(verification: Verification | None, lookup: Lookup | None) -> CheckStep:
    """What to do with a structure waiting for its check, given the sources' answer (`lookup`,
    None when they were not asked)."""
    if verification is not Verification.TO_VERIFY:
        return CheckStep.FORGET
    if lookup is None or (lookup.establishment is None and lookup.unavailable):
        return CheckStep.WAIT
    if lookup.establishment is None:
        return CheckStep.FLAG_UNKNOWN
    return CheckStep.CONFIRM if lookup.establishment.open else CheckStep.FLAG_CLOSED


def settled(step: CheckStep) -> Verification:
    return Verification.CONFIRMED if step is CheckStep.CONFIRM else Verification.FLAGGED


def structure_flagged(claim: Claim, step: CheckStep, login_email: str | None, now: float) -> StructureFlagged:
    return StructureFlagged(
        registration_id=claim.registration_id,
        structure_id=claim.structure_id,
        identifier=claim.identity.identifier,
        reason=step.value,
        login_email=login_email,
        flagged_at=iso_utc(now),
    )
