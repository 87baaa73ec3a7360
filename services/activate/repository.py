"""activate's Redis keys (prefix `activate:`) for the account and steps 3 and 4, and the unit of
work that holds every repository of the service (each use case's keys are in its own
`repository.py`: sessions/, sign_in/, second_factor/, password_reset/, my_account/, approvals/).

- `activate:account:{registration_id}` (hash): an account, from StructureConfirmed (or an
  attachment request) to active; closed without ever being active (released, refused, lapsed,
  joined), it expires 30 days later; once deactivated, an
  anonymous record of it (`erase`: ids, structures and roles, status, dates, `erased_at`);
- `activate:token:{sha256}` (hash): an activation link's record, kept a week past its expiry so
  that a dead link still answers 410 (not 404);
- `activate:token-deadlines` (sorted set): token hash → expiry, for the sweep;
- `activate:active-login:{login key}` (string): the registration whose active account uses the
  login email;
- `activate:awaiting-login:{login key}` (sorted set): the registrations whose account awaits
  activation with the login email, scored by their last link's expiry (the most recent last).
  Kept by `AccountRepository.save` with the account itself, in the same transaction: an account
  joins it when its first link goes out and leaves it when it becomes active or is released.
  Like the account, it has no expiry;
- `activate:credentials:{registration_id}` (hash): the password's and the answer's hashes (and
  the question), deleted when the account is deactivated.

Repositories read through the unit of work (inside `run`, each read watches what it reads, in
the same round trip) and record their writes on it. They decide nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from services.activate import domain
from services.activate.approvals.repository import ApprovalRepository
from services.activate.domain import Account, AccountStatus, Credentials, Membership
from services.activate.links import TokenRecord, TokenState
from services.activate.my_account.repository import MyAccountRepository
from services.activate.password_reset.repository import PasswordResetRepository
from services.activate.second_factor.repository import SecondFactorRepository
from services.activate.sessions.repository import SessionRepository
from services.activate.sign_in.repository import SignInFailures, SignInRepository
from shared.contracts import Role
from shared.unit_of_work import RedisUnitOfWork

TOKEN_RETENTION_SECONDS = 7 * 24 * 3600
CLOSED_RETENTION_SECONDS = 30 * 24 * 3600
NEVER_ACTIVE_CLOSED = frozenset(
    {
        AccountStatus.RELEASED,  # its structure was released before it was activated
        AccountStatus.REFUSED,  # its attachment request was refused
        AccountStatus.REQUEST_EXPIRED,  # its attachment request was not decided in time
        AccountStatus.JOINED,  # approved for an active account, which holds the membership
    }
)
DEADLINES = "activate:token-deadlines"


def _account_key(registration_id: str) -> str:
    return f"activate:account:{registration_id}"


def _credentials_key(registration_id: str) -> str:
    return f"activate:credentials:{registration_id}"


def _token_key(token_hash: str) -> str:
    return f"activate:token:{token_hash}"


def _active_login_key(login_key: str) -> str:
    return f"activate:active-login:{login_key}"


def _awaiting_login_key(login_key: str) -> str:
    return f"activate:awaiting-login:{login_key}"


def _account_fields(account: Account) -> dict[str, str]:
    return {
        "account_id": account.account_id,
        "structure_id": account.structure_id,
        "last_name": account.last_name,
        "first_name": account.first_name,
        "login_email": account.login_email,
        "contact_email": account.contact_email,
        "survey_consent": "1" if account.survey_consent else "0",
        "company_name": account.company_name,
        "features": json.dumps(account.features, separators=(",", ":")),
        "status": account.status,
        "workspaces": json.dumps(list(account.workspaces)),
        "token_hash": account.token_hash or "",
        "token_expires_at": str(account.token_expires_at) if account.token_expires_at is not None else "",
        "role": account.role or "",
        "claim_expires_at": str(account.claim_expires_at) if account.claim_expires_at is not None else "",
        "attachment_request_id": account.attachment_request_id or "",
        "requested_at": _optional(account.requested_at),
        "attachment_expires_at": _optional(account.attachment_expires_at),
        "other_memberships": json.dumps([asdict(m) for m in account.other_memberships], ensure_ascii=False),
        "joined_registrations": json.dumps(list(account.joined_registrations)),
    }


def _optional(value: int | None) -> str:
    return str(value) if value is not None else ""


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value else None


def _account(registration_id: str, fields: dict[str, str]) -> Account | None:
    if not fields:
        return None
    return Account(
        registration_id=registration_id,
        account_id=fields["account_id"],
        structure_id=fields["structure_id"],
        last_name=fields["last_name"],
        first_name=fields["first_name"],
        login_email=fields["login_email"],
        contact_email=fields["contact_email"],
        survey_consent=fields.get("survey_consent") == "1",
        company_name=fields.get("company_name", ""),
        features=json.loads(fields.get("features") or "{}"),
        status=AccountStatus(fields["status"]),
        workspaces=tuple(json.loads(fields.get("workspaces") or "[]")),
        token_hash=fields.get("token_hash") or None,
        token_expires_at=int(fields["token_expires_at"]) if fields.get("token_expires_at") else None,
        role=Role(fields["role"]) if fields.get("role") else None,
        claim_expires_at=_int_or_none(fields.get("claim_expires_at")),
        attachment_request_id=fields.get("attachment_request_id") or None,
        requested_at=_int_or_none(fields.get("requested_at")),
        attachment_expires_at=_int_or_none(fields.get("attachment_expires_at")),
        other_memberships=tuple(
            Membership(m["structure_id"], Role(m["role"]), m.get("company_name", ""))
            for m in json.loads(fields.get("other_memberships") or "[]")
        ),
        joined_registrations=tuple(json.loads(fields.get("joined_registrations") or "[]")),
    )


def _token(token_hash: str, fields: dict[str, str]) -> TokenRecord | None:
    if not fields:
        return None
    return TokenRecord(
        token_hash=token_hash,
        registration_id=fields["registration_id"],
        expires_at=int(fields["expires_at"]),
        state=TokenState(fields["state"]),
    )


class AccountRepository:
    def __init__(self, uow: RedisUnitOfWork) -> None:
        self.uow = uow

    def get(self, registration_id: str) -> Account | None:
        key = _account_key(registration_id)
        (fields,) = self.uow.read(key, ("HGETALL", key))
        return _account(registration_id, fields)

    def save(self, account: Account) -> None:
        """The account, and its place in the index of accounts awaiting activation by login. An
        account closed for good without having been activated is kept `CLOSED_RETENTION_SECONDS`,
        then forgotten: names and emails are kept no longer than its story may be asked about."""
        key = _account_key(account.registration_id)
        self.uow.writes.hset(key, mapping=_account_fields(account))
        awaiting = _awaiting_login_key(domain.login_key(account.login_email))
        if account.awaits_activation:
            self.uow.writes.zadd(awaiting, {account.registration_id: account.token_expires_at or 0})
        elif account.is_active or account.status in NEVER_ACTIVE_CLOSED:
            self.uow.writes.zrem(awaiting, account.registration_id)
        if account.status in NEVER_ACTIVE_CLOSED:
            self.uow.writes.expire(key, CLOSED_RETENTION_SECONDS)

    def erase(self, anonymous: Account, login_key: str, erased_at: int) -> None:
        """The account's record replaced by its anonymous form (`my_account.domain.anonymised`),
        with when it was erased (`erased_at`, epoch seconds); it leaves the index of accounts
        awaiting activation under its former login (`login_key`)."""
        key = _account_key(anonymous.registration_id)
        self.uow.writes.delete(key)
        self.uow.writes.hset(key, mapping={**_account_fields(anonymous), "erased_at": str(erased_at)})
        if anonymous.status in NEVER_ACTIVE_CLOSED:  # its retention runs on, erased or not
            self.uow.writes.expire(key, CLOSED_RETENTION_SECONDS)
        if login_key:
            self.uow.writes.zrem(_awaiting_login_key(login_key), anonymous.registration_id)

    def registration_of_account(self, account_id: str, batch: int = 1000) -> str | None:
        """The registration whose account has this id, found by scanning every account: an
        operator's look-up (`system.erase`), never a request's."""
        keys: list[str] = []
        for key in self.uow.redis.scan_iter(match=_account_key("*"), count=batch, _type="hash"):
            keys.append(key)
            if len(keys) == batch:
                if found := self._holding(keys, account_id):
                    return found
                keys = []
        return self._holding(keys, account_id) if keys else None

    def _holding(self, keys: list[str], account_id: str) -> str | None:
        with self.uow.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key, "account_id")
            held = pipe.execute()
        prefix = _account_key("")
        matching = (key for key, found in zip(keys, held, strict=True) if found == account_id)
        return next((key.removeprefix(prefix) for key in matching), None)

    def awaiting_activation(self, login_key: str, limit: int) -> list[str]:
        """The registrations whose account awaits activation with this login (`domain.login_key`),
        the one whose last link went out most recently first, at most `limit`."""
        key = _awaiting_login_key(login_key)
        (found,) = self.uow.read(key, ("ZREVRANGE", key, 0, limit - 1))
        return list(found)


class TokenRepository:
    """Activation links by their token's hash, and their deadlines for the sweep."""

    def __init__(self, uow: RedisUnitOfWork) -> None:
        self.uow = uow

    def get(self, token_hash: str) -> TokenRecord | None:
        key = _token_key(token_hash)
        (fields,) = self.uow.read(key, ("HGETALL", key))
        return _token(token_hash, fields)

    def add(self, record: TokenRecord) -> None:
        """A new link: its record and its deadline."""
        key = _token_key(record.token_hash)
        self.uow.writes.hset(
            key,
            mapping={
                "registration_id": record.registration_id,
                "expires_at": str(record.expires_at),
                "state": record.state,
            },
        )
        self.uow.writes.expireat(key, record.expires_at + TOKEN_RETENTION_SECONDS)
        self.uow.writes.zadd(DEADLINES, {record.token_hash: record.expires_at})

    def set_state(self, token_hash: str, state: TokenState) -> None:
        """A link that can no longer be used (used, replaced, expired): nothing left to sweep."""
        self.uow.writes.hset(_token_key(token_hash), "state", state)
        self.forget_deadline(token_hash)

    def forget_deadline(self, token_hash: str) -> None:
        self.uow.writes.zrem(DEADLINES, token_hash)

    def due(self, now: float, limit: int = 500) -> list[str]:
        """Hashes of the links whose deadline has come, the earliest first."""
        (due,) = self.uow.read(DEADLINES, ("ZRANGEBYSCORE", DEADLINES, "-inf", now, "LIMIT", 0, limit))
        return due


class ActiveLogins:
    """Which registration's active account uses a login email (compared by `domain.login_key`)."""

    def __init__(self, uow: RedisUnitOfWork) -> None:
        self.uow = uow

    def owner(self, login_key: str) -> str | None:
        key = _active_login_key(login_key)
        (owner,) = self.uow.read(key, ("GET", key))
        return owner

    def claim(self, login_key: str, registration_id: str) -> None:
        self.uow.writes.set(_active_login_key(login_key), registration_id)


class CredentialsRepository:
    def __init__(self, uow: RedisUnitOfWork) -> None:
        self.uow = uow

    def get(self, registration_id: str) -> Credentials | None:
        key = _credentials_key(registration_id)
        (fields,) = self.uow.read(key, ("HGETALL", key))
        return Credentials(**fields) if fields else None

    def remove(self, registration_id: str) -> None:
        """The password's and the answer's hashes, and the question, erased."""
        self.uow.writes.delete(_credentials_key(registration_id))

    def save(self, registration_id: str, credentials: Credentials) -> None:
        self.uow.writes.hset(
            _credentials_key(registration_id),
            mapping={
                "password_hash": credentials.password_hash,
                "secret_question": credentials.secret_question,
                "secret_answer_hash": credentials.secret_answer_hash,
            },
        )


class ActivateUnitOfWork(RedisUnitOfWork):
    """activate's one unit of work: every handler of the service runs in it, with each use case's
    repository (the unit tests' `FakeActivateUnitOfWork` offers the same ones)."""

    def __init__(
        self, *args, session_idle_seconds: int = 1800, session_max_seconds: int = 43200, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.accounts = AccountRepository(self)
        self.tokens = TokenRepository(self)
        self.active_logins = ActiveLogins(self)
        self.credentials = CredentialsRepository(self)
        self.sessions = SessionRepository(self, session_idle_seconds, session_max_seconds)
        self.password_resets = PasswordResetRepository(self)
        self.sign_ins = SignInRepository(self)
        self.sign_in_failures = SignInFailures(self)
        self.second_factors = SecondFactorRepository(self)
        self.my_account = MyAccountRepository(self)
        self.approvals = ApprovalRepository(self)
