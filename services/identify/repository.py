"""The only module that knows identify's Redis keys (prefix `identify:`).

- `identify:registration:{registration_id}` (hash): a registration and where it stands (its
  login email erased once its account is deactivated: `erasure.py`);
- `identify:abandon-deadlines` (sorted set): registration id → when it is abandoned if it has
  not reached step 3, for the beat's sweep.
"""

from __future__ import annotations

from services.identify.domain import Registration, RegistrationStatus
from shared.unit_of_work import RedisUnitOfWork

RETENTION_SECONDS = 7 * 24 * 3600  # a finished or expired registration stays readable this long
DEADLINES = "identify:abandon-deadlines"


def _key(registration_id: str) -> str:
    return f"identify:registration:{registration_id}"


def _registration(registration_id: str, fields: dict[str, str]) -> Registration | None:
    if not fields:
        return None
    return Registration(
        registration_id=registration_id,
        login_email=fields["login_email"],
        identifier_type=fields["identifier_type"],
        identifier=fields["identifier"],
        country=fields["country"],
        status=RegistrationStatus(fields["status"]),
        created_at=float(fields["created_at"]),
        token_expires_at=fields.get("token_expires_at") or None,
    )


class RegistrationRepository:
    def __init__(self, uow: RedisUnitOfWork) -> None:
        self.uow = uow

    def get(self, registration_id: str) -> Registration | None:
        key = _key(registration_id)
        (fields,) = self.uow.read(key, ("HGETALL", key))
        return _registration(registration_id, fields)

    def add(self, registration: Registration, abandon_at: float) -> None:
        key = _key(registration.registration_id)
        self.uow.writes.hset(
            key,
            mapping={
                "login_email": registration.login_email,
                "identifier_type": registration.identifier_type,
                "identifier": registration.identifier,
                "country": registration.country,
                "status": registration.status,
                "created_at": repr(registration.created_at),
            },
        )
        self.uow.writes.expireat(key, int(abandon_at) + RETENTION_SECONDS)
        self.uow.writes.zadd(DEADLINES, {registration.registration_id: abandon_at})

    def save_progress(self, registration: Registration) -> None:
        """The registration's new status; once it can no longer be abandoned, no deadline."""
        mapping = {"status": registration.status}
        if registration.token_expires_at:
            mapping["token_expires_at"] = registration.token_expires_at
        self.uow.writes.hset(_key(registration.registration_id), mapping=mapping)

    def forget_deadline(self, registration_id: str) -> None:
        self.uow.writes.zrem(DEADLINES, registration_id)

    def erase_login_email(self, registration_id: str) -> None:
        """The registration's login email erased (its account was deactivated); the rest stays,
        until the record lapses. Only for a registration just read: HSET would make a key."""
        self.uow.writes.hset(_key(registration_id), "login_email", "")

    def due_for_expiry(self, now: float, limit: int = 500) -> list[str]:
        (due,) = self.uow.read(DEADLINES, ("ZRANGEBYSCORE", DEADLINES, "-inf", now, "LIMIT", 0, limit))
        return due


class IdentifyUnitOfWork(RedisUnitOfWork):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.registrations = RegistrationRepository(self)
