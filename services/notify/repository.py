"""The only module that knows notify's Redis keys (prefix `notify:`).

- `notify:email:{event_id}` (hash `status`, `sent_at`, `to`): the email of that event has been
  handed to SMTP (or refused for good). Never holds the token or the link.
- `notify:email-lease:{event_id}` (string: the holder): held while one copy of the task is
  sending, so that two copies running at once do not both send; it lapses by itself.
- `notify:registration-emails:{registration_id}` (set): the event ids of the emails asked for a
  registration (written by the consumer, `erasure.remembering`), so that erasing its account
  erases the address (`to`) of their records; it outlives them (`INDEX_TTL_SECONDS`).

Both keys of an email are read in one round trip, watched when inside a transaction.
"""

from __future__ import annotations

import redis

from services.notify.domain import Delivery, Outcome
from shared.unit_of_work import RedisUnitOfWork

RECORD_TTL_SECONDS = 7 * 24 * 3600  # as long as the bus remembers a seen event
INDEX_TTL_SECONDS = RECORD_TTL_SECONDS + 24 * 3600  # an email is recorded at its last retry, hours later


def _email_key(event_id: str) -> str:
    return f"notify:email:{event_id}"


def _lease_key(event_id: str) -> str:
    return f"notify:email-lease:{event_id}"


def _registration_emails_key(registration_id: str) -> str:
    return f"notify:registration-emails:{registration_id}"


class EmailRepository:
    """Event id ↔ where its email stands (`Delivery`)."""

    def __init__(self, uow: RedisUnitOfWork) -> None:
        self.uow = uow

    def get(self, event_id: str) -> Delivery:
        email, lease = _email_key(event_id), _lease_key(event_id)
        status, holder = self.uow.read([lease, email], ("HGET", email, "status"), ("GET", lease))
        return Delivery(outcome=Outcome(status) if status else None, lease_holder=holder)

    def hold_lease(self, event_id: str, owner: str, seconds: int) -> None:
        self.uow.writes.set(_lease_key(event_id), owner, ex=seconds)

    def release_lease(self, event_id: str) -> None:
        self.uow.writes.delete(_lease_key(event_id))

    def record(self, event_id: str, *, outcome: Outcome, to: str, at: str) -> None:
        key = _email_key(event_id)
        self.uow.writes.hset(key, mapping={"status": outcome.value, "sent_at": at, "to": to})
        self.uow.writes.expire(key, RECORD_TTL_SECONDS)

    def remember_for(self, registration_id: str, event_id: str) -> None:
        """The email of `event_id` is one of the registration's."""
        key = _registration_emails_key(registration_id)
        self.uow.writes.sadd(key, event_id)
        self.uow.writes.expire(key, INDEX_TTL_SECONDS)

    def of_registration(self, registration_id: str) -> list[str]:
        """The event ids of the registration's emails (their records may have lapsed)."""
        key = _registration_emails_key(registration_id)
        (members,) = self.uow.read(key, ("SMEMBERS", key))
        return sorted(members)

    def erase_recipients(self, registration_id: str, event_ids: list[str]) -> None:
        """The address (`to`) erased from the records of these emails, and the registration's
        list of them deleted: its account is erased. A record not written yet is left alone."""
        for event_id in event_ids:
            self.uow.writes.hdel(_email_key(event_id), "to")
        self.uow.writes.delete(_registration_emails_key(registration_id))


class NotifyUnitOfWork(RedisUnitOfWork):
    UNREACHABLE: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
    """The failures that mean Redis could not be reached: the transaction may be tried again."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.emails = EmailRepository(self)
