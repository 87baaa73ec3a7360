"""The only module that knows notify's Redis keys (prefix `notify:`).

- `notify:email:{event_id}` (hash `status`, `sent_at`, `to`): the email of that event has been
  handed to SMTP (or refused for good). Never holds the token or the link.
- `notify:email-lease:{event_id}` (string: the holder): held while one copy of the task is
  sending, so that two copies running at once do not both send; it lapses by itself.

Both keys of an email are read in one round trip, watched when inside a transaction.
"""

from __future__ import annotations

import redis

from services.notify.domain import Delivery, Outcome
from shared.unit_of_work import RedisUnitOfWork

RECORD_TTL_SECONDS = 7 * 24 * 3600  # as long as the bus remembers a seen event


def _email_key(event_id: str) -> str:
    return f"notify:email:{event_id}"


def _lease_key(event_id: str) -> str:
    return f"notify:email-lease:{event_id}"


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


class NotifyUnitOfWork(RedisUnitOfWork):
    UNREACHABLE: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
    """The failures that mean Redis could not be reached: the transaction may be tried again."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.emails = EmailRepository(self)
