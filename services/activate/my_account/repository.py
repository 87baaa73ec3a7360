"""« Mon compte »'s Redis keys (prefix `activate:`), `uow.my_account`:

- `activate:contact-email-link:{sha256 of the token}` (hash): a link confirming a new contact
  email: its account (`registration_id`), the new address, its expiry (epoch seconds) and state
  (`issued`, `used`, `replaced`). It expires by itself a week after the link does, so that a
  dead link answers 410 for a while, then 404;
- `activate:contact-email-pending:{registration_id}` (string): the hash of the account's latest
  link, so that a new request voids the previous one; it expires with that link;
- `activate:contact-email-links:{registration_id}` (set): the hashes of every link of the account
  still kept, so that erasing the account deletes them all (the addresses they hold with them);
  it expires with the latest.

And one key of step 4's: deactivating an account deletes `activate:active-login:{login key}`
(`release_login`), in the deactivation's transaction, so that its login email can make a new
account later.
"""

from __future__ import annotations

from services.activate.my_account.domain import ContactLink, ContactLinkState
from shared.unit_of_work import RedisUnitOfWork

LINK_RETENTION_SECONDS = 7 * 24 * 3600


def _link_key(token_hash: str) -> str:
    return f"activate:contact-email-link:{token_hash}"


def _pending_key(registration_id: str) -> str:
    return f"activate:contact-email-pending:{registration_id}"


def _links_of_key(registration_id: str) -> str:
    return f"activate:contact-email-links:{registration_id}"


def _active_login_key(login_key: str) -> str:
    return f"activate:active-login:{login_key}"  # written by step 4 (services/activate/repository.py)


def _link(token_hash: str, fields: dict[str, str]) -> ContactLink | None:
    if not fields:
        return None
    return ContactLink(
        token_hash=token_hash,
        registration_id=fields["registration_id"],
        contact_email=fields["contact_email"],
        expires_at=int(fields["expires_at"]),
        state=ContactLinkState(fields["state"]),
    )


class MyAccountRepository:
    """Reads through the unit of work (watched inside `run`), writes recorded on it; no rules."""

    def __init__(self, uow: RedisUnitOfWork) -> None:
        self.uow = uow

    def contact_link(self, token_hash: str) -> ContactLink | None:
        key = _link_key(token_hash)
        (fields,) = self.uow.read(key, ("HGETALL", key))
        return _link(token_hash, fields)

    def pending_contact_link(self, registration_id: str) -> str | None:
        """The hash of the account's latest link (it may have been used since)."""
        key = _pending_key(registration_id)
        (found,) = self.uow.read(key, ("GET", key))
        return found

    def add_contact_link(self, link: ContactLink) -> None:
        """A new link, which becomes its account's latest."""
        key = _link_key(link.token_hash)
        self.uow.writes.hset(
            key,
            mapping={
                "registration_id": link.registration_id,
                "contact_email": link.contact_email,
                "expires_at": str(link.expires_at),
                "state": link.state,
            },
        )
        self.uow.writes.expireat(key, link.expires_at + LINK_RETENTION_SECONDS)
        pending = _pending_key(link.registration_id)
        self.uow.writes.set(pending, link.token_hash)
        self.uow.writes.expireat(pending, link.expires_at)
        links_of = _links_of_key(link.registration_id)
        self.uow.writes.sadd(links_of, link.token_hash)
        self.uow.writes.expireat(links_of, link.expires_at + LINK_RETENTION_SECONDS)

    def set_contact_link_state(self, link: ContactLink, state: ContactLinkState) -> None:
        """A link that no longer works (used or replaced); a used one is no longer pending either."""
        self.uow.writes.hset(_link_key(link.token_hash), "state", state)
        if state is ContactLinkState.USED:
            self.uow.writes.delete(_pending_key(link.registration_id))

    def release_login(self, login_key: str) -> None:
        """The login email (`domain.login_key`) no longer belongs to an active account."""
        self.uow.writes.delete(_active_login_key(login_key))

    def contact_links_of(self, registration_id: str) -> list[str]:
        """The hashes of the account's links still kept (its pending one too)."""
        links_of, pending = _links_of_key(registration_id), _pending_key(registration_id)
        members, latest = self.uow.read([links_of, pending], ("SMEMBERS", links_of), ("GET", pending))
        return sorted({*members, *([latest] if latest else [])})

    def erase_contact_links(self, registration_id: str, token_hashes: list[str]) -> None:
        """The account's links (`contact_links_of`) deleted, with the addresses they hold: its
        account is erased."""
        for token_hash in token_hashes:
            self.uow.writes.delete(_link_key(token_hash))
        self.uow.writes.delete(_pending_key(registration_id), _links_of_key(registration_id))
