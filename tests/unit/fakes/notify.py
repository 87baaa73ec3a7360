"""notify's unit of work on dicts.

Like Redis, it keeps what the repository is told and decides nothing: the lease's rule is
`domain.claim`, for both. Lapsing is modelled as Redis does it: a lease or a record past its
time-out is gone, by the unit of work's clock.
"""

from __future__ import annotations

from collections.abc import Callable

from services.notify.domain import Delivery, Outcome
from services.notify.repository import RECORD_TTL_SECONDS
from shared.unit_of_work import InMemoryUnitOfWork


class Unreachable(Exception):
    """The fake store cannot be reached (see `FakeNotifyUnitOfWork.unreachable_commits`)."""


class FakeEmails:
    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.records: dict[str, tuple[dict[str, str], float]] = {}  # event id → (hash, expires at)
        self.leases: dict[str, tuple[str, float]] = {}  # event id → (holder, expires at)
        self.of_registrations: dict[str, set[str]] = {}  # registration id → its emails' event ids

    def record_of(self, event_id: str) -> dict[str, str] | None:
        found = self.records.get(event_id)
        return found[0] if found and found[1] > self.now() else None

    def lease_holder(self, event_id: str) -> str | None:
        found = self.leases.get(event_id)
        return found[0] if found and found[1] > self.now() else None

    def get(self, event_id: str) -> Delivery:
        record = self.record_of(event_id)
        return Delivery(
            outcome=Outcome(record["status"]) if record else None, lease_holder=self.lease_holder(event_id)
        )

    def hold_lease(self, event_id: str, owner: str, seconds: int) -> None:
        self.leases[event_id] = (owner, self.now() + seconds)

    def release_lease(self, event_id: str) -> None:
        self.leases.pop(event_id, None)

    def record(self, event_id: str, *, outcome: Outcome, to: str, at: str) -> None:
        self.records[event_id] = (
            {"status": outcome.value, "sent_at": at, "to": to},
            self.now() + RECORD_TTL_SECONDS,
        )

    def remember_for(self, registration_id: str, event_id: str) -> None:
        self.of_registrations.setdefault(registration_id, set()).add(event_id)

    def of_registration(self, registration_id: str) -> list[str]:
        return sorted(self.of_registrations.get(registration_id, set()))

    def erase_recipients(self, registration_id: str, event_ids: list[str]) -> None:
        for event_id in event_ids:
            if event_id in self.records:
                record, expires_at = self.records[event_id]
                self.records[event_id] = ({k: v for k, v in record.items() if k != "to"}, expires_at)
        self.of_registrations.pop(registration_id, None)


class FakeNotifyUnitOfWork(InMemoryUnitOfWork):
    UNREACHABLE = (Unreachable,)

    def __init__(self, clock=None) -> None:
        super().__init__(clock, "notify")
        self.emails = FakeEmails(lambda: self.clock())
        self.unreachable_commits = 0  # how many of the next transactions fail as if Redis were away

    def run(self, body, *args, **kwargs):
        if self.unreachable_commits:
            self.unreachable_commits -= 1
            raise Unreachable("the store cannot be reached")
        return super().run(body, *args, **kwargs)
