"""Sessions: start one (inside the sign-in's transaction), find the live one behind a cookie,
end one or all. Each takes activate's unit of work; no Flask here."""

from __future__ import annotations

from services.activate.repository import ActivateUnitOfWork
from services.activate.sessions import domain as sessions
from services.activate.sessions.domain import Session
from shared.errors import Unauthorized


def start_session(uow: ActivateUnitOfWork, registration_id: str, account_id: str) -> str:
    """Records a new session within the caller's transaction; returns its id for the cookie."""
    session_id, session = sessions.new_session(registration_id, account_id, uow.clock())
    uow.sessions.save(session)
    return session_id


def resume_session(session_id: str | None, uow: ActivateUnitOfWork) -> Session:
    """The live session behind `session_id`; its last use is noted (at most once a minute).
    Raises Unauthorized when there is none, or it timed out."""
    if not sessions.plausible(session_id):
        raise Unauthorized()
    session = uow.run(_resume, uow, sessions.session_hash(session_id))
    if session is None:
        raise Unauthorized()
    return session


def _resume(uow: ActivateUnitOfWork, session_hash: str) -> Session | None:
    """The live session, or None; a timed-out one is removed (returned, not raised, so that
    the removal commits)."""
    session = uow.sessions.get(session_hash)
    now = uow.clock()
    if session is None:
        return None
    if not session.is_live(now, uow.sessions.idle_seconds, uow.sessions.max_seconds):
        uow.sessions.end(session.registration_id, session_hash)
        return None
    if session.needs_touch(now):
        session = session.touched(now)
        uow.sessions.save(session)
    return session


def end_session(session_id: str | None, uow: ActivateUnitOfWork) -> None:
    """Sign-out: the session ends (nothing happens for an unknown or ended one)."""
    if not sessions.plausible(session_id):
        return
    session_hash = sessions.session_hash(session_id)
    uow.run(_end, uow, session_hash)


def _end(uow: ActivateUnitOfWork, session_hash: str) -> None:
    session = uow.sessions.get(session_hash)
    if session is not None:
        uow.sessions.end(session.registration_id, session_hash)


def end_all_sessions(uow: ActivateUnitOfWork, registration_id: str, *, keep: str | None = None) -> None:
    """Within the caller's transaction: every session of the account ends, but `keep`'s (a hash)."""
    uow.sessions.end_all(registration_id, keep=keep)
