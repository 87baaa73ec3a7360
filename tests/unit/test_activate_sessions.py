"""Sessions on the in-memory unit of work: started, resumed while live, timed out idle or absolute,
ended one by one or all but one."""

from __future__ import annotations

import pytest

from services.activate.sessions import domain as sessions
from services.activate.sessions import handlers as session_handlers
from shared.errors import Unauthorized
from tests.clock import Clock
from tests.unit.fakes.activate import FakeActivateUnitOfWork


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def uow(clock):
    return FakeActivateUnitOfWork(clock)


def start(uow, registration_id="r-1"):
    return uow.run(session_handlers.start_session, uow, registration_id, "acc-1")


def test_a_started_session_is_resumed_by_its_id_only(uow):
    session_id = start(uow)
    session = session_handlers.resume_session(session_id, uow)
    assert (session.registration_id, session.account_id) == ("r-1", "acc-1")
    assert session_id not in uow.sessions.by_hash  # kept by its hash
    for wrong in (None, "", "x" * 500, sessions.new_session_id()):
        with pytest.raises(Unauthorized):
            session_handlers.resume_session(wrong, uow)


def test_a_session_times_out_when_idle_and_in_any_case_at_its_maximum(uow, clock):
    session_id = start(uow)
    for _ in range(28):  # used every 25 minutes: alive past the idle time-out…
        clock.advance(25 * 60)
        session_handlers.resume_session(session_id, uow)
    clock.advance(25 * 60)  # … but never beyond 12 hours
    with pytest.raises(Unauthorized):
        session_handlers.resume_session(session_id, uow)
    other = start(uow)
    clock.advance(1800)
    with pytest.raises(Unauthorized):
        session_handlers.resume_session(other, uow)
    assert uow.sessions.by_hash == {}  # a timed-out session read is removed


def test_sign_out_ends_one_session_and_signing_out_everywhere_ends_the_others(uow):
    first, second, third = start(uow), start(uow), start(uow)
    session_handlers.end_session(first, uow)
    with pytest.raises(Unauthorized):
        session_handlers.resume_session(first, uow)
    keep = sessions.session_hash(second)
    uow.run(session_handlers.end_all_sessions, uow, "r-1", keep=keep)
    assert session_handlers.resume_session(second, uow).session_hash == keep
    with pytest.raises(Unauthorized):
        session_handlers.resume_session(third, uow)
