"""Two decisions on one attachment request at the same moment, on a real Redis: one effect."""

from __future__ import annotations

import threading

from services.activate import handlers
from services.activate.approvals import handlers as approvals
from services.activate.bootstrap import bootstrap
from services.activate.passwords import make_hasher
from services.activate.sessions import handlers as sessions
from shared.events import new_event
from shared.testing import events_on
from shared.timestamps import iso_utc
from tests.integration.activate_support import GOOD, latest_token, structure_confirmed


def test_two_approvals_at_once_make_one_link(settings, redis_client):
    wiring = bootstrap(settings, client=redis_client)
    uow = wiring.uow()
    uow.run(handlers.on_structure_confirmed, structure_confirmed("gp"), uow)
    handlers.choose_workspaces(handlers.ChooseWorkspaces("gp"), uow, wiring.links, handlers.NO_WAIT)
    token = latest_token(redis_client, settings, "gp")
    handlers.activate_account(handlers.ActivateAccount(token, **GOOD), uow, make_hasher())
    requested = new_event(
        "AttachmentRequested",
        "structure",
        "newcomer",
        {
            "attachment_request_id": "req-1",
            "structure_id": "structure-gp",
            "company_name": "CURIE SARL",
            "user": {
                "last_name": "Martin",
                "first_name": "Paul",
                "login_email": "paul.martin@example.fr",
                "contact_email": "paul.martin@example.fr",
                "survey_consent": False,
            },
            "features": {"payment_requests": True, "dume": False},
            "requested_at": iso_utc(wiring.clock()),
        },
    )
    uow.run(approvals.on_attachment_requested, requested, uow, ttl_seconds=3600)
    handlers.choose_workspaces(handlers.ChooseWorkspaces("newcomer"), uow, wiring.links, handlers.NO_WAIT)
    session_ids = [uow.run(sessions.start_session, uow, "gp", "acc") for _ in range(2)]

    barrier, answers, errors = threading.Barrier(2), [], []

    def decide(session_id: str) -> None:
        own = wiring.uow()
        session = sessions.resume_session(session_id, own)
        barrier.wait()
        try:
            answers.append(approvals.decide(approvals.Decide(session, "req-1", "approve"), own, wiring.links))
        except Exception as exc:  # noqa: BLE001 (any failure is reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=decide, args=(session_id,)) for session_id in session_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == [] and len(answers) == 2  # the second finds it decided: the same answer, no effect
    assert [e.subject for e in events_on(redis_client, "AttachmentApproved")] == ["newcomer"]
    assert len([e for e in events_on(redis_client, "ActivationLinkIssued") if e.subject == "newcomer"]) == 1
