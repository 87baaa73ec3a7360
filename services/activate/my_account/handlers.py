"""« Mon compte »'s commands and queries: load, decide with its rules (`domain.py`), record with
the events.

Each takes the signed-in `Session` (sessions/domain.py) and activate's unit of work, with
`uow.accounts`, `uow.credentials`, `uow.active_logins`, `uow.sessions` and `uow.my_account`
(`services.activate.repository.ActivateUnitOfWork`; in the unit tests, the fake one).

Commands that need the current password verify it (argon2id, slow on purpose) before their
transaction, which then reads the stored hash again, guarded: a password changed meanwhile makes
the one verified no longer current, and the command is refused as with a wrong one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from argon2 import PasswordHasher

from services.activate import domain, passwords, tokens
from services.activate.domain import Account, Credentials
from services.activate.my_account import domain as rules
from services.activate.my_account import erasure
from services.activate.my_account.domain import ContactLink, ContactLinkState
from services.activate.sessions.domain import Session
from services.activate.sessions.handlers import end_all_sessions
from services.activate.sign_in import handlers as sign_in_handlers
from services.activate.tokens import LinkMaker
from shared.errors import Invalid, Unauthorized
from shared.unit_of_work import UnitOfWork


def my_account(session: Session, uow: UnitOfWork) -> Account:
    """The signed-in account (401 when it is no longer active)."""
    return rules.ensure_active(uow.accounts.get(session.registration_id))


def _credentials(uow: UnitOfWork, registration_id: str) -> Credentials:
    credentials = uow.credentials.get(registration_id)
    if credentials is None:  # an active account always has them: a session without them is void
        raise Unauthorized()
    return credentials


def _right(hasher: PasswordHasher, credentials: Credentials, current_password: str) -> bool:
    return bool(current_password) and passwords.verify(hasher, credentials.password_hash, current_password)


def _verified(
    hasher: PasswordHasher,
    uow: UnitOfWork,
    account: Account,
    refusal: str,
    errors: dict[str, list[str]],
    current_password: str,
) -> Credentials:
    """The account's credentials, checked against the current password typed; `Invalid` with
    `refusal` when the form has faults or the current password is wrong. A wrong one counts as a
    failed sign-in does against the login email (429 once too many), so that a session left open
    does not let anyone try passwords at will."""
    sign_in_handlers.ensure_login_not_locked(uow, account)
    verified = _credentials(uow, account.registration_id)
    right = _right(hasher, verified, current_password)
    if current_password and not right:
        locked = uow.run(sign_in_handlers.count_password_failure, uow, account)
        if locked is not None:
            raise locked
    problem = rules.refused(refusal, errors, right)
    if problem is not None:
        raise problem
    return verified


def _still_current(uow: UnitOfWork, registration_id: str, verified: Credentials) -> Credentials:
    """Inside the transaction: the credentials again, refused if the password changed since it
    was verified."""
    stored = _credentials(uow, registration_id)
    if stored.password_hash != verified.password_hash:
        raise Invalid.on("current_password", rules.WRONG_CURRENT_PASSWORD)
    return stored


# --- workspaces ---------------------------------------------------------------------------------------


def change_workspaces(session: Session, workspaces: Iterable[str], uow: UnitOfWork) -> Account:
    """The workspaces open from now on; WorkspacesChanged when they changed."""
    codes = list(workspaces)
    domain.kept_workspaces(codes)  # unknown codes refused before any transaction

    def record() -> Account:
        account = my_account(session, uow)
        changed, event = rules.change_workspaces(account, codes)
        if event is not None:
            uow.accounts.save(changed)
            uow.publish(event)
        return changed

    return uow.run(record)


# --- password and secret question ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChangePassword:
    session: Session
    current_password: str = ""
    password: str = ""
    password_confirmation: str = ""


def change_password(cmd: ChangePassword, uow: UnitOfWork, hasher: PasswordHasher) -> Account:
    """A new password (step 4's rules); every other session of the account ends; PasswordChanged."""
    registration_id = cmd.session.registration_id
    account = my_account(cmd.session, uow)
    form = rules.check_password_change(
        cmd.current_password, cmd.password, cmd.password_confirmation, domain.personal_data(account)
    )
    refusal = "Le changement de mot de passe contient des erreurs."
    verified = _verified(hasher, uow, account, refusal, form.errors, form.current_password)
    new_hash = passwords.hash_secret(hasher, form.password)

    def record() -> Account:
        current = my_account(cmd.session, uow)
        stored = _still_current(uow, registration_id, verified)
        uow.credentials.save(registration_id, replace(stored, password_hash=new_hash))
        end_all_sessions(uow, registration_id, keep=cmd.session.session_hash)
        sign_in_handlers.after_password_change(uow, current)
        uow.publish(rules.password_changed(current))
        return current

    return uow.run(record)


@dataclass(frozen=True)
class ChangeSecretQuestion:
    session: Session
    current_password: str = ""
    secret_question: str = ""
    secret_answer: str = ""


def change_secret_question(cmd: ChangeSecretQuestion, uow: UnitOfWork, hasher: PasswordHasher) -> Account:
    """A new secret question and answer (the answer hashed as at step 4)."""
    registration_id = cmd.session.registration_id
    account = my_account(cmd.session, uow)
    form = rules.check_secret_question_change(cmd.current_password, cmd.secret_question, cmd.secret_answer)
    refusal = "Le changement de question secrète contient des erreurs."
    verified = _verified(hasher, uow, account, refusal, form.errors, form.current_password)
    answer_hash = passwords.hash_secret(hasher, form.secret_answer)

    def record() -> Account:
        current = my_account(cmd.session, uow)
        stored = _still_current(uow, registration_id, verified)
        uow.credentials.save(
            registration_id,
            replace(stored, secret_question=form.secret_question, secret_answer_hash=answer_hash),
        )
        return current

    return uow.run(record)


# --- contact email ------------------------------------------------------------------------------------


def request_contact_email_change(
    session: Session, contact_email: str, uow: UnitOfWork, link_maker: LinkMaker
) -> ContactLink:
    """A link to the new address (ContactEmailChangeRequested, the token sealed); the account's
    previous link stops working. The contact email changes only once the link is opened."""
    address = rules.check_contact_email(contact_email, my_account(session, uow))
    link = link_maker.new(uow.clock())

    def record() -> ContactLink:
        account = my_account(session, uow)
        previous_hash = uow.my_account.pending_contact_link(account.registration_id)
        previous = uow.my_account.contact_link(previous_hash) if previous_hash else None
        if previous is not None and previous.state is ContactLinkState.ISSUED:
            uow.my_account.set_contact_link_state(previous, ContactLinkState.REPLACED)
        new, event = rules.new_contact_link(account, address, link)
        uow.my_account.add_contact_link(new)
        uow.publish(event)
        return new

    return uow.run(record)


def _contact_link(token: str, uow: UnitOfWork) -> tuple[ContactLink, Account]:
    """The link and its account, when the link may change the contact email now."""
    if not tokens.plausible(token):
        raise rules.UnknownContactLink()
    link = uow.my_account.contact_link(tokens.token_hash(token))
    account = uow.accounts.get(link.registration_id) if link is not None else None
    return link, rules.ensure_contact_link_opens(link, account, uow.clock())


def open_contact_email_link(token: str, uow: UnitOfWork) -> ContactLink:
    """What the confirmation page shows, if the link still works (404 unknown, 410 dead)."""
    return _contact_link(token, uow)[0]


def confirm_contact_email(token: str, uow: UnitOfWork) -> Account:
    """The contact email becomes the link's address; the link is single-use; ContactEmailChanged."""

    def record() -> Account:
        link, account = _contact_link(token, uow)
        changed, event = rules.confirm_contact_email(account, link)
        uow.accounts.save(changed)
        uow.my_account.set_contact_link_state(link, ContactLinkState.USED)
        uow.publish(event)
        return changed

    return uow.run(record)


# --- deactivation -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeactivateAccount:
    session: Session
    current_password: str = ""


def deactivate_account(cmd: DeactivateAccount, uow: UnitOfWork, hasher: PasswordHasher) -> Account:
    """The account is deactivated: every session ends, its login email is free again,
    AccountDeactivated. A gestionnaire principal is refused (409) before the password is asked."""
    registration_id = cmd.session.registration_id
    account = my_account(cmd.session, uow)
    rules.ensure_can_leave(account)
    current = domain.normalise_password(cmd.current_password)
    missing = {} if current else {"current_password": [rules.MISSING_CURRENT_PASSWORD]}
    refusal = "La désactivation du compte contient des erreurs."
    verified = _verified(hasher, uow, account, refusal, missing, current)

    def record() -> Account:
        account = my_account(cmd.session, uow)
        rules.ensure_can_leave(account)
        _still_current(uow, registration_id, verified)
        return deactivate(uow, account)

    return uow.run(record)


def deactivate(uow: UnitOfWork, account: Account) -> Account:
    """Within the caller's transaction: the account deactivated, its login email free again,
    every session ended, its personal data erased with that of its joined registrations
    (`erasure.erase`), AccountDeactivated (ids only, the registrations erased among them).
    Returns what is kept of the account: its anonymous record."""
    closed, event = rules.deactivate(account)
    login = domain.login_key(account.login_email)
    if rules.holds_login(account, uow.active_logins.owner(login)):
        uow.my_account.release_login(login)
    end_all_sessions(uow, account.registration_id)
    erasure.erase(uow, closed)
    uow.publish(event)
    return rules.anonymised(closed)


def deactivate_on_request(registration_id: str, uow: UnitOfWork) -> Account:
    """An operator's erasure on request (`system.erase`): the same as the holder's deactivation,
    without the password. 404 unless the account is active; a gestionnaire principal is refused
    (409), as on the page."""

    def record() -> Account:
        return deactivate(uow, rules.ensure_erasable(uow.accounts.get(registration_id)))

    return uow.run(record)
