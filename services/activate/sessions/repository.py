"""Sessions' Redis keys (prefix `activate:`), beside the other repositories of activate:

- `activate:session:{sha256 of the id}` (hash): a session: its account, when it started, when it
  was last used; it expires by itself when it would time out (idle or absolute);
- `activate:account-sessions:{registration_id}` (set): the hashes of the account's sessions,
  to end them all; stale members (sessions that timed out) are dropped when it is read.

Like the other repositories: reads through the unit of work, writes recorded on it; no rules.
"""

from __future__ import annotations

import math

from services.activate.sessions.domain import Session
from shared.unit_of_work import RedisUnitOfWork


def _session_key(session_hash: str) -> str:
    return f"activate:session:{session_hash}"


def _account_sessions_key(registration_id: str) -> str:
    return f"activate:account-sessions:{registration_id}"


def _session(session_hash: str, fields: dict[str, str]) -> Session | None:
    if not fields:
        return None
    return Session(
        session_hash=session_hash,
        registration_id=fields["registration_id"],
        account_id=fields["account_id"],
        started_at=float(fields["started_at"]),
        last_seen_at=float(fields["last_seen_at"]),
    )


class SessionRepository:
    def __init__(self, uow: RedisUnitOfWork, idle_seconds: int, max_seconds: int) -> None:
        self.uow = uow
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds

    def get(self, session_hash: str) -> Session | None:
        key = _session_key(session_hash)
        (fields,) = self.uow.read(key, ("HGETALL", key))
        return _session(session_hash, fields)

    def of_account(self, registration_id: str) -> list[str]:
        """The hashes of the account's sessions (some may have timed out since)."""
        key = _account_sessions_key(registration_id)
        (members,) = self.uow.read(key, ("SMEMBERS", key))
        return sorted(members)

    def save(self, session: Session) -> None:
        """The session (new, or touched), expiring when it would time out."""
        key = _session_key(session.session_hash)
        ttl = session.expires_at(self.idle_seconds, self.max_seconds) - session.last_seen_at
        self.uow.writes.hset(
            key,
            mapping={
                "registration_id": session.registration_id,
                "account_id": session.account_id,
                "started_at": repr(session.started_at),
                "last_seen_at": repr(session.last_seen_at),
            },
        )
        self.uow.writes.expire(key, max(1, math.ceil(ttl)))
        index = _account_sessions_key(session.registration_id)
        self.uow.writes.sadd(index, session.session_hash)
        self.uow.writes.expire(index, self.max_seconds)

    def end(self, registration_id: str, session_hash: str) -> None:
        self.uow.writes.delete(_session_key(session_hash))
        self.uow.writes.srem(_account_sessions_key(registration_id), session_hash)

    def end_all(self, registration_id: str, *, keep: str | None = None) -> None:
        """Every session of the account ends, but `keep` (the hash of the one asking), if named."""
        for session_hash in self.of_account(registration_id):
            if session_hash != keep:
                self.end(registration_id, session_hash)
