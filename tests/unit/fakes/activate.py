"""activate's unit of work on dicts: the same repositories' contract as `services.activate.repository`."""

from __future__ import annotations

from dataclasses import replace

from services.activate import domain
from services.activate.domain import Account, Credentials
from services.activate.links import TokenRecord, TokenState
from services.activate.sessions import Session
from shared.unit_of_work import InMemoryUnitOfWork


class FakeAccounts:
    def __init__(self) -> None:
        self.by_id: dict[str, Account] = {}

    def get(self, registration_id: str) -> Account | None:
        return self.by_id.get(registration_id)

    def save(self, account: Account) -> None:
        self.by_id[account.registration_id] = account

    def awaiting_activation(self, login_key: str, limit: int) -> list[str]:
        """What the Redis index holds, worked out from the accounts themselves."""
        awaiting = sorted(
            (
                (account.token_expires_at or 0, registration_id)
                for registration_id, account in self.by_id.items()
                if account.awaits_activation and domain.login_key(account.login_email) == login_key
            ),
            reverse=True,
        )
        return [registration_id for _, registration_id in awaiting[:limit]]


class FakeTokens:
    def __init__(self) -> None:
        self.by_hash: dict[str, TokenRecord] = {}
        self.deadlines: dict[str, int] = {}

    def get(self, token_hash: str) -> TokenRecord | None:
        return self.by_hash.get(token_hash)

    def add(self, record: TokenRecord) -> None:
        self.by_hash[record.token_hash] = record
        self.deadlines[record.token_hash] = record.expires_at

    def set_state(self, token_hash: str, state: TokenState) -> None:
        # Handlers change the state of a link they have just read: it exists.
        self.by_hash[token_hash] = replace(self.by_hash[token_hash], state=state)
        self.forget_deadline(token_hash)

    def forget_deadline(self, token_hash: str) -> None:
        self.deadlines.pop(token_hash, None)

    def due(self, now: float, limit: int = 500) -> list[str]:
        due = sorted((at, token_hash) for token_hash, at in self.deadlines.items() if at <= now)
        return [token_hash for _, token_hash in due[:limit]]


class FakeActiveLogins:
    def __init__(self) -> None:
        self.owners: dict[str, str] = {}

    def owner(self, login_key: str) -> str | None:
        return self.owners.get(login_key)

    def claim(self, login_key: str, registration_id: str) -> None:
        self.owners[login_key] = registration_id


class FakeCredentials:
    def __init__(self) -> None:
        self.by_id: dict[str, Credentials] = {}

    def get(self, registration_id: str) -> Credentials | None:
        return self.by_id.get(registration_id)

    def save(self, registration_id: str, credentials: Credentials) -> None:
        self.by_id[registration_id] = credentials


class FakeSessions:
    def __init__(self, idle_seconds: int = 1800, max_seconds: int = 43200) -> None:
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.by_hash: dict[str, Session] = {}

    def get(self, session_hash: str) -> Session | None:
        return self.by_hash.get(session_hash)

    def of_account(self, registration_id: str) -> list[str]:
        return sorted(h for h, s in self.by_hash.items() if s.registration_id == registration_id)

    def save(self, session: Session) -> None:
        self.by_hash[session.session_hash] = session

    def end(self, registration_id: str, session_hash: str) -> None:
        self.by_hash.pop(session_hash, None)

    def end_all(self, registration_id: str, *, keep: str | None = None) -> None:
        for session_hash in self.of_account(registration_id):
            if session_hash != keep:
                self.end(registration_id, session_hash)


class FakeActivateUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, clock=None) -> None:
        super().__init__(clock, "activate")
        self.accounts = FakeAccounts()
        self.tokens = FakeTokens()
        self.active_logins = FakeActiveLogins()
        self.credentials = FakeCredentials()
        self.sessions = FakeSessions()
