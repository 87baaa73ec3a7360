"""« Mot de passe oublié »'s Redis keys (prefix `activate:`), `uow.password_resets`:

- `activate:password-reset:{sha256 of the token}` (hash): a reset link: its account
  (`registration_id`), `expires_at` (epoch seconds), `state` (`issued`, `used`) and
  `answers_checked` (answers to the secret question counted so far). It expires by itself a week
  after the link does (`RETENTION_SECONDS`): until then a dead link says why it is dead; after,
  it answers as a token never issued (410 `unknown`). No sweep: a link's expiry is read, not
  swept.
- `activate:password-reset-of:{registration_id}` (string): the hash of the account's latest
  link, the only one that may open; a new request overwrites it (the previous link is then
  `replaced`), a reset deletes it. It expires with the link.

Like the other repositories: reads through the unit of work (watched inside `run`), writes
recorded on it; no rules.
"""

from __future__ import annotations

from services.activate.password_reset.domain import ResetLink, ResetState
from shared.unit_of_work import RedisUnitOfWork

RETENTION_SECONDS = 7 * 24 * 3600


def _link_key(token_hash: str) -> str:
    return f"activate:password-reset:{token_hash}"


def _current_key(registration_id: str) -> str:
    return f"activate:password-reset-of:{registration_id}"


def _link(token_hash: str, fields: dict[str, str]) -> ResetLink | None:
    if not fields:
        return None
    return ResetLink(
        token_hash=token_hash,
        registration_id=fields["registration_id"],
        expires_at=int(fields["expires_at"]),
        state=ResetState(fields["state"]),
        answers_checked=int(fields.get("answers_checked") or 0),
    )


class PasswordResetRepository:
    def __init__(self, uow: RedisUnitOfWork) -> None:
        self.uow = uow

    def get(self, token_hash: str) -> ResetLink | None:
        key = _link_key(token_hash)
        (fields,) = self.uow.read(key, ("HGETALL", key))
        return _link(token_hash, fields)

    def current(self, registration_id: str) -> str | None:
        """The hash of the account's latest link (None once it was used, or has expired)."""
        key = _current_key(registration_id)
        (found,) = self.uow.read(key, ("GET", key))
        return found

    def add(self, link: ResetLink) -> None:
        """A new link, which becomes its account's current one."""
        key = _link_key(link.token_hash)
        self.save(link)
        self.uow.writes.expireat(key, link.expires_at + RETENTION_SECONDS)
        self.uow.writes.set(_current_key(link.registration_id), link.token_hash, exat=link.expires_at)

    def save(self, link: ResetLink) -> None:
        """The link's state and count (its expiry, set by `add`, is kept)."""
        self.uow.writes.hset(
            _link_key(link.token_hash),
            mapping={
                "registration_id": link.registration_id,
                "expires_at": str(link.expires_at),
                "state": link.state,
                "answers_checked": str(link.answers_checked),
            },
        )

    def forget_current(self, registration_id: str) -> None:
        self.uow.writes.delete(_current_key(registration_id))

    def erase(self, registration_id: str, token_hash: str | None) -> None:
        """The account's current link (`token_hash`, if any) and the pointer to it, deleted: its
        account is erased. Older links hold ids only, and lapse by themselves."""
        if token_hash:
            self.uow.writes.delete(_link_key(token_hash))
        self.forget_current(registration_id)
