"""« Mot de passe oublié »: request a link by login email, open it, reset the password with it.

Each takes activate's unit of work with `uow.password_resets` (repository.py);
the same code runs on Redis and, in the unit tests, on dicts. The token exists in clear only
while `tokens.LinkMaker.new` makes it and when `open_password_reset`/`reset_password` are given
it: it is stored as its SHA-256 and travels sealed inside PasswordResetRequested.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher

from services.activate import domain, passwords, tokens
from services.activate.domain import Account, Credentials, NewLink
from services.activate.password_reset import domain as password_resets
from services.activate.password_reset.domain import (
    GoneReason,
    RefusedReset,
    ResetLink,
    ResetLinkGone,
    ResetPage,
)
from services.activate.sessions import handlers as session_handlers
from services.activate.sign_in import handlers as sign_in_handlers
from services.activate.tokens import LinkMaker
from shared.errors import Invalid
from shared.unit_of_work import UnitOfWork

NOBODY = ""
"""Read in place of a registration id when there is none: keys that do not exist, so that an
unknown email costs the same reads as an active account's."""


# --- the request ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestPasswordReset:
    login_email: str


def request_password_reset(cmd: RequestPasswordReset, uow: UnitOfWork, link_maker: LinkMaker) -> bool:
    """A link for the active account that uses the login email typed, if any; its previous link
    stops working. Returns whether a link went out, for the tests: never for the answer.

    Whatever the email, the same work: a token made and sealed, one transaction reading who holds
    the login and that account (an unknown email reads keys that do not exist); only the writes of
    a link that goes out differ, sent in the same round trip as the empty commit of the others."""
    login = domain.requested_login(cmd.login_email)
    link = link_maker.new(uow.clock())
    return uow.run(_issue, uow, login, link)


def _issue(uow: UnitOfWork, login: str, link: NewLink) -> bool:
    owner = uow.active_logins.owner(login) or NOBODY
    account = uow.accounts.get(owner)
    if not password_resets.may_reset(account):
        return False
    record, requested = password_resets.issue(account, link)
    uow.password_resets.add(record)
    uow.publish(requested)
    return True


# --- the link ------------------------------------------------------------------------------------


def open_password_reset(token: str, uow: UnitOfWork) -> ResetPage:
    """What the link's page shows (the secret question), if the link still opens."""
    _, account, credentials = _opened(uow, _hash_of(token))
    return password_resets.page_of(account, credentials)


def _hash_of(token: str) -> str:
    if not tokens.plausible(token):
        raise ResetLinkGone(GoneReason.UNKNOWN)
    return tokens.token_hash(token)


def _opened(
    uow: UnitOfWork, token_hash: str, *, counting_answers: bool = True
) -> tuple[ResetLink, Account, Credentials]:
    """The link, its account and their credentials, read (guarded inside `run`), when it opens."""
    link = uow.password_resets.get(token_hash)
    registration_id = link.registration_id if link is not None else NOBODY
    account = uow.accounts.get(registration_id)
    current = uow.password_resets.current(registration_id)
    credentials = uow.credentials.get(registration_id)
    return password_resets.ensure_link_opens(
        link, account, current, credentials, uow.clock(), tokens.same_hash, counting_answers=counting_answers
    )


# --- the reset -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResetPassword:
    token: str
    secret_answer: str = ""
    password: str = ""
    password_confirmation: str = ""


def reset_password(cmd: ResetPassword, uow: UnitOfWork, hasher: PasswordHasher) -> Account:
    """The new password, when the link opens and the answer is right; every session of the account
    ends, PasswordChanged goes out, the link is spent: one transaction.

    1. the link must open (410 otherwise), then the form must hold (422, nothing counted): the
       new password as at step 4, its confirmation, an answer;
    2. one transaction counts the answer (410 once MAX_ANSWERS were counted);
    3. the answer is compared (argon2, slow on purpose, outside any transaction): wrong, 422 on
       `secret_answer` with the tries left;
    4. the new password is hashed, then one transaction reads the link again (guarded: whatever
       committed during the hashing, such as a newer link, is seen) and records the change."""
    token_hash = _hash_of(cmd.token)
    _, account, credentials = _opened(uow, token_hash)
    try:
        form = password_resets.check_reset_form(
            cmd.password, cmd.password_confirmation, cmd.secret_answer, domain.personal_data(account)
        )
    except Invalid as refused:
        raise RefusedReset(refused, password_resets.page_of(account, credentials)) from None
    counted, account, credentials = uow.run(_count_answer, uow, token_hash)
    verified = credentials.secret_answer_hash
    right, upgraded = passwords.verify_and_update(hasher, verified, form.secret_answer)
    if not right:
        raise password_resets.wrong_answer(counted, password_resets.page_of(account, credentials))
    password_hash = passwords.hash_secret(hasher, form.password)
    return uow.run(_record_reset, uow, token_hash, password_hash, verified, upgraded)


def _count_answer(uow: UnitOfWork, token_hash: str) -> tuple[ResetLink, Account, Credentials]:
    link, account, credentials = _opened(uow, token_hash)
    counted = password_resets.one_more_answer(link)
    uow.password_resets.save(counted)
    return counted, account, credentials


def _record_reset(
    uow: UnitOfWork, token_hash: str, password_hash: str, verified: str, upgraded: str | None
) -> Account:
    link, account, credentials = _opened(uow, token_hash, counting_answers=False)
    answer_hash = password_resets.kept_answer_hash(credentials.secret_answer_hash, verified, upgraded)
    spent, changed, event = password_resets.reset(link, account, credentials, password_hash, answer_hash)
    uow.password_resets.save(spent)
    uow.password_resets.forget_current(account.registration_id)
    uow.credentials.save(account.registration_id, changed)
    session_handlers.end_all_sessions(uow, account.registration_id)
    sign_in_handlers.after_password_change(uow, account)
    uow.publish(event)
    return account
