"""Sessions after sign-in: the rules. Pure: no Redis, no Flask (the time is passed in).

A session starts only after the second factor. Its id (256 random bits) lives in the person's
cookie only; Redis keeps its SHA-256, so that reading the database gives no session away. A
session ends after `SESSION_IDLE_SECONDS` without a request, or `SESSION_MAX_SECONDS` after it
started, whichever comes first; signing out ends it, « se déconnecter partout » and a changed
password end every session of the account.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace

SESSION_BYTES = 32
MAX_SESSION_ID_LENGTH = 128  # anything longer is not one of ours
TOUCH_EVERY_SECONDS = 60  # the last request's time is written at most this often


def new_session_id() -> str:
    return secrets.token_urlsafe(SESSION_BYTES)


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def plausible(session_id: str | None) -> bool:
    return bool(session_id) and len(session_id) <= MAX_SESSION_ID_LENGTH


@dataclass(frozen=True)
class Session:
    """A signed-in session of the account kept under `registration_id` (activate's key)."""

    session_hash: str
    registration_id: str
    account_id: str
    started_at: float
    last_seen_at: float

    def expires_at(self, idle_seconds: int, max_seconds: int) -> float:
        return min(self.last_seen_at + idle_seconds, self.started_at + max_seconds)

    def is_live(self, now: float, idle_seconds: int, max_seconds: int) -> bool:
        return now < self.expires_at(idle_seconds, max_seconds)

    def needs_touch(self, now: float) -> bool:
        return now - self.last_seen_at >= TOUCH_EVERY_SECONDS

    def touched(self, now: float) -> Session:
        return replace(self, last_seen_at=now)


def new_session(registration_id: str, account_id: str, now: float) -> tuple[str, Session]:
    """A new session's id (for the cookie) and its record (for Redis)."""
    session_id = new_session_id()
    return session_id, Session(session_hash(session_id), registration_id, account_id, now, now)
