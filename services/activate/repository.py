"""The only module that knows activate's Redis keys (prefix `activate:`).

Reads take an optional reader (a pipeline in WATCH mode inside a transaction); `watch_*`
watch a key and read it; writers queue on a pipeline already in MULTI, so that the handler
decides what one transaction holds: state changes and the events that announce them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.client import Pipeline

from services.activate.domain import Account, TokenRecord
from shared.bus import publish
from shared.events import Event
from shared.watching import watch_and_read

T = TypeVar("T")
Reader = redis.Redis | Pipeline

TOKEN_RETENTION_SECONDS = 7 * 24 * 3600  # a dead link still answers 410 (not 404) this long
DEADLINES = "activate:token-deadlines"  # sorted set: token hash → expiry (for the sweep)


def _account_key(registration_id: str) -> str:
    return f"activate:account:{registration_id}"


def _credentials_key(registration_id: str) -> str:
    return f"activate:credentials:{registration_id}"


def _token_key(token_hash: str) -> str:
    return f"activate:token:{token_hash}"


def _active_login_key(login_key: str) -> str:
    return f"activate:active-login:{login_key}"


def _account_fields(account: Account) -> dict[str, str]:
    fields = {
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
    }
    return fields


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
        status=fields["status"],
        workspaces=tuple(json.loads(fields.get("workspaces") or "[]")),
        token_hash=fields.get("token_hash") or None,
        token_expires_at=int(fields["token_expires_at"]) if fields.get("token_expires_at") else None,
        role=fields.get("role") or None,
    )


def _token(token_hash: str, fields: dict[str, str]) -> TokenRecord | None:
    if not fields:
        return None
    return TokenRecord(
        token_hash=token_hash,
        registration_id=fields["registration_id"],
        expires_at=int(fields["expires_at"]),
        state=fields["state"],
    )


class ActivateRepository:
    def __init__(self, client: redis.Redis, stream_maxlen: int) -> None:
        self.redis = client
        self.stream_maxlen = stream_maxlen

    def transaction(self, attempt: Callable[[Pipeline], T]) -> T:
        """Run `attempt` (which watches what it reads) until it commits; return its value."""
        return self.redis.transaction(attempt, value_from_callable=True)

    # --- reads ---------------------------------------------------------------------------------

    def get_account(self, registration_id: str, reader: Reader | None = None) -> Account | None:
        return _account(registration_id, (reader or self.redis).hgetall(_account_key(registration_id)))

    def get_token(self, token_hash: str) -> TokenRecord | None:
        return _token(token_hash, self.redis.hgetall(_token_key(token_hash)))

    def get_credentials(self, registration_id: str) -> dict[str, str]:
        return self.redis.hgetall(_credentials_key(registration_id))

    def due_tokens(self, now: float, limit: int = 500) -> list[str]:
        return self.redis.zrangebyscore(DEADLINES, "-inf", now, start=0, num=limit)

    # --- watch and read, one round trip each (inside a transaction) ---------------------------

    def watch_account(self, pipe: Pipeline, registration_id: str) -> Account | None:
        key = _account_key(registration_id)
        (fields,) = watch_and_read(pipe, key, ("HGETALL", key))
        return _account(registration_id, fields)

    def watch_token(self, pipe: Pipeline, token_hash: str) -> TokenRecord | None:
        key = _token_key(token_hash)
        (fields,) = watch_and_read(pipe, key, ("HGETALL", key))
        return _token(token_hash, fields)

    def watch_active_login(self, pipe: Pipeline, login_key: str) -> str | None:
        """The registration whose active account uses this login, if any."""
        key = _active_login_key(login_key)
        (owner,) = watch_and_read(pipe, key, ("GET", key))
        return owner

    # --- writes (the pipeline is in MULTI) -----------------------------------------------------

    def save_account(self, pipe: Pipeline, account: Account) -> None:
        pipe.hset(_account_key(account.registration_id), mapping=_account_fields(account))

    def add_token(self, pipe: Pipeline, record: TokenRecord) -> None:
        """A new link: its record (by hash) and its deadline for the sweep."""
        key = _token_key(record.token_hash)
        pipe.hset(
            key,
            mapping={
                "registration_id": record.registration_id,
                "expires_at": str(record.expires_at),
                "state": record.state,
            },
        )
        pipe.expireat(key, record.expires_at + TOKEN_RETENTION_SECONDS)
        pipe.zadd(DEADLINES, {record.token_hash: record.expires_at})

    def set_token_state(self, pipe: Pipeline, token_hash: str, state: str) -> None:
        """A link that can no longer be used (used, replaced, expired): nothing left to sweep."""
        pipe.hset(_token_key(token_hash), "state", state)
        pipe.zrem(DEADLINES, token_hash)

    def forget_deadline(self, pipe: Pipeline, token_hash: str) -> None:
        pipe.zrem(DEADLINES, token_hash)

    def save_credentials(
        self, pipe: Pipeline, registration_id: str, password_hash: str, question: str, answer_hash: str
    ) -> None:
        pipe.hset(
            _credentials_key(registration_id),
            mapping={
                "password_hash": password_hash,
                "secret_question": question,
                "secret_answer_hash": answer_hash,
            },
        )

    def set_active_login(self, pipe: Pipeline, login_key: str, registration_id: str) -> None:
        pipe.set(_active_login_key(login_key), registration_id)

    def publish(self, pipe: Pipeline, event: Event) -> None:
        publish(pipe, event, self.stream_maxlen)
