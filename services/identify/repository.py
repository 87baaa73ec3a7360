"""The only module that knows identify's Redis keys (prefix `identify:`)."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.client import Pipeline

from services.identify.domain import Progress
from shared.bus import publish
from shared.events import Event
from shared.watching import watch_and_read

RETENTION_SECONDS = 7 * 24 * 3600  # a finished or expired registration stays readable this long


def _key(registration_id: str) -> str:
    return f"identify:registration:{registration_id}"


DEADLINES = "identify:abandon-deadlines"  # sorted set: registration id → time it is abandoned


@dataclass(frozen=True)
class Registration:
    registration_id: str
    login_email: str
    identifier_type: str
    identifier: str
    country: str
    status: str
    created_at: float
    token_expires_at: str | None = None


def _registration(registration_id: str, fields: dict[str, str]) -> Registration | None:
    if not fields:
        return None
    return Registration(
        registration_id=registration_id,
        login_email=fields["login_email"],
        identifier_type=fields["identifier_type"],
        identifier=fields["identifier"],
        country=fields["country"],
        status=fields["status"],
        created_at=float(fields["created_at"]),
        token_expires_at=fields.get("token_expires_at") or None,
    )


class IdentifyRepository:
    def __init__(self, client: redis.Redis, stream_maxlen: int) -> None:
        self.redis = client
        self.stream_maxlen = stream_maxlen

    def add(self, registration: Registration, abandon_at: float, event: Event) -> None:
        """Store a new registration and its RegistrationStarted event in one transaction."""
        key = _key(registration.registration_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
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
            pipe.expireat(key, int(abandon_at) + RETENTION_SECONDS)
            pipe.zadd(DEADLINES, {registration.registration_id: abandon_at})
            publish(pipe, event, self.stream_maxlen)
            pipe.execute()

    def get(self, registration_id: str) -> Registration | None:
        return _registration(registration_id, self.redis.hgetall(_key(registration_id)))

    def watch(self, pipe: Pipeline, registration_id: str) -> Registration | None:
        """Watch a registration inside a transaction and read it (one round trip)."""
        key = _key(registration_id)
        (fields,) = watch_and_read(pipe, key, ("HGETALL", key))
        return _registration(registration_id, fields)

    def set_progress(
        self, pipe: Pipeline, registration_id: str, progress: Progress, still_abandonable: bool
    ) -> None:
        """Queue the new status (the pipeline must be in MULTI)."""
        mapping = {"status": progress.status}
        if progress.token_expires_at:
            mapping["token_expires_at"] = progress.token_expires_at
        pipe.hset(_key(registration_id), mapping=mapping)
        if not still_abandonable:
            pipe.zrem(DEADLINES, registration_id)

    def due_for_expiry(self, now: float, limit: int = 500) -> list[str]:
        return self.redis.zrangebyscore(DEADLINES, "-inf", now, start=0, num=limit)

    def expire_if(self, registration_id: str, still_due, event_for) -> bool:
        """Mark one registration expired (with its event) if `still_due(registration)` holds."""

        def attempt(pipe: Pipeline) -> bool:
            registration = self.watch(pipe, registration_id)
            pipe.multi()
            pipe.zrem(DEADLINES, registration_id)
            if registration is None or not still_due(registration):
                return False
            pipe.hset(_key(registration_id), "status", "expired")
            publish(pipe, event_for(registration), self.stream_maxlen)
            return True

        return self.redis.transaction(attempt, value_from_callable=True)
