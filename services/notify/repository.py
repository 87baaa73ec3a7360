"""The only module that knows notify's Redis keys (prefix `notify:`).

- `notify:email:{event_id}` (hash `status`, `sent_at`, `to`): the email of that event has been
  handed to SMTP (or refused for good). Never holds the token or the link.
- `notify:email-lease:{event_id}`: held while one copy of the task is sending, so that two copies
  running at once do not both send. Its owner is the broker message's delivery tag, which a
  message requeued after its worker died keeps: the requeued copy takes the lease over at once
  instead of waiting for it to lapse.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis
from redis.client import Pipeline

from shared.watching import watch_and_read

RECORD_TTL_SECONDS = 7 * 24 * 3600  # as long as the bus remembers a seen event
LEASE_SECONDS = 120  # far above the SMTP time-outs of one send


def _email_key(event_id: str) -> str:
    return f"notify:email:{event_id}"


def _lease_key(event_id: str) -> str:
    return f"notify:email-lease:{event_id}"


@dataclass(frozen=True)
class Lease:
    """What `take_lease` found: the email already dealt with (`outcome`), or the lease taken
    (`owner`), or neither (another copy of the task is sending)."""

    owner: str | None = None
    outcome: str | None = None


class NotifyRepository:
    def __init__(self, client: redis.Redis, owner: str | None = None) -> None:
        self.redis = client
        self.owner = owner or uuid.uuid4().hex

    def outcome(self, event_id: str) -> str | None:
        """`sent` or `refused` once the email of `event_id` is dealt with, else None."""
        return self.redis.hget(_email_key(event_id), "status")

    def take_lease(self, event_id: str, seconds: int = LEASE_SECONDS) -> Lease:
        """Take the lease of `event_id`'s email unless the email is already dealt with or another
        copy holds the lease; both are read in the same round trip as the lease is watched. A
        lease already ours (the same message, delivered again after its worker died) is taken
        over."""
        key, email = _lease_key(event_id), _email_key(event_id)

        def attempt(pipe: Pipeline) -> Lease:
            holder, outcome = watch_and_read(pipe, [key, email], ("GET", key), ("HGET", email, "status"))
            pipe.multi()
            if outcome:
                return Lease(outcome=outcome)
            if holder not in (None, self.owner):
                return Lease()
            pipe.set(key, self.owner, ex=seconds)
            return Lease(owner=self.owner)

        return self.redis.transaction(attempt, value_from_callable=True)

    def release_lease(self, event_id: str, owner: str) -> None:
        key = _lease_key(event_id)

        def attempt(pipe: Pipeline) -> None:
            (holder,) = watch_and_read(pipe, key, ("GET", key))
            pipe.multi()
            if holder == owner:
                pipe.delete(key)

        self.redis.transaction(attempt)

    def record(self, event_id: str, *, status: str, to: str, at: str, owner: str) -> None:
        """Store the outcome and free the lease (if still ours) in one transaction."""
        key, lease = _email_key(event_id), _lease_key(event_id)

        def attempt(pipe: Pipeline) -> None:
            (holder,) = watch_and_read(pipe, lease, ("GET", lease))
            pipe.multi()
            pipe.hset(key, mapping={"status": status, "sent_at": at, "to": to})
            pipe.expire(key, RECORD_TTL_SECONDS)
            if holder == owner:
                pipe.delete(lease)

        self.redis.transaction(attempt)
