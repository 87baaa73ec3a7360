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

import redis
from redis.client import Pipeline

from shared.watching import watch_and_read

RECORD_TTL_SECONDS = 7 * 24 * 3600  # as long as the bus remembers a seen event
LEASE_SECONDS = 120  # far above the SMTP time-outs of one send


def _email_key(event_id: str) -> str:
    return f"notify:email:{event_id}"


def _lease_key(event_id: str) -> str:
    return f"notify:email-lease:{event_id}"


class NotifyRepository:
    def __init__(self, client: redis.Redis, owner: str | None = None) -> None:
        self.redis = client
        self.owner = owner or uuid.uuid4().hex

    def outcome(self, event_id: str) -> str | None:
        """`sent` or `refused` once the email of `event_id` is dealt with, else None."""
        return self.redis.hget(_email_key(event_id), "status")

    def take_lease(self, event_id: str, seconds: int = LEASE_SECONDS) -> str | None:
        """The lease's owner, or None when another copy holds it. A lease already ours (the same
        message, delivered again after its worker died) is taken over."""
        key = _lease_key(event_id)

        def attempt(pipe: Pipeline) -> str | None:
            (holder,) = watch_and_read(pipe, key, ("GET", key))
            pipe.multi()
            if holder not in (None, self.owner):
                return None
            pipe.set(key, self.owner, ex=seconds)
            return self.owner

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
