"""Attachment requests and structures' users: the event that opens a request, step 3 of one, the
gestionnaire principal's decision (« Approbations »), the sweep of requests left undecided, and
detaching a user (« Mon compte »).

Each takes activate's unit of work (`uow.accounts`, `uow.approvals`, `uow.active_logins`,
`uow.tokens`, `uow.publish`, `uow.clock`); the same code runs on Redis and, in the unit tests, on
dicts. The signed-in manager is named by their `Session`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.activate import domain
from services.activate.approvals import domain as rules
from services.activate.approvals.domain import Decision, DetachStep, PendingRequest
from services.activate.domain import Account
from services.activate.links import TokenRecord
from services.activate.my_account import handlers as my_account_handlers
from services.activate.sessions.domain import Session
from services.activate.tokens import LinkMaker
from shared.contracts import Role
from shared.events import Event
from shared.unit_of_work import UnitOfWork

SWEEP_MAX_BATCHES = 100


# --- the request opens, and goes through step 3 ---------------------------------------------------


def on_attachment_requested(event: Event, uow: UnitOfWork, *, ttl_seconds: int) -> None:
    """AttachmentRequested → the registration's pending account, an attachment request that lapses
    `ttl_seconds` (ATTACHMENT_TTL_SECONDS) after it was made unless decided. Once, whatever the
    deliveries."""
    registration_id = event.data["registration_id"]
    if uow.accounts.get(registration_id) is not None:
        return
    account = domain.pending_attachment(registration_id, str(uuid.uuid4()), event.data, ttl_seconds)
    uow.accounts.save(account)
    uow.approvals.add_request(account.attachment_request_id, registration_id, account.attachment_expires_at)


def submit(uow: UnitOfWork, account: Account, workspaces: tuple[str, ...]) -> Account:
    """Within step 3's transaction, for an attachment request: its workspaces kept, and it waits
    for the structure's gestionnaire principal, who is emailed."""
    manager_id = uow.approvals.manager_of(account.structure_id)
    manager = rules.manager_of(uow.accounts.get(manager_id) if manager_id else None, account.structure_id)
    submitted, events = rules.submit(account, workspaces, manager)
    uow.accounts.save(submitted)
    uow.approvals.submit(account.structure_id, account.registration_id, account.requested_at or 0)
    uow.publish(*events)
    return submitted


def on_activated(uow: UnitOfWork, active: Account) -> None:
    """Within step 4's transaction: the account is a member of its structure, and its manager when
    it is the gestionnaire principal (the structure's first account)."""
    uow.approvals.add_member(active.structure_id, active.registration_id)
    if active.role is Role.GESTIONNAIRE_PRINCIPAL:
        uow.approvals.set_manager(active.structure_id, active.registration_id)


# --- « Approbations » -----------------------------------------------------------------------------


def pending_requests(session: Session, uow: UnitOfWork) -> list[PendingRequest]:
    """The requests waiting for the signed-in gestionnaire principal, the oldest first (403 for
    anyone else)."""
    managed = rules.ensure_manager(my_account_handlers.my_account(session, uow))
    found: list[PendingRequest] = []
    for structure_id in managed:
        for registration_id in uow.approvals.pending(structure_id, rules.PENDING_SHOWN_MAX):
            request = uow.accounts.get(registration_id)
            if request is not None and request.status is domain.AccountStatus.AWAITING_APPROVAL:
                found.append(rules.pending_view(request))
    return sorted(found, key=lambda request: request.requested_at)


@dataclass(frozen=True)
class Decide:
    session: Session
    attachment_request_id: str
    decision: str
    reason: str | None = None


def decide(cmd: Decide, uow: UnitOfWork, link_maker: LinkMaker) -> Account:
    """The gestionnaire principal approves or refuses a request of their structure, once: the same
    decision again changes nothing; the other one is refused (409).

    The manager, the request and (for an approval) the holder of its login email are read in the
    transaction, watched: of two decisions at once, one commits and the other, run again, finds the
    request decided."""
    decision = rules.parse_decision(cmd.decision)
    reason = rules.check_reason(cmd.reason) if decision is Decision.REFUSE else None
    now = uow.clock()
    link = link_maker.new(now)

    def record() -> Account:
        managed = rules.ensure_manager(my_account_handlers.my_account(cmd.session, uow))
        registration_id = uow.approvals.request_of(cmd.attachment_request_id[:64])
        found = uow.accounts.get(registration_id) if registration_id else None
        request = rules.ensure_request_of(managed, found)
        if rules.already(request, decision):
            return request
        uow.approvals.close(
            request.structure_id, request.registration_id, request.attachment_request_id or ""
        )
        if decision is Decision.REFUSE:
            refused, event = rules.refuse(request, reason, now)
            uow.accounts.save(refused)
            uow.publish(event)
            return refused
        return _approve(uow, request, link, now)

    return uow.run(record)


def _approve(uow: UnitOfWork, request: Account, link: domain.NewLink, now: float) -> Account:
    """The activation link goes to the login email, even one that an active account uses: opening
    it proves the address is the requester's (step 4 then asks for that account's password)."""
    approved, events = rules.approve_with_link(request, link, now)
    uow.accounts.save(approved)
    uow.tokens.add(TokenRecord(link.token_hash, approved.registration_id, link.expires_at))
    uow.publish(*events)
    return approved


def joining_holder(uow: UnitOfWork, request: Account) -> Account | None:
    """The active account that an approved request's login email already has, which step 4 joins
    to the structure rather than activating a second account; None for a first account."""
    if not request.is_attachment:
        return None
    owner = uow.active_logins.owner(domain.login_key(request.login_email))
    if owner is None or owner == request.registration_id:
        return None
    holder = uow.accounts.get(owner)
    return holder if holder is not None and holder.is_active else None


def join(uow: UnitOfWork, request: Account, holder: Account) -> Account:
    """Within step 4's transaction: the holder's account joins the request's structure."""
    joined, member, events = rules.join(request, holder)
    uow.accounts.save(joined)
    uow.accounts.save(member)
    uow.approvals.add_member(request.structure_id, member.registration_id)
    uow.publish(*events)
    return joined


# --- the sweep ------------------------------------------------------------------------------------


def expire_attachment_requests(uow: UnitOfWork) -> int:
    """Requests past their deadline and still undecided lapse, each with AttachmentExpired. Safe to
    run twice, or twice at once."""
    now = uow.clock()
    expired = 0
    for _ in range(SWEEP_MAX_BATCHES):
        due = uow.approvals.due(now)
        if not due:
            break
        expired += sum(uow.run(_lapse_one, uow, registration_id, now) for registration_id in due)
    return expired


def _lapse_one(uow: UnitOfWork, registration_id: str, now: float) -> bool:
    request = uow.accounts.get(registration_id)
    lapsed = rules.lapse(request, now)
    if lapsed is None:
        uow.approvals.forget_deadline(registration_id)
        return False
    account, event = lapsed
    uow.accounts.save(account)
    uow.approvals.close(account.structure_id, registration_id, account.attachment_request_id or "")
    uow.publish(event)
    return True


def close_structure(uow: UnitOfWork, structure_id: str, *, flagged: bool) -> None:
    """Within the handling of StructureReleased or StructureFlagged: the requests waiting for the
    structure's decision lapse (AttachmentExpired: nobody is left to decide them); a flagged
    structure (closed or unknown to SIRENE) keeps no active user either: each is detached."""
    now = uow.clock()
    for registration_id in uow.approvals.pending(structure_id, rules.PENDING_SHOWN_MAX):
        lapsed = rules.lapse(uow.accounts.get(registration_id), now, structure_gone=True)
        if lapsed is not None:
            account, event = lapsed
            uow.accounts.save(account)
            uow.approvals.close(structure_id, registration_id, account.attachment_request_id or "")
            uow.publish(event)
    if not flagged:
        return
    for registration_id in uow.approvals.members(structure_id):
        user = uow.accounts.get(registration_id)
        if user is None or user.role_in(structure_id) is not Role.UTILISATEUR:
            continue
        _detach(uow, user, structure_id)


# --- users of the manager's structures ------------------------------------------------------------


@dataclass(frozen=True)
class StructureUser:
    """A user as « Mon compte » lists them for their structure's gestionnaire principal."""

    account_id: str
    structure_id: str
    company_name: str
    login_email: str
    last_name: str
    first_name: str
    role: Role


def structure_users(session: Session, uow: UnitOfWork) -> list[StructureUser]:
    """The active users of the signed-in manager's structures (403 for anyone else)."""
    me = my_account_handlers.my_account(session, uow)
    users: list[StructureUser] = []
    for structure_id in rules.ensure_manager(me):
        company_name = next(m.company_name for m in me.memberships if m.structure_id == structure_id)
        for registration_id in uow.approvals.members(structure_id):
            user = uow.accounts.get(registration_id)
            role = user.role_in(structure_id) if user is not None and user.is_active else None
            if user is not None and role is not None:
                users.append(
                    StructureUser(
                        user.account_id,
                        structure_id,
                        company_name,
                        user.login_email,
                        user.last_name,
                        user.first_name,
                        role,
                    )
                )
    return users


@dataclass(frozen=True)
class DetachUser:
    session: Session
    structure_id: str
    account_id: str


def detach_user(cmd: DetachUser, uow: UnitOfWork) -> Account:
    """The user no longer belongs to the manager's structure (UserDetached); an account left with
    no structure is deactivated (its sessions end, AccountDeactivated)."""

    def record() -> Account:
        managed = rules.ensure_manager(my_account_handlers.my_account(cmd.session, uow))
        if cmd.structure_id not in managed:
            raise rules.UnknownUser()
        user = next(
            (
                found
                for registration_id in uow.approvals.members(cmd.structure_id)
                if (found := uow.accounts.get(registration_id)) is not None
                and found.account_id == cmd.account_id
            ),
            None,
        )
        return _detach(uow, user, cmd.structure_id)

    return uow.run(record)


def _detach(uow: UnitOfWork, user: Account | None, structure_id: str) -> Account:
    step, left, event = rules.detach(user, structure_id)
    uow.approvals.remove_member(structure_id, left.registration_id)
    uow.publish(event)
    if step is DetachStep.DEACTIVATE:
        return my_account_handlers.deactivate(uow, left)
    uow.accounts.save(left)
    return left
