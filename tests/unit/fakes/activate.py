"""activate's unit of work on dicts: the same repositories' contract as `services.activate.repository`."""

from __future__ import annotations

from dataclasses import replace

from services.activate import domain
from services.activate.domain import Account, Credentials
from services.activate.links import TokenRecord, TokenState
from services.activate.my_account.domain import ContactLink, ContactLinkState
from services.activate.password_reset.domain import ResetLink
from services.activate.second_factor.domain import PendingEnrolment, SecondFactor
from services.activate.sessions.domain import Session
from services.activate.sign_in.domain import FAILURES_FORGOTTEN_AFTER_SECONDS, Challenge, Failures
from shared.unit_of_work import InMemoryUnitOfWork


class FakeAccounts:
    def __init__(self) -> None:
        self.by_id: dict[str, Account] = {}
        self.erased_at: dict[str, int] = {}

    def get(self, registration_id: str) -> Account | None:
        return self.by_id.get(registration_id)

    def save(self, account: Account) -> None:
        self.by_id[account.registration_id] = account

    def erase(self, anonymous: Account, login_key: str, erased_at: int) -> None:
        """The awaiting index is worked out from the accounts: the anonymous one has no login."""
        self.by_id[anonymous.registration_id] = anonymous
        self.erased_at[anonymous.registration_id] = erased_at

    def registration_of_account(self, account_id: str) -> str | None:
        return next((r for r, a in self.by_id.items() if a.account_id == account_id), None)

    def awaiting_activation(self, login_key: str, limit: int) -> list[str]:
        """What the Redis index holds, worked out from the accounts themselves."""
        awaiting = sorted(
            (
                (account.token_expires_at or 0, registration_id)
                for registration_id, account in self.by_id.items()
                if account.awaits_activation and domain.login_key(account.login_email) == login_key
            ),
            reverse=True,
        )
        return [registration_id for _, registration_id in awaiting[:limit]]


class FakeTokens:
    def __init__(self) -> None:
        self.by_hash: dict[str, TokenRecord] = {}
        self.deadlines: dict[str, int] = {}

    def get(self, token_hash: str) -> TokenRecord | None:
        return self.by_hash.get(token_hash)

    def add(self, record: TokenRecord) -> None:
        self.by_hash[record.token_hash] = record
        self.deadlines[record.token_hash] = record.expires_at

    def set_state(self, token_hash: str, state: TokenState) -> None:
        # Handlers change the state of a link they have just read: it exists.
        self.by_hash[token_hash] = replace(self.by_hash[token_hash], state=state)
        self.forget_deadline(token_hash)

    def forget_deadline(self, token_hash: str) -> None:
        self.deadlines.pop(token_hash, None)

    def due(self, now: float, limit: int = 500) -> list[str]:
        due = sorted((at, token_hash) for token_hash, at in self.deadlines.items() if at <= now)
        return [token_hash for _, token_hash in due[:limit]]


class FakeActiveLogins:
    def __init__(self) -> None:
        self.owners: dict[str, str] = {}

    def owner(self, login_key: str) -> str | None:
        return self.owners.get(login_key)

    def claim(self, login_key: str, registration_id: str) -> None:
        self.owners[login_key] = registration_id


class FakeCredentials:
    def __init__(self) -> None:
        self.by_id: dict[str, Credentials] = {}

    def get(self, registration_id: str) -> Credentials | None:
        return self.by_id.get(registration_id)

    def save(self, registration_id: str, credentials: Credentials) -> None:
        self.by_id[registration_id] = credentials

    def remove(self, registration_id: str) -> None:
        self.by_id.pop(registration_id, None)


class FakeSessions:
    def __init__(self, idle_seconds: int = 1800, max_seconds: int = 43200) -> None:
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.by_hash: dict[str, Session] = {}

    def get(self, session_hash: str) -> Session | None:
        return self.by_hash.get(session_hash)

    def of_account(self, registration_id: str) -> list[str]:
        return sorted(h for h, s in self.by_hash.items() if s.registration_id == registration_id)

    def save(self, session: Session) -> None:
        self.by_hash[session.session_hash] = session

    def end(self, registration_id: str, session_hash: str) -> None:
        self.by_hash.pop(session_hash, None)

    def end_all(self, registration_id: str, *, keep: str | None = None) -> None:
        for session_hash in self.of_account(registration_id):
            if session_hash != keep:
                self.end(registration_id, session_hash)


class FakeMyAccount:
    """« Mon compte »'s repository (`services.activate.my_account.repository`); `released` holds
    the login keys whose active-login entry was deleted."""

    def __init__(self) -> None:
        self.links: dict[str, ContactLink] = {}
        self.pending: dict[str, str] = {}
        self.released: set[str] = set()

    def contact_link(self, token_hash: str) -> ContactLink | None:
        return self.links.get(token_hash)

    def pending_contact_link(self, registration_id: str) -> str | None:
        return self.pending.get(registration_id)

    def add_contact_link(self, link: ContactLink) -> None:
        self.links[link.token_hash] = link
        self.pending[link.registration_id] = link.token_hash

    def set_contact_link_state(self, link: ContactLink, state: ContactLinkState) -> None:
        self.links[link.token_hash] = replace(self.links[link.token_hash], state=state)
        if state is ContactLinkState.USED:
            self.pending.pop(link.registration_id, None)

    def release_login(self, login_key: str) -> None:
        self.released.add(login_key)

    def contact_links_of(self, registration_id: str) -> list[str]:
        return sorted(h for h, link in self.links.items() if link.registration_id == registration_id)

    def erase_contact_links(self, registration_id: str, token_hashes: list[str]) -> None:
        for token_hash in token_hashes:
            self.links.pop(token_hash, None)
        self.pending.pop(registration_id, None)


class FakePasswordResets:
    """« Mot de passe oublié »'s repository (`services.activate.password_reset.repository`): links
    by their token's hash, each account's current one (forgotten past its expiry, as Redis does)."""

    def __init__(self, now) -> None:
        self.now = now
        self.links: dict[str, ResetLink] = {}
        self.current_of: dict[str, str] = {}

    def get(self, token_hash: str) -> ResetLink | None:
        return self.links.get(token_hash)

    def current(self, registration_id: str) -> str | None:
        token_hash = self.current_of.get(registration_id)
        if token_hash is None or self.now() >= self.links[token_hash].expires_at:
            return None
        return token_hash

    def add(self, link: ResetLink) -> None:
        self.links[link.token_hash] = link
        self.current_of[link.registration_id] = link.token_hash

    def save(self, link: ResetLink) -> None:
        self.links[link.token_hash] = link

    def forget_current(self, registration_id: str) -> None:
        self.current_of.pop(registration_id, None)

    def erase(self, registration_id: str, token_hash: str | None) -> None:
        if token_hash:
            self.links.pop(token_hash, None)
        self.forget_current(registration_id)


class FakeSignIns:
    """Sign-in challenges (`services.activate.sign_in.repository.SignInRepository`), gone past
    their deadline as Redis lets them expire."""

    def __init__(self, now) -> None:
        self.now = now
        self.by_hash: dict[str, Challenge] = {}
        self.latest: dict[str, str] = {}

    def get(self, challenge_hash: str) -> Challenge | None:
        challenge = self.by_hash.get(challenge_hash)
        return challenge if challenge is not None and self.now() < challenge.expires_at else None

    def save(self, challenge: Challenge) -> None:
        self.by_hash[challenge.challenge_hash] = challenge

    def latest_of(self, registration_id: str) -> str | None:
        return self.latest.get(registration_id)

    def set_latest(self, challenge: Challenge) -> None:
        self.latest[challenge.registration_id] = challenge.challenge_hash

    def forget_latest(self, registration_id: str, challenge_hash: str | None) -> None:
        if challenge_hash:
            self.by_hash.pop(challenge_hash, None)
        self.latest.pop(registration_id, None)


class FakeSignInFailures:
    """Failures per login email (`SignInFailures`), forgotten when Redis would expire them."""

    def __init__(self, now) -> None:
        self.now = now
        self.by_key: dict[str, tuple[Failures, float]] = {}

    def get(self, throttle_key: str) -> Failures:
        failures, forgotten_at = self.by_key.get(throttle_key, (Failures(), 0))
        return failures if self.now() < forgotten_at else Failures()

    def save(self, throttle_key: str, failures: Failures, now: float) -> None:
        forgotten_at = max(int(now) + FAILURES_FORGOTTEN_AFTER_SECONDS, failures.locked_until)
        self.by_key[throttle_key] = (failures, forgotten_at)

    def forget(self, throttle_key: str) -> None:
        self.by_key.pop(throttle_key, None)


class FakeSecondFactors:
    """Authenticator apps and pending enrolments (`SecondFactorRepository`)."""

    def __init__(self, now) -> None:
        self.now = now
        self.by_id: dict[str, SecondFactor] = {}
        self.pending_by_id: dict[str, PendingEnrolment] = {}

    def get(self, registration_id: str) -> SecondFactor | None:
        return self.by_id.get(registration_id)

    def save(self, factor: SecondFactor) -> None:
        self.by_id[factor.registration_id] = factor

    def remove(self, registration_id: str) -> None:
        self.by_id.pop(registration_id, None)
        self.pending_by_id.pop(registration_id, None)

    def pending(self, registration_id: str) -> PendingEnrolment | None:
        pending = self.pending_by_id.get(registration_id)
        return pending if pending is not None and self.now() < pending.expires_at else None

    def save_pending(self, pending: PendingEnrolment) -> None:
        self.pending_by_id[pending.registration_id] = pending

    def drop_pending(self, registration_id: str) -> None:
        self.pending_by_id.pop(registration_id, None)


class FakeApprovals:
    """Attachment requests and structures' managers and members (`approvals/repository.py`)."""

    def __init__(self) -> None:
        self.requests: dict[str, str] = {}
        self.pending_by_structure: dict[str, dict[str, int]] = {}
        self.deadlines: dict[str, int] = {}
        self.managers: dict[str, str] = {}
        self.members_by_structure: dict[str, set[str]] = {}

    def request_of(self, attachment_request_id: str) -> str | None:
        return self.requests.get(attachment_request_id)

    def add_request(self, attachment_request_id: str, registration_id: str, expires_at: int) -> None:
        self.requests[attachment_request_id] = registration_id
        self.deadlines[registration_id] = expires_at

    def submit(self, structure_id: str, registration_id: str, requested_at: int) -> None:
        self.pending_by_structure.setdefault(structure_id, {})[registration_id] = requested_at

    def close(self, structure_id: str, registration_id: str, attachment_request_id: str) -> None:
        self.pending_by_structure.get(structure_id, {}).pop(registration_id, None)
        self.deadlines.pop(registration_id, None)

    def pending(self, structure_id: str, limit: int) -> list[str]:
        waiting = self.pending_by_structure.get(structure_id, {})
        return [r for _, r in sorted((at, r) for r, at in waiting.items())][:limit]

    def due(self, now: float, limit: int = 500) -> list[str]:
        return [r for at, r in sorted((at, r) for r, at in self.deadlines.items()) if at <= now][:limit]

    def forget_deadline(self, registration_id: str) -> None:
        self.deadlines.pop(registration_id, None)

    def manager_of(self, structure_id: str) -> str | None:
        return self.managers.get(structure_id)

    def set_manager(self, structure_id: str, registration_id: str) -> None:
        self.managers[structure_id] = registration_id

    def members(self, structure_id: str) -> list[str]:
        return sorted(self.members_by_structure.get(structure_id, set()))

    def add_member(self, structure_id: str, registration_id: str) -> None:
        self.members_by_structure.setdefault(structure_id, set()).add(registration_id)

    def remove_member(self, structure_id: str, registration_id: str) -> None:
        self.members_by_structure.get(structure_id, set()).discard(registration_id)


class FakeActivateUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, clock=None) -> None:
        super().__init__(clock, "activate")
        self.sign_ins = FakeSignIns(lambda: self.clock())
        self.sign_in_failures = FakeSignInFailures(lambda: self.clock())
        self.second_factors = FakeSecondFactors(lambda: self.clock())
        self.accounts = FakeAccounts()
        self.tokens = FakeTokens()
        self.active_logins = FakeActiveLogins()
        self.credentials = FakeCredentials()
        self.sessions = FakeSessions()
        self.my_account = FakeMyAccount()
        self.approvals = FakeApprovals()
        self.password_resets = FakePasswordResets(lambda: self.clock())
