"""identify's unit of work on dicts."""

from __future__ import annotations

from dataclasses import replace

from services.identify.domain import Registration
from shared.unit_of_work import InMemoryUnitOfWork


class FakeRegistrations:
    def __init__(self) -> None:
        self.by_id: dict[str, Registration] = {}
        self.deadlines: dict[str, float] = {}

    def get(self, registration_id: str) -> Registration | None:
        return self.by_id.get(registration_id)

    def add(self, registration: Registration, abandon_at: float) -> None:
        self.by_id[registration.registration_id] = registration
        self.deadlines[registration.registration_id] = abandon_at

    def save_progress(self, registration: Registration) -> None:
        current = self.by_id[registration.registration_id]
        self.by_id[registration.registration_id] = replace(
            current,
            status=registration.status,
            token_expires_at=registration.token_expires_at or current.token_expires_at,
        )

    def forget_deadline(self, registration_id: str) -> None:
        self.deadlines.pop(registration_id, None)

    def erase_login_email(self, registration_id: str) -> None:
        self.by_id[registration_id] = replace(self.by_id[registration_id], login_email="")

    def due_for_expiry(self, now: float, limit: int = 500) -> list[str]:
        due = sorted((at, rid) for rid, at in self.deadlines.items() if at <= now)
        return [rid for _, rid in due[:limit]]


class FakeIdentifyUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, clock=None) -> None:
        super().__init__(clock, "identify")
        self.registrations = FakeRegistrations()
