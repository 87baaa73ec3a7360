"""What the « Mon compte » integration tests share: an active account written straight through the
repositories (as step 4 leaves one), a session started for it, the CSRF token of a page."""

from __future__ import annotations

import re
import uuid

from argon2 import PasswordHasher

from services.activate import domain
from services.activate.catalogue import DEFAULT_WORKSPACES, SECRET_QUESTIONS
from services.activate.domain import Account, AccountStatus, Credentials
from services.activate.repository import ActivateUnitOfWork
from services.activate.sessions import handlers as session_handlers
from services.activate.sessions.web import COOKIE
from shared.contracts import Role

PASSWORD = "Ruisseau-Calme-73"
NEW_PASSWORD = "Falaise-Brumeuse-41"
ANSWER = "rex"


def fast_hasher() -> PasswordHasher:
    """argon2id with cheap parameters: the tests hash and verify many times."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def active_account(
    uow: ActivateUnitOfWork,
    hasher: PasswordHasher,
    registration_id: str,
    *,
    login_email: str = "marie.curie@example.fr",
    role: Role = Role.GESTIONNAIRE_PRINCIPAL,
    password: str = PASSWORD,
) -> Account:
    """An active account with its credentials, holding its login email (what step 4 writes)."""
    account = Account(
        registration_id=registration_id,
        account_id=str(uuid.uuid4()),
        structure_id=f"structure-{registration_id}",
        last_name="Curie",
        first_name="Marie",
        login_email=login_email,
        contact_email="contact@example.fr",
        survey_consent=False,
        company_name="CURIE SARL",
        status=AccountStatus.ACTIVE,
        workspaces=DEFAULT_WORKSPACES,
        role=role,
    )
    credentials = Credentials(hasher.hash(password), SECRET_QUESTIONS[0], hasher.hash(ANSWER))

    def write() -> None:
        uow.accounts.save(account)
        uow.credentials.save(registration_id, credentials)
        uow.active_logins.claim(domain.login_key(login_email), registration_id)

    uow.run(write)
    return account


def sign_in(uow: ActivateUnitOfWork, account: Account) -> str:
    """A session for `account`, as the sign-in makes one after the second factor; its id."""
    return uow.run(session_handlers.start_session, uow, account.registration_id, account.account_id)


def signed_in_client(app, session_id: str):
    client = app.test_client()
    client.set_cookie(COOKIE, session_id)
    return client


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(page_html: str) -> str:
    found = CSRF.search(page_html)
    assert found, "no CSRF token on the page"
    return found.group(1)
