"""activate's commands, queries and event handlers: load, decide with `domain` and `links`,
record with the events.

Each takes a unit of work (`uow.accounts`, `uow.tokens`, `uow.active_logins`, `uow.credentials`,
`uow.publish`, `uow.clock`); the same code runs on Redis and, in the unit tests, on dicts.

The activation token exists in clear only while `tokens.LinkMaker.new` makes it and when
`open_activation`/`activate_account` are given it: it is stored as its SHA-256 and travels sealed
inside ActivationLinkIssued.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher

from services.activate import domain, links, passwords, tokens
from services.activate.approvals import handlers as approvals
from services.activate.domain import Account, AlreadyActive, Credentials, Holder
from services.activate.links import NextStep, SweepStep, TokenGone, TokenRecord, TokenState
from services.activate.my_account import handlers as my_account_handlers
from services.activate.tokens import LinkMaker
from shared.arrivals import Awaiting, NoWait
from shared.errors import Invalid, NotFound
from shared.events import Event
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 64
SWEEP_MAX_BATCHES = 100


# --- events in -----------------------------------------------------------------------------------


def on_structure_confirmed(event: Event, uow: UnitOfWork) -> None:
    """StructureConfirmed → the registration's pending account (once, whatever the deliveries)."""
    registration_id = event.data["registration_id"]
    if uow.accounts.get(registration_id) is not None:
        return
    uow.accounts.save(domain.pending_account(registration_id, str(uuid.uuid4()), event.data))


def on_structure_released(event: Event, uow: UnitOfWork) -> None:
    """StructureReleased → the registration's account, not activated in time, is closed: its link
    expires (it answers 410) and a new one can no longer be asked for by its login email.

    The attachment requests waiting for its decision lapse: nobody is left to decide them. An
    active account is left as it is and the release logged as an error: it cannot happen, as
    activation is refused from the deadline on and the structure is released only after it."""
    active = _close_with_structure(event, uow)
    approvals.close_structure(uow, event.data["structure_id"], flagged=False)
    if active is not None:
        log.error(
            "structure %s was released while its account %s is active", active.structure_id, active.account_id
        )


def on_structure_flagged(event: Event, uow: UnitOfWork) -> None:
    """StructureFlagged → SIRENE does not know the structure's SIRET, or the establishment is
    closed: the registration's pending account is closed as on a release (its link answers 410,
    no new one can be asked for).

    An account activated before the check (SIRENE was unavailable then) is deactivated: a closed
    or unknown establishment never keeps a structure with an active account (its utilisateurs are
    detached, its waiting attachment requests lapse); its sessions end and the person reads why in
    notify's email. Logged as a warning, for the operators."""
    active = _close_with_structure(event, uow)
    if active is not None:
        log.warning(
            "structure %s was flagged (%s) while its account %s was active: deactivated",
            active.structure_id,
            event.data["reason"],
            active.account_id,
        )
        my_account_handlers.deactivate(uow, active)
    approvals.close_structure(uow, event.data["structure_id"], flagged=True)


def _close_with_structure(event: Event, uow: UnitOfWork) -> Account | None:
    """The registration's account closed with its structure (the event's `structure_id`), its
    link expired. Returns the account when it is active, and so left as it is; None otherwise
    (closed now, closed already, another structure's or none)."""
    account = uow.accounts.get(event.data["registration_id"])
    if account is None or account.structure_id != event.data["structure_id"]:
        return None
    if account.is_active:
        return account
    released = domain.release(account)
    if released is None:
        return None
    if account.token_hash:
        _retire(uow, account.token_hash, TokenState.EXPIRED)
    uow.accounts.save(released)
    return None


# --- step 3 --------------------------------------------------------------------------------------


def find_account(registration_id: str, uow: UnitOfWork, arrivals: Awaiting) -> Account:
    """The account, waiting a little for a StructureConfirmed not handled yet; else 404, and
    ClaimLapsed (404) once it was not activated by its structure's deadline.

    Inside `uow.run` each look is a guarded read, so that a command reads the account once."""
    account = None
    if 0 < len(registration_id) <= MAX_ID_LENGTH:
        account = arrivals.wait_for(registration_id, lambda: uow.accounts.get(registration_id))
    if account is None:
        raise NotFound()
    return domain.ensure_claim_open(account, uow.clock())


def workspaces_to_choose(registration_id: str, uow: UnitOfWork, arrivals: Awaiting) -> Account:
    """Step 3's page: the account still choosing its workspaces (WorkspacesAlreadyChosen after)."""
    return domain.ensure_workspaces_can_be_chosen(find_account(registration_id, uow, arrivals))


def account_created(registration_id: str, uow: UnitOfWork, arrivals: Awaiting) -> Account:
    """The "account created" page: an account past step 3 (WorkspacesNotChosen before)."""
    return domain.ensure_workspaces_chosen(find_account(registration_id, uow, arrivals))


@dataclass(frozen=True)
class ChooseWorkspaces:
    registration_id: str
    workspaces: list[str] | None = None  # None: the defaults


def choose_workspaces(
    cmd: ChooseWorkspaces, uow: UnitOfWork, link_maker: LinkMaker, arrivals: Awaiting
) -> Account:
    """Step 3: keep the workspaces, create the account's first link, ask for the email. An
    attachment request gets no link yet: it waits for its structure's gestionnaire principal.

    A login email that an active account already uses gets the same answer: its holder is
    warned instead of a link being sent (see `domain.choose_workspaces`)."""
    workspaces = domain.kept_workspaces(cmd.workspaces)
    now = uow.clock()
    link = link_maker.new(now)

    def record() -> Account:
        account = domain.ensure_workspaces_can_be_chosen(find_account(cmd.registration_id, uow, arrivals))
        if account.is_attachment:  # no link before its structure's gestionnaire principal approves
            return approvals.submit(uow, account, workspaces)
        chosen, events = domain.choose_workspaces(account, workspaces, link, _login_holder(uow, account), now)
        uow.accounts.save(chosen)
        uow.tokens.add(TokenRecord(link.token_hash, chosen.registration_id, link.expires_at))
        uow.publish(*events)
        return chosen

    return uow.run(record)


def resend_activation_link(
    registration_id: str, uow: UnitOfWork, link_maker: LinkMaker, arrivals: Awaiting
) -> Account:
    """A new link; the previous one stops working in the same transaction.

    As at step 3, a login email that an active account uses meanwhile gets the same answer and
    its holder is warned instead."""
    now = uow.clock()
    link = link_maker.new(now)

    def record() -> Account:
        account = domain.ensure_link_can_be_resent(find_account(registration_id, uow, arrivals))
        holder = _login_holder(uow, account)
        if account.token_hash:
            _retire(uow, account.token_hash)
        renewed, event = domain.resend_link(account, link, holder, now)
        uow.accounts.save(renewed)
        uow.tokens.add(TokenRecord(link.token_hash, registration_id, link.expires_at))
        uow.publish(event)
        return renewed

    return uow.run(record)


@dataclass(frozen=True)
class RequestActivationLink:
    login_email: str


NO_WAIT = NoWait()  # the index names accounts already stored: no StructureConfirmed to wait for


def request_activation_link(cmd: RequestActivationLink, uow: UnitOfWork, link_maker: LinkMaker) -> int:
    """A new link for each account awaiting activation with the login email typed (at most
    `links.MAX_LINKS_PER_REQUEST`), sent as `resend_activation_link` sends it: the previous link
    stops working. Asked by whoever holds a dead link, who is told nothing of the outcome.

    An unknown email, an account still choosing its workspaces and an active account's email change
    nothing, and cost the same two reads as any request; only a link due adds the resend's own
    transaction. Returns how many links went out, for the tests: never for the answer."""
    login = domain.requested_login(cmd.login_email)
    active_owner = uow.active_logins.owner(login)
    awaiting = uow.accounts.awaiting_activation(login, links.MAX_LINKS_PER_REQUEST)
    renewed = 0
    for registration_id in links.renewed_on_request(active_owner, awaiting):
        try:
            resend_activation_link(registration_id, uow, link_maker, NO_WAIT)
        except (NotFound, AlreadyActive):  # gone or activated since the index was read
            continue
        renewed += 1
    return renewed


def _retire(uow: UnitOfWork, token_hash: str, dies_as: TokenState = TokenState.REPLACED) -> None:
    """An account's link, as a new one goes out (replaced) or its structure is released
    (expired), if it still worked; no longer swept either way."""
    fate = links.retired_link_fate(uow.tokens.get(token_hash), dies_as)
    if fate is None:
        uow.tokens.forget_deadline(token_hash)
    else:
        uow.tokens.set_state(token_hash, fate)


def _login_holder(uow: UnitOfWork, account: Account) -> Holder | None:
    """The holder of the other, active account that already uses `account`'s login email.

    Both outcomes read one account (the holder's, or this one again), so that they make the
    same Redis work: step 3 and the resend must not tell whether the email has an account."""
    owner = uow.active_logins.owner(domain.login_key(account.login_email))
    taken = domain.login_taken(account, owner)
    found = uow.accounts.get(owner if taken and owner else account.registration_id)
    return domain.holder_of(found) if taken else None


# --- step 4 --------------------------------------------------------------------------------------


def _usable(token: str, uow: UnitOfWork) -> tuple[TokenRecord, Account]:
    """The link's record and its account, or UnknownLink (404) / TokenGone (410)."""
    if not tokens.plausible(token):
        raise links.UnknownLink()
    return _link_and_account(uow, tokens.token_hash(token))


def _link_and_account(uow: UnitOfWork, token_hash: str) -> tuple[TokenRecord, Account]:
    """The link and its account, when the link may activate it now (`links.ensure_link_opens`)."""
    record = uow.tokens.get(token_hash)
    account = uow.accounts.get(record.registration_id) if record is not None else None
    return links.ensure_link_opens(record, account, uow.clock(), tokens.same_hash)


def open_activation(token: str, uow: UnitOfWork) -> Account:
    """What the activation page shows, if the link still works."""
    return _usable(token, uow)[1]


def joins_an_active_account(account: Account, uow: UnitOfWork) -> bool:
    """The link's account is an approved attachment request whose login email already has an active
    account: step 4 asks for that account's password instead of a new one."""
    return approvals.joining_holder(uow, account) is not None


def after_dead_link(gone: TokenGone, uow: UnitOfWork) -> NextStep:
    """What the page of a link that no longer works offers: a new link (asked by the login email,
    `request_activation_link`), signing in, or nothing."""
    return links.after_dead_link(uow.accounts.get(gone.registration_id), uow.clock())


@dataclass(frozen=True)
class ActivateAccount:
    token: str
    password: str = ""
    password_confirmation: str = ""
    secret_question: str = ""
    secret_answer: str = ""


def activate_account(cmd: ActivateAccount, uow: UnitOfWork, hasher: PasswordHasher) -> Account:
    """Step 4: the account becomes active, its user gestionnaire principal of the new structure (an
    utilisateur of the structure it asked to join). The link is single-use.

    The link and the form are checked first, then hashed (argon2id, slow on purpose) before the
    transaction, which reads the link, the account and the login email's holder again, guarded:
    whatever committed during the hashing (this link used, another account activated with the
    same login email) is seen, and whatever commits after those reads makes it run again. The
    transaction also refuses (410, expired) once its clock is at or past the structure's claim
    deadline: the structure's sweep releases only after it, so an account is never activated for
    a structure that was released."""
    record, account = _usable(cmd.token, uow)
    holder = approvals.joining_holder(uow, account)
    if holder is not None:
        return _join(cmd, uow, hasher, record, account, holder)
    try:
        form = domain.check_activation_form(
            cmd.password,
            cmd.password_confirmation,
            cmd.secret_question,
            cmd.secret_answer,
            domain.personal_data(account),
        )
    except Invalid as refused:
        raise domain.RefusedForm(refused, account) from None
    credentials = Credentials(
        password_hash=passwords.hash_secret(hasher, form.password),
        secret_question=form.secret_question,
        secret_answer_hash=passwords.hash_secret(hasher, form.secret_answer),
    )

    def record_activation() -> Account:
        current, waiting = _link_and_account(uow, record.token_hash)
        login = domain.login_key(waiting.login_email)
        domain.ensure_login_free(waiting, uow.active_logins.owner(login))
        active, activated = domain.activate(waiting)
        uow.tokens.set_state(current.token_hash, TokenState.USED)
        uow.accounts.save(active)
        uow.credentials.save(active.registration_id, credentials)
        uow.active_logins.claim(login, active.registration_id)
        approvals.on_activated(uow, active)
        uow.publish(activated)
        return active

    return uow.run(record_activation)


def _join(
    cmd: ActivateAccount,
    uow: UnitOfWork,
    hasher: PasswordHasher,
    record: TokenRecord,
    request: Account,
    holder: Account,
) -> Account:
    """Step 4 of an approved attachment request whose login email already has an active account:
    that account's password (checked against its hash, slow on purpose) joins it to the structure.
    The transaction reads the link, the request, the login's holder and its credentials again,
    guarded: a password changed meanwhile, or the holder gone, refuses it. Returns the request's
    account, closed as `joined`, naming the holder's account and its role there."""
    stored = uow.credentials.get(holder.registration_id)
    if stored is None or not cmd.password or not passwords.verify(hasher, stored.password_hash, cmd.password):
        raise domain.RefusedForm(Invalid.on("password", domain.WRONG_HOLDER_PASSWORD), request)

    def record_joining() -> Account:
        current, request = _link_and_account(uow, record.token_hash)
        now_holder = approvals.joining_holder(uow, request)
        credentials = uow.credentials.get(holder.registration_id)
        if (
            now_holder is None
            or now_holder.registration_id != holder.registration_id
            or credentials != stored
        ):
            raise domain.RefusedForm(Invalid.on("password", domain.WRONG_HOLDER_PASSWORD), request)
        uow.tokens.set_state(current.token_hash, TokenState.USED)
        return approvals.join(uow, request, now_holder)

    return uow.run(record_joining)


# --- the sweep -----------------------------------------------------------------------------------


def expire_activation_tokens(uow: UnitOfWork) -> int:
    """Links past their expiry become `expired`, with one ActivationTokenExpired for each that was
    its account's current link. Safe to run twice, or twice at once."""
    now = uow.clock()
    expired = 0
    for _ in range(SWEEP_MAX_BATCHES):
        due = uow.tokens.due(now)
        if not due:
            break
        expired += sum(uow.run(_expire_one, uow, token_hash, now) for token_hash in due)
    return expired


def _expire_one(uow: UnitOfWork, token_hash: str, now: float) -> bool:
    record = uow.tokens.get(token_hash)
    step = links.sweep_step(record, now)
    if step is SweepStep.FORGET:
        uow.tokens.forget_deadline(token_hash)
    if step is not SweepStep.EXPIRE or record is None:
        return False
    lapsed = links.link_lapsed(uow.accounts.get(record.registration_id), record, tokens.same_hash)
    uow.tokens.set_state(token_hash, TokenState.EXPIRED)
    if lapsed is None:
        return False
    account, event = lapsed
    uow.accounts.save(account)
    uow.publish(event)
    return True
