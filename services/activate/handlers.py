"""activate's commands and event handlers: load, decide with `domain`, save with the events.

The activation token exists in clear only in this module's local variables and in the answer
to nobody: it is sealed for notify (inside ActivationLinkIssued) and stored as its SHA-256.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from argon2 import PasswordHasher
from redis.client import Pipeline

from services.activate import domain, passwords, tokens
from services.activate.domain import Account, TokenRecord
from services.activate.repository import ActivateRepository
from shared.contracts import ROLE_PRINCIPAL_MANAGER
from shared.errors import NotFound
from shared.events import Event, new_event
from shared.sealing import seal
from shared.settings import Settings
from shared.store import wait_for

SERVICE = "activate"
Clock = Callable[[], float]
MAX_ID_LENGTH = 64
SWEEP_MAX_BATCHES = 100


# --- events in -----------------------------------------------------------------------------------


def make_structure_confirmed_handler(repo: ActivateRepository):
    """StructureConfirmed → the registration's pending account (once, whatever the deliveries)."""

    def on_structure_confirmed(event: Event, pipe: Pipeline) -> None:
        data = event.data
        registration_id = data["registration_id"]
        if repo.watch_account(pipe, registration_id) is not None:
            return
        user = data["user"]
        account = Account(
            registration_id=registration_id,
            account_id=str(uuid.uuid4()),
            structure_id=data["structure_id"],
            last_name=user["last_name"],
            first_name=user["first_name"],
            login_email=user["login_email"],
            contact_email=user.get("contact_email") or user["login_email"],
            survey_consent=bool(user.get("survey_consent")),
            company_name=(data.get("structure") or {}).get("company_name") or "",
            features=dict(data.get("features") or {}),
        )
        pipe.multi()
        repo.save_account(pipe, account)

    return on_structure_confirmed


# --- step 3 --------------------------------------------------------------------------------------


def find_account(registration_id: str, repo: ActivateRepository, settings: Settings) -> Account:
    """The account, waiting a little for a StructureConfirmed not handled yet; else 404."""
    account = None
    if 0 < len(registration_id) <= MAX_ID_LENGTH:
        account = wait_for(lambda: repo.get_account(registration_id), settings.event_wait_seconds)
    if account is None:
        raise NotFound()
    return account


class _NewLink:
    """A fresh token in its two safe forms: hashed (to store) and sealed (for notify)."""

    def __init__(self, settings: Settings, now: float) -> None:
        token = tokens.new_token()
        self.hash = tokens.token_hash(token)
        self.sealed = seal(token, settings.require_secret_key())
        self.ttl_seconds = settings.activation_ttl_seconds
        self.expires_at = domain.token_expiry(now, self.ttl_seconds)

    def record(self, registration_id: str) -> TokenRecord:
        return TokenRecord(self.hash, registration_id, self.expires_at)

    def issued_event(self, account: Account, reason: str) -> Event:
        return new_event(
            "ActivationLinkIssued",
            SERVICE,
            account.registration_id,
            {
                "account_id": account.account_id,
                "login_email": account.login_email,
                "first_name": account.first_name,
                "last_name": account.last_name,
                "sealed_token": self.sealed,
                "token_expires_at": domain.iso_utc(self.expires_at),
                "ttl_seconds": self.ttl_seconds,
                "reason": reason,
            },
        )


@dataclass(frozen=True)
class _Holder:
    """Whoever holds, with an active account, the login email of a registration."""

    first_name: str | None = None
    last_name: str | None = None


def _login_holder(pipe: Pipeline, repo: ActivateRepository, account: Account) -> _Holder | None:
    """The other, active account that already uses `account`'s login email, if any (watched).

    Both outcomes read one account hash, so that the two take the same work and time: step 3 and
    the resend must not tell whether the email already has an account.
    """
    owner = repo.watch_active_login(pipe, domain.login_key(account.login_email))
    taken = owner is not None and owner != account.registration_id
    found = repo.get_account(owner if taken else account.registration_id, pipe)
    if not taken:
        return None
    return _Holder(found.first_name or None, found.last_name or None) if found else _Holder()


def _link_or_warning(
    link: _NewLink, account: Account, holder: _Holder | None, reason: str, now: float
) -> Event:
    """The event that goes out for a new link: the link itself, or, when the login email is an
    active account's, a warning to its holder. The newcomer is answered the same either way; the
    link, never sent to anyone, opens nothing (and activation refuses a second active account)."""
    if holder is None:
        return link.issued_event(account, reason)
    return new_event(
        "RegistrationAttemptOnExistingAccount",
        SERVICE,
        account.registration_id,
        {
            "login_email": account.login_email,
            "first_name": holder.first_name,
            "last_name": holder.last_name,
            "attempted_at": domain.iso_utc(now),
            "token_expires_at": domain.iso_utc(link.expires_at),
            "reason": reason,
        },
    )


def choose_workspaces(
    registration_id: str,
    codes: Iterable[str] | None,
    repo: ActivateRepository,
    clock: Clock,
    settings: Settings,
) -> Account:
    """Step 3: keep the workspaces, create the account's first link, ask for the email.

    A login email that an active account already uses gets the same answer (see
    `_link_or_warning`): the holder is warned instead of a link being sent.
    """
    workspaces = domain.choose_workspaces(codes)
    domain.ensure_workspaces_can_be_chosen(find_account(registration_id, repo, settings))
    now = clock()
    link = _NewLink(settings, now)

    def attempt(pipe: Pipeline) -> Account:
        account = repo.watch_account(pipe, registration_id)
        if account is None:
            raise NotFound()
        domain.ensure_workspaces_can_be_chosen(account)
        holder = _login_holder(pipe, repo, account)
        chosen = replace(
            account,
            status=domain.AWAITING_ACTIVATION,
            workspaces=workspaces,
            token_hash=link.hash,
            token_expires_at=link.expires_at,
        )
        pipe.multi()
        repo.save_account(pipe, chosen)
        repo.add_token(pipe, link.record(registration_id))
        repo.publish(
            pipe,
            new_event(
                "WorkspacesChosen",
                SERVICE,
                registration_id,
                {
                    "account_id": chosen.account_id,
                    "workspaces": list(workspaces),
                    "token_expires_at": domain.iso_utc(link.expires_at),
                },
            ),
        )
        repo.publish(pipe, _link_or_warning(link, chosen, holder, "created", now))
        return chosen

    return repo.transaction(attempt)


def resend_activation_link(
    registration_id: str, repo: ActivateRepository, clock: Clock, settings: Settings
) -> Account:
    """A new link; the previous one stops working in the same transaction.

    As at step 3, a login email that an active account uses meanwhile gets the same answer and
    its holder is warned instead.
    """
    domain.ensure_link_can_be_resent(find_account(registration_id, repo, settings))
    now = clock()
    link = _NewLink(settings, now)

    def attempt(pipe: Pipeline) -> Account:
        account = repo.watch_account(pipe, registration_id)
        if account is None:
            raise NotFound()
        domain.ensure_link_can_be_resent(account)
        holder = _login_holder(pipe, repo, account)
        previous = repo.watch_token(pipe, account.token_hash) if account.token_hash else None
        renewed = replace(
            account,
            status=domain.AWAITING_ACTIVATION,
            token_hash=link.hash,
            token_expires_at=link.expires_at,
        )
        pipe.multi()
        if previous is not None and previous.state == domain.ISSUED:
            repo.set_token_state(pipe, previous.token_hash, domain.REPLACED)
        elif account.token_hash:
            repo.forget_deadline(pipe, account.token_hash)
        repo.save_account(pipe, renewed)
        repo.add_token(pipe, link.record(registration_id))
        repo.publish(pipe, _link_or_warning(link, renewed, holder, "resent", now))
        return renewed

    return repo.transaction(attempt)


# --- step 4 --------------------------------------------------------------------------------------


def _usable(token: str, repo: ActivateRepository, clock: Clock) -> tuple[TokenRecord, Account]:
    """The link's record and its account, or 404 (unknown) / 410 (expired, used, replaced)."""
    if not tokens.plausible(token):
        raise NotFound(domain.UNKNOWN_LINK)
    record = domain.ensure_token_usable(repo.get_token(tokens.token_hash(token)), clock())
    account = domain.ensure_token_is_accounts(
        record, repo.get_account(record.registration_id), tokens.same_hash
    )
    return record, account


def open_activation(token: str, repo: ActivateRepository, clock: Clock) -> Account:
    """What the activation page shows, if the link still works."""
    return _usable(token, repo, clock)[1]


def activate_account(
    token: str,
    password: str,
    password_confirmation: str,
    secret_question: str,
    secret_answer: str,
    repo: ActivateRepository,
    clock: Clock,
    hasher: PasswordHasher,
) -> Account:
    """Step 4: the account becomes active, its user gestionnaire principal. The link is single-use."""
    record, account = _usable(token, repo, clock)
    form = domain.check_activation_form(
        password, password_confirmation, secret_question, secret_answer, domain.personal_data(account)
    )
    # Slow on purpose (argon2id): done before the transaction, which must stay short.
    password_hash = passwords.hash_secret(hasher, form.password)
    answer_hash = passwords.hash_secret(hasher, form.secret_answer)

    def attempt(pipe: Pipeline) -> Account:
        current = domain.ensure_token_usable(repo.watch_token(pipe, record.token_hash), clock())
        account = domain.ensure_token_is_accounts(
            current, repo.watch_account(pipe, current.registration_id), tokens.same_hash
        )
        login = domain.login_key(account.login_email)
        domain.ensure_login_free(account, repo.watch_active_login(pipe, login))
        active = domain.activated(account)
        pipe.multi()
        repo.set_token_state(pipe, current.token_hash, domain.USED)
        repo.save_account(pipe, active)
        repo.save_credentials(pipe, account.registration_id, password_hash, form.secret_question, answer_hash)
        repo.set_active_login(pipe, login, account.registration_id)
        repo.publish(
            pipe,
            new_event(
                "AccountActivated",
                SERVICE,
                account.registration_id,
                {
                    "account_id": active.account_id,
                    "structure_id": active.structure_id,
                    "role": ROLE_PRINCIPAL_MANAGER,
                },
            ),
        )
        return active

    return repo.transaction(attempt)


# --- the sweep -----------------------------------------------------------------------------------


def expire_activation_tokens(repo: ActivateRepository, clock: Clock) -> int:
    """Links past their expiry become `expired` with one ActivationTokenExpired each. Safe to rerun."""
    now = clock()
    expired = 0
    for _ in range(SWEEP_MAX_BATCHES):
        due = repo.due_tokens(now)
        if not due:
            break
        expired += sum(_expire_one(repo, token_hash, now) for token_hash in due)
    return expired


def _expire_one(repo: ActivateRepository, token_hash: str, now: float) -> bool:
    def attempt(pipe: Pipeline) -> bool:
        record = repo.watch_token(pipe, token_hash)
        if record is None or record.state != domain.ISSUED:
            pipe.multi()
            repo.forget_deadline(pipe, token_hash)
            return False
        if domain.token_state(record, now) != domain.TOKEN_EXPIRED:
            pipe.multi()
            return False
        account = repo.watch_account(pipe, record.registration_id)
        lapsed = domain.link_lapsed(account, record, tokens.same_hash)
        pipe.multi()
        repo.set_token_state(pipe, token_hash, domain.TOKEN_EXPIRED)
        if lapsed is None:
            return False
        repo.save_account(pipe, lapsed)
        repo.publish(
            pipe,
            new_event(
                "ActivationTokenExpired",
                SERVICE,
                lapsed.registration_id,
                {"account_id": lapsed.account_id, "token_expires_at": domain.iso_utc(record.expires_at)},
            ),
        )
        return True

    return repo.transaction(attempt)
