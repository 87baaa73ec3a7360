"""The Redis keys of attachment requests and of structures' members (prefix `activate:`),
`uow.approvals`:

- `activate:attachment-request:{attachment_request_id}` (string): the registration whose account
  is that request (the account itself is `activate:account:{registration_id}`);
- `activate:approvals:{structure_id}` (sorted set): registration → when it asked, the requests of
  the structure waiting for its gestionnaire principal (step 3 done, not decided);
- `activate:attachment-deadlines` (sorted set): registration → when its request lapses unless
  decided, for the beat's sweep;
- `activate:structure-manager:{structure_id}` (string): the registration of the structure's
  gestionnaire principal, written when that account is activated;
- `activate:structure-members:{structure_id}` (set): the registrations of the active accounts that
  belong to the structure (its gestionnaire principal too), for « Mon compte »'s list of users.

A request's id expires 30 days after it is decided or lapses; the other keys are removed when
what they track ends (decided, lapsed, detached).
"""

from __future__ import annotations

from shared.unit_of_work import RedisUnitOfWork

DEADLINES = "activate:attachment-deadlines"
CLOSED_REQUEST_SECONDS = 30 * 24 * 3600  # as long as a closed account is kept (activate/repository.py)


def _request_key(attachment_request_id: str) -> str:
    return f"activate:attachment-request:{attachment_request_id}"


def _pending_key(structure_id: str) -> str:
    return f"activate:approvals:{structure_id}"


def _manager_key(structure_id: str) -> str:
    return f"activate:structure-manager:{structure_id}"


def _members_key(structure_id: str) -> str:
    return f"activate:structure-members:{structure_id}"


class ApprovalRepository:
    """Reads through the unit of work (watched inside `run`), writes recorded on it; no rules."""

    def __init__(self, uow: RedisUnitOfWork) -> None:
        self.uow = uow

    # --- requests ---

    def request_of(self, attachment_request_id: str) -> str | None:
        """The registration whose account is this request."""
        key = _request_key(attachment_request_id)
        (found,) = self.uow.read(key, ("GET", key))
        return found

    def add_request(self, attachment_request_id: str, registration_id: str, expires_at: int) -> None:
        self.uow.writes.set(_request_key(attachment_request_id), registration_id)
        self.uow.writes.zadd(DEADLINES, {registration_id: expires_at})

    def submit(self, structure_id: str, registration_id: str, requested_at: int) -> None:
        """Step 3 done: the request waits for the structure's gestionnaire principal."""
        self.uow.writes.zadd(_pending_key(structure_id), {registration_id: requested_at})

    def close(self, structure_id: str, registration_id: str, attachment_request_id: str) -> None:
        """Decided or lapsed: no longer waiting, no longer swept; the request's id still leads to
        its account while that account is kept (a decision asked again answers as the first)."""
        self.uow.writes.zrem(_pending_key(structure_id), registration_id)
        self.uow.writes.zrem(DEADLINES, registration_id)
        self.uow.writes.expire(_request_key(attachment_request_id), CLOSED_REQUEST_SECONDS)

    def pending(self, structure_id: str, limit: int) -> list[str]:
        """The registrations waiting for the structure's decision, the oldest request first."""
        key = _pending_key(structure_id)
        (found,) = self.uow.read(key, ("ZRANGE", key, 0, limit - 1))
        return list(found)

    def due(self, now: float, limit: int = 500) -> list[str]:
        """Registrations whose request's deadline has come, the earliest first."""
        (due,) = self.uow.read(DEADLINES, ("ZRANGEBYSCORE", DEADLINES, "-inf", now, "LIMIT", 0, limit))
        return list(due)

    def forget_deadline(self, registration_id: str) -> None:
        self.uow.writes.zrem(DEADLINES, registration_id)

    # --- structures' managers and members ---

    def manager_of(self, structure_id: str) -> str | None:
        key = _manager_key(structure_id)
        (found,) = self.uow.read(key, ("GET", key))
        return found

    def set_manager(self, structure_id: str, registration_id: str) -> None:
        self.uow.writes.set(_manager_key(structure_id), registration_id)

    def members(self, structure_id: str) -> list[str]:
        key = _members_key(structure_id)
        (found,) = self.uow.read(key, ("SMEMBERS", key))
        return sorted(found)

    def add_member(self, structure_id: str, registration_id: str) -> None:
        self.uow.writes.sadd(_members_key(structure_id), registration_id)

    def remove_member(self, structure_id: str, registration_id: str) -> None:
        self.uow.writes.srem(_members_key(structure_id), registration_id)
