"""structure's unit of work on dicts, and a SIRENE register in memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from services.structure.captcha import KeptDrawing, NewCaptcha, StoredCaptcha
from services.structure.domain import (
    Claim,
    ClaimStatus,
    ExistingStructure,
    Identity,
    NewStructure,
    Registration,
    Verification,
)
from services.structure.sirene.model import Establishment, SourceUnavailable
from shared.unit_of_work import InMemoryUnitOfWork

Read = Callable[[], Any]  # a read to run with others (`read_together`): here, a function


class FakeRegistrations:
    def __init__(self) -> None:
        self.by_id: dict[str, Registration] = {}
        self.kept_for: dict[str, int] = {}
        self.attachments: dict[str, str] = {}  # registration → the attachment request it made

    def read(self, registration_id: str) -> Read:
        return lambda: self.by_id.get(registration_id)

    def get(self, registration_id: str) -> Registration | None:
        return self.by_id.get(registration_id)

    def add(self, registration: Registration, keep_seconds: int) -> None:
        self.by_id[registration.registration_id] = registration
        self.kept_for[registration.registration_id] = keep_seconds

    def record_confirmation(self, registration_id: str, structure_id: str, confirmed_at: str) -> None:
        self.by_id[registration_id] = replace(self.by_id[registration_id], structure_id=structure_id)

    def record_attachment(
        self, registration_id: str, structure_id: str, attachment_request_id: str, requested_at: str
    ) -> None:
        self.attachments[registration_id] = attachment_request_id
        self.record_confirmation(registration_id, structure_id, requested_at)

    def erase_personal_fields(self, registration: Registration) -> None:
        current = self.by_id[registration.registration_id]
        self.by_id[registration.registration_id] = replace(
            current, login_email=registration.login_email, prefill=registration.prefill
        )


class FakeStructures:
    def __init__(self) -> None:
        self.by_id: dict[str, NewStructure] = {}
        self.holders: dict[Identity, str] = {}
        self.claims: dict[str, Claim] = {}
        self.deadlines: dict[str, int] = {}
        self.verifications: dict[str, Verification] = {}
        self.pending_checks: dict[str, int] = {}  # structure id → its claim's deadline

    def read_holder(self, identity: Identity) -> Read:
        return lambda: self.holders.get(identity)

    def add(self, structure: NewStructure) -> None:
        self.by_id[structure.structure_id] = structure
        self.holders[structure.identity] = structure.structure_id
        self.claims[structure.structure_id] = Claim(
            structure.structure_id,
            structure.identity,
            structure.registration_id,
            ClaimStatus.CLAIMED,
            structure.claim_expires_at,
        )
        self.deadlines[structure.structure_id] = structure.claim_expires_at
        self.verifications[structure.structure_id] = structure.verification
        if structure.verification is Verification.TO_VERIFY:
            self.pending_checks[structure.structure_id] = structure.claim_expires_at

    def read_claim(self, structure_id: str) -> Read:
        return lambda: self.claims.get(structure_id)

    def hold(self, structure_id: str) -> None:
        self.claims[structure_id] = replace(self.claims[structure_id], status=ClaimStatus.HELD)
        self.forget_deadline(structure_id)

    def release(self, claim: Claim, released_at: str, *, free_identity: bool) -> None:
        if free_identity:
            del self.holders[claim.identity]
        self.claims[claim.structure_id] = replace(claim, status=ClaimStatus.RELEASED)
        self.forget_deadline(claim.structure_id)
        self.forget_check(claim.structure_id)

    def forget_deadline(self, structure_id: str) -> None:
        self.deadlines.pop(structure_id, None)

    def due_for_release(self, until: float, limit: int = 500) -> list[str]:
        due = sorted((at, structure_id) for structure_id, at in self.deadlines.items() if at <= until)
        return [structure_id for _, structure_id in due[:limit]]

    def read_existing(self, structure_id: str | None) -> Read:
        def existing() -> ExistingStructure | None:
            structure = self.by_id.get(structure_id) if structure_id else None
            if structure is None or self.claims[structure.structure_id].status is ClaimStatus.RELEASED:
                return None
            fields = structure.fields
            return ExistingStructure(structure_id, fields.company_name, fields.postal_code, fields.city)

        return existing

    def read_verification(self, structure_id: str) -> Read:
        return lambda: self.verifications.get(structure_id)

    def to_verify(self, limit: int) -> list[str]:
        return sorted(self.pending_checks, key=self.pending_checks.__getitem__)[:limit]

    def record_check(self, structure_id: str, verification: Verification) -> None:
        self.verifications[structure_id] = verification
        self.forget_check(structure_id)

    def forget_check(self, structure_id: str) -> None:
        self.pending_checks.pop(structure_id, None)


@dataclass
class FakeCaptcha:
    stored: StoredCaptcha
    sealed_text: str
    draws: int


class FakeCaptchas:
    def __init__(self) -> None:
        self.by_id: dict[str, FakeCaptcha] = {}
        self.issued: dict[str, dict[str, float]] = {}  # registration id → captcha id → expiry

    def read(self, captcha_id: str | None) -> Read:
        def stored() -> StoredCaptcha | None:
            found = self.by_id.get(captcha_id) if captcha_id else None
            return found.stored if found else None

        return stored

    def drawing(self, captcha_id: str) -> KeptDrawing | None:
        found = self.by_id.get(captcha_id)
        return KeptDrawing(found.sealed_text, found.stored.expires_at, found.draws) if found else None

    def count_drawing(self, captcha_id: str) -> None:
        self.by_id[captcha_id].draws += 1

    def add(self, captcha: NewCaptcha, sealed_text: str, draws: int) -> None:
        self.by_id[captcha.captcha_id] = FakeCaptcha(captcha.stored, sealed_text, draws)

    def remove(self, captcha_id: str) -> None:
        self.by_id.pop(captcha_id, None)

    def read_issued(self, registration_id: str) -> Read:
        return lambda: dict(self.issued.get(registration_id, {}))

    def record_issue(self, registration_id: str, captcha: NewCaptcha, spent: list[str]) -> None:
        issued = self.issued.setdefault(registration_id, {})
        for captcha_id in spent:
            self.by_id.pop(captcha_id, None)
            issued.pop(captcha_id, None)
        issued[captcha.captcha_id] = captcha.stored.expires_at


CLAIM_TTL = 7 * 24 * 3600


class FakeStructureUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, clock=None) -> None:
        super().__init__(clock, "structure")
        self.registrations = FakeRegistrations()
        self.structures = FakeStructures()
        self.captchas = FakeCaptchas()

    def read_together(self, *reads: Read) -> list[Any]:
        return [read() for read in reads]


class FakeSirene:
    """A SIRENE source, as a dict of SIRET → establishment that a test may change, or make
    unavailable."""

    name = "stock"

    def __init__(self, *establishments: Establishment, as_of: str = "2026-10-31") -> None:
        self.by_siret = {e.siret: e for e in establishments}
        self.unavailable = False
        self._as_of = as_of

    def lookup(self, siret: str) -> Establishment | None:
        if self.unavailable:
            raise SourceUnavailable("switched off by the test")
        return self.by_siret.get(siret)

    def as_of(self) -> str:
        return self._as_of
