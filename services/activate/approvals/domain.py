"""Rules of attachment requests and of detaching users. Pure: no Redis, no Flask, no clock.

An attachment request is an account (`Account.is_attachment`) that joins a structure that exists:
opened by AttachmentRequested, it goes through step 3 like any account, then waits
(`AWAITING_APPROVAL`) for the structure's gestionnaire principal, who approves or refuses it once,
or it lapses after ATTACHMENT_TTL_SECONDS. Approved, it gets its activation link, which proves the
login email is the requester's: at step 4 it becomes an utilisateur; or, when its login email
already has an active account, that account's password joins it to the structure (a membership
more) and the request's own account closes (`JOINED`): nobody is put in a structure without
having asked from their own address and confirmed with their own password.

Only a gestionnaire principal of the request's structure decides; anyone else signed in is told
403, and a request of another structure is as unknown (404) as one that does not exist. The
structure keeps its one gestionnaire principal: nobody becomes one through this path.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from services.activate.catalogue import WORKSPACE_CODES
from services.activate.domain import (
    Account,
    AccountStatus,
    Membership,
    NewLink,
    sealed_link,
    to_holder,
)
from shared.contracts import (
    AccountActivated,
    ActivationLinkIssued,
    ApprovalRequested,
    AttachmentApproved,
    AttachmentExpired,
    AttachmentRefused,
    DomainEvent,
    LinkReason,
    Role,
    UserDetached,
    WorkspacesChanged,
    WorkspacesChosen,
)
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.timestamps import iso_utc

REASON_MAX_LENGTH = 500
PENDING_SHOWN_MAX = 200  # requests listed per structure on « Approbations »


class Decision(StrEnum):
    APPROVE = "approve"
    REFUSE = "refuse"


class NotAManager(Forbidden):
    default_message = (
        "Seul le gestionnaire principal d'une structure peut traiter ses demandes de rattachement "
        "et détacher ses utilisateurs."
    )


class UnknownRequest(NotFound):
    default_message = "Cette demande de rattachement n'existe pas, ou ne concerne pas vos structures."


class AlreadyDecided(Conflict):
    default_message = "Cette demande de rattachement a déjà été traitée : la décision ne peut plus changer."


class RequestLapsed(Conflict):
    default_message = "Cette demande de rattachement a expiré sans décision : elle ne peut plus être traitée."


class UnknownUser(NotFound):
    default_message = "Cet utilisateur n'appartient pas à vos structures."


class ManagerStays(Conflict):
    default_message = "Le gestionnaire principal d'une structure ne peut pas en être détaché."


# --- who decides ---------------------------------------------------------------------------------


def managed_structures(account: Account | None) -> tuple[str, ...]:
    """The structures whose gestionnaire principal the (active) account is."""
    if account is None or not account.is_active:
        return ()
    return tuple(m.structure_id for m in account.memberships if m.role is Role.GESTIONNAIRE_PRINCIPAL)


def ensure_manager(account: Account | None) -> tuple[str, ...]:
    managed = managed_structures(account)
    if not managed:
        raise NotAManager()
    return managed


def ensure_request_of(managed: Iterable[str], request: Account | None) -> Account:
    """The request, when it is one of these structures' and step 3 is done (the manager sees it)."""
    if (
        request is None
        or not request.is_attachment
        or request.structure_id not in managed
        or request.status is AccountStatus.PENDING
    ):
        raise UnknownRequest()
    return request


# --- step 3 of a request -----------------------------------------------------------------------


@dataclass(frozen=True)
class Manager:
    """Whom the request is announced to: the structure's gestionnaire principal, if active."""

    contact_email: str
    first_name: str
    last_name: str


def manager_of(account: Account | None, structure_id: str) -> Manager | None:
    if account is None or structure_id not in managed_structures(account):
        return None
    return Manager(account.contact_email, account.first_name, account.last_name)


def submit(
    account: Account, workspaces: tuple[str, ...], manager: Manager | None
) -> tuple[Account, list[DomainEvent]]:
    """Step 3 of an attachment request: its workspaces kept, and no link yet: it waits for the
    structure's gestionnaire principal, whom notify emails (ApprovalRequested)."""
    submitted = replace(account, status=AccountStatus.AWAITING_APPROVAL, workspaces=workspaces)
    return submitted, [
        WorkspacesChosen(
            registration_id=account.registration_id,
            account_id=account.account_id,
            workspaces=list(workspaces),
            token_expires_at=None,
        ),
        ApprovalRequested(
            **_facts(account),
            manager_email=manager.contact_email if manager else None,
            manager_first_name=manager.first_name if manager else None,
            manager_last_name=manager.last_name if manager else None,
            expires_at=iso_utc(account.attachment_expires_at or 0),
        ),
    ]


def _facts(account: Account) -> dict:
    return {
        **to_holder(account),
        "attachment_request_id": account.attachment_request_id or "",
        "structure_id": account.structure_id,
        "company_name": account.company_name,
    }


# --- the decision ----------------------------------------------------------------------------------


def check_reason(reason: str | None) -> str | None:
    """The refusal's reason as it will be emailed: one line, trimmed; None when left empty."""
    text = " ".join((reason or "").split())
    if not text:
        return None
    if len(text) > REASON_MAX_LENGTH:
        raise Invalid.on("reason", f"Le motif doit comporter au plus {REASON_MAX_LENGTH} caractères.")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise Invalid.on("reason", "Le motif ne doit pas contenir de caractère de contrôle.")
    return text


def parse_decision(value: str) -> Decision:
    try:
        return Decision((value or "").strip().lower())
    except ValueError:
        raise Invalid.on("decision", "La décision doit être « approve » ou « refuse ».") from None


def already(request: Account, decision: Decision) -> bool:
    """Whether the request was decided already, as `decision` asks: then nothing more happens.
    AlreadyDecided when it was decided the other way, RequestLapsed when it lapsed undecided."""
    if request.status is AccountStatus.AWAITING_APPROVAL:
        return False
    if request.status is AccountStatus.REQUEST_EXPIRED:
        raise RequestLapsed()
    # Past its decision, an approved request's account went on (link, activation, joining…).
    decided = Decision.REFUSE if request.status is AccountStatus.REFUSED else Decision.APPROVE
    if decided is not decision:
        raise AlreadyDecided()
    return True


def approve_with_link(request: Account, link: NewLink, now: float) -> tuple[Account, list[DomainEvent]]:
    """Approved, for a login email with no active account: the activation link goes out."""
    approved = replace(
        request,
        status=AccountStatus.AWAITING_ACTIVATION,
        token_hash=link.token_hash,
        token_expires_at=link.expires_at,
    )
    return approved, [
        AttachmentApproved(**_facts(request), decided_at=iso_utc(now)),
        ActivationLinkIssued(**to_holder(approved), **sealed_link(link), reason=LinkReason.APPROVED),
    ]


def join(request: Account, holder: Account) -> tuple[Account, Account, list[DomainEvent]]:
    """Step 4 of an approved request whose login email already has an active account (`holder`),
    its holder having given that account's password: the account joins the structure (as an
    utilisateur, unless it belongs to it already), with the request's workspaces added to its own;
    the request's account closes (`JOINED`), naming the account and the role it now stands for."""
    role = holder.role_in(request.structure_id) or Role.UTILISATEUR
    member = replace(holder, joined_registrations=(*holder.joined_registrations, request.registration_id))
    events: list[DomainEvent] = []
    if holder.role_in(request.structure_id) is None:
        workspaces = tuple(c for c in WORKSPACE_CODES if c in {*holder.workspaces, *request.workspaces})
        member = replace(
            member,
            other_memberships=(
                *holder.other_memberships,
                Membership(request.structure_id, role, request.company_name),
            ),
            workspaces=workspaces,
        )
        if workspaces != holder.workspaces:
            events.append(
                WorkspacesChanged(
                    registration_id=holder.registration_id,
                    account_id=holder.account_id,
                    workspaces=list(workspaces),
                )
            )
    joined = replace(
        request,
        status=AccountStatus.JOINED,
        account_id=holder.account_id,
        role=role,
        token_hash=None,
        token_expires_at=None,
    )
    events.append(
        AccountActivated(
            registration_id=request.registration_id,
            account_id=holder.account_id,
            structure_id=request.structure_id,
            role=role,
        )
    )
    return joined, member, events


def refuse(request: Account, reason: str | None, now: float) -> tuple[Account, AttachmentRefused]:
    refused = replace(request, status=AccountStatus.REFUSED)
    return refused, AttachmentRefused(**_facts(request), reason=reason, decided_at=iso_utc(now))


# --- lapsing -------------------------------------------------------------------------------------------


def lapse(
    request: Account | None, now: float, *, structure_gone: bool = False
) -> tuple[Account, AttachmentExpired] | None:
    """A request not decided by its deadline closes, with AttachmentExpired; so does one whose
    structure is released or flagged (`structure_gone`: there is nobody left to decide). None when
    there is nothing to close (decided, gone, or not due)."""
    if request is None or not request.is_attachment:
        return None
    if request.status not in (AccountStatus.PENDING, AccountStatus.AWAITING_APPROVAL):
        return None
    due = request.attachment_expires_at is not None and request.attachment_expires_at <= now
    if not (due or structure_gone):
        return None
    lapsed = replace(request, status=AccountStatus.REQUEST_EXPIRED)
    return lapsed, AttachmentExpired(**_facts(request), expired_at=iso_utc(now))


# --- detaching a user -----------------------------------------------------------------------------


class DetachStep(StrEnum):
    LEAVE = "leave"  # one structure less, the account stays active
    DEACTIVATE = "deactivate"  # it was the account's only structure: the account is deactivated


def detach(user: Account | None, structure_id: str) -> tuple[DetachStep, Account, UserDetached]:
    """`user` no longer belongs to `structure_id`. Its gestionnaire principal cannot be detached."""
    if user is None or not user.is_active or user.role_in(structure_id) is None:
        raise UnknownUser()
    if user.role_in(structure_id) is Role.GESTIONNAIRE_PRINCIPAL:
        raise ManagerStays()
    event = UserDetached(
        registration_id=user.registration_id, account_id=user.account_id, structure_id=structure_id
    )
    remaining = tuple(m for m in user.memberships if m.structure_id != structure_id)
    if not remaining:
        return DetachStep.DEACTIVATE, user, event
    first, *others = remaining
    left = replace(
        user,
        structure_id=first.structure_id,
        role=first.role,
        company_name=first.company_name,
        other_memberships=tuple(others),
    )
    return DetachStep.LEAVE, left, event


@dataclass(frozen=True)
class PendingRequest:
    """A request as « Approbations » lists it: who asks, for which structure, since when."""

    attachment_request_id: str
    structure_id: str
    company_name: str
    login_email: str
    last_name: str
    first_name: str
    requested_at: str


def pending_view(request: Account) -> PendingRequest:
    return PendingRequest(
        attachment_request_id=request.attachment_request_id or "",
        structure_id=request.structure_id,
        company_name=request.company_name,
        login_email=request.login_email,
        last_name=request.last_name,
        first_name=request.first_name,
        requested_at=iso_utc(request.requested_at or 0),
    )
