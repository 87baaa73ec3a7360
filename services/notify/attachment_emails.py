"""The emails of a request to join an existing structure (« rattachement »): what their templates
are given. Pure, like `domain`: no Redis, no SMTP, no clock.

- the request (ApprovalRequested), to the structure's gestionnaire principal: who asks (names and
  login email only), for which structure, where to decide (« Approbations », signed in) and until
  when;
- the request approved: no email of its own, the activation email (ActivationLinkIssued, reason
  `approved`) tells it;
- the request refused (AttachmentRefused) or not decided in time (AttachmentExpired), to the
  newcomer: the request is closed, and where to start again.

None of them holds a link that acts: only pages that ask to sign in or start from step 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.notify.domain import clean_name, deadline_in_words, restart_link

APPROVAL_REQUESTED_SUBJECT = "Demande de rattachement à votre structure"
REFUSED_SUBJECT = "Votre demande de rattachement a été refusée"
EXPIRED_SUBJECT = "Votre demande de rattachement a expiré"


def approvals_link(public_base_url: str) -> str:
    """« Approbations »: where the gestionnaire principal, signed in, approves or refuses."""
    return f"{public_base_url.rstrip('/')}/activate/approvals"


@dataclass(frozen=True)
class ApprovalRequestedEmail:
    """To the gestionnaire principal: the newcomer's names and login email, nothing else of them."""

    to: str
    manager_first_name: str  # "" when unknown: the greeting is then « Bonjour, »
    manager_last_name: str
    first_name: str  # the newcomer's
    last_name: str
    login_email: str
    company_name: str
    approvals_link: str
    deadline: str
    subject: str = APPROVAL_REQUESTED_SUBJECT


def approval_requested_email(
    *,
    to: str,
    manager_first_name: str | None,
    manager_last_name: str | None,
    first_name: str,
    last_name: str,
    login_email: str,
    company_name: str,
    expires_at: datetime,
    public_base_url: str,
) -> ApprovalRequestedEmail:
    return ApprovalRequestedEmail(
        to=to,
        manager_first_name=clean_name(manager_first_name or ""),
        manager_last_name=clean_name(manager_last_name or ""),
        first_name=clean_name(first_name),
        last_name=clean_name(last_name),
        login_email=login_email,
        company_name=clean_name(company_name),
        approvals_link=approvals_link(public_base_url),
        deadline=deadline_in_words(expires_at),
    )


@dataclass(frozen=True)
class AttachmentRefusedEmail:
    """To the newcomer: the structure, the gestionnaire principal's reason if they gave one (one
    line, as typed: the HTML template escapes it), and where to start again."""

    to: str
    first_name: str
    last_name: str
    company_name: str
    reason: str | None
    restart_link: str
    subject: str = REFUSED_SUBJECT


def attachment_refused_email(
    *,
    to: str,
    first_name: str,
    last_name: str,
    company_name: str,
    reason: str | None,
    public_base_url: str,
) -> AttachmentRefusedEmail:
    return AttachmentRefusedEmail(
        to=to,
        first_name=clean_name(first_name),
        last_name=clean_name(last_name),
        company_name=clean_name(company_name),
        reason=clean_name(reason or "") or None,
        restart_link=restart_link(public_base_url),
    )


@dataclass(frozen=True)
class AttachmentExpiredEmail:
    """To the newcomer: the request was not decided in time and is closed; where to start again."""

    to: str
    first_name: str
    last_name: str
    company_name: str
    restart_link: str
    subject: str = EXPIRED_SUBJECT


def attachment_expired_email(
    *, to: str, first_name: str, last_name: str, company_name: str, public_base_url: str
) -> AttachmentExpiredEmail:
    return AttachmentExpiredEmail(
        to=to,
        first_name=clean_name(first_name),
        last_name=clean_name(last_name),
        company_name=clean_name(company_name),
        restart_link=restart_link(public_base_url),
    )
