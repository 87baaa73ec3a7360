"""A registration's status along an attachment request (joining a structure that exists)."""

from __future__ import annotations

import pytest

from services.identify.domain import Progress, RegistrationStatus, is_abandoned, progress_after

S = RegistrationStatus
LINK = {"token_expires_at": "2026-12-01T10:00:00+00:00"}


def after(status: S, *events: str) -> S:
    progress = Progress(status)
    for event in events:
        data = {"token_expires_at": None} if event == "WorkspacesChosen" else LINK
        progress = progress_after(progress, event, data) or progress
    return progress.status


def test_a_request_waits_for_its_approval_after_step_three():
    assert after(S.STARTED, "AttachmentRequested") is S.AWAITING_APPROVAL
    assert after(S.STARTED, "AttachmentRequested", "WorkspacesChosen") is S.AWAITING_APPROVAL
    assert (
        after(S.STARTED, "AttachmentRequested", "WorkspacesChosen", "ApprovalRequested")
        is S.AWAITING_APPROVAL
    )
    # The streams may deliver step 3's event before step 2's: the status still ends the same.
    assert after(S.STARTED, "ApprovalRequested", "AttachmentRequested") is S.AWAITING_APPROVAL


def test_approved_it_moves_on_as_any_link_does_then_activates():
    waiting = after(S.STARTED, "AttachmentRequested", "ApprovalRequested")
    assert after(waiting, "ActivationLinkIssued") is S.WORKSPACES_CHOSEN
    assert after(waiting, "ActivationLinkIssued", "AccountActivated") is S.ACTIVATED
    assert after(waiting, "AccountActivated") is S.ACTIVATED  # an active account joined


@pytest.mark.parametrize(
    ("event", "ends"), [("AttachmentRefused", S.REFUSED), ("AttachmentExpired", S.EXPIRED)]
)
def test_refused_or_lapsed_it_ends_and_nothing_late_revives_it(event, ends):
    ended = after(S.STARTED, "AttachmentRequested", "ApprovalRequested", event)
    assert ended is ends
    assert after(ended, "ApprovalRequested", "AttachmentRequested") is ends


def test_a_request_is_not_swept_as_abandoned_its_own_deadline_applies():
    assert not is_abandoned(S.AWAITING_APPROVAL)
