"""« Mon compte »'s JSON API: parse, call a handler with the signed-in session, shape the answer.

Every path under `/activate/api/me` needs a live session (401 without); the confirmation of a
new contact email (`/activate/api/contact-emails/{token}`) needs only its link. The functions at
the top are also what the pages (`pages.py`) call. Signing out, everywhere too, is sign-in's
(`POST /activate/api/sign-out`, sign_in/api.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from flask import Response, make_response
from flask.views import MethodView
from flask_smorest import Blueprint

from services.activate.bootstrap import Activate
from services.activate.domain import Account
from services.activate.my_account import handlers
from services.activate.my_account.domain import ContactLink, ContactLinkGone
from services.activate.my_account.schemas import (
    ContactEmailConfirmedSchema,
    ContactLinkGoneSchema,
    MeSchema,
    MyAccountDoneSchema,
    MyContactEmailRequestedSchema,
    MyContactEmailRequestSchema,
    MyDeactivationSchema,
    MyPasswordChangeSchema,
    MySecretQuestionChangeSchema,
    MyWorkspacesChangeSchema,
    MyWorkspacesSchema,
)
from services.activate.repository import ActivateUnitOfWork
from services.activate.sessions import web as session_web
from services.activate.sessions.domain import Session
from shared.bootstrap import wiring_of
from shared.http_api import error_response

blp = Blueprint(
    "activate_me",
    __name__,
    url_prefix="/activate/api",
    description="« Mon compte » : le compte connecté, ses espaces, son mot de passe, sa question secrète, "
    "son adresse de contact, sa désactivation",
)
session_web.guard_cookie_api(blp, session_paths="/activate/api/me")

NO_SESSION = "Pas de session, ou elle a pris fin : connectez-vous."
BAD_PASSWORD = "Le mot de passe actuel est incorrect, ou le formulaire contient des erreurs."


def wiring() -> Activate:
    return wiring_of()


def uow() -> ActivateUnitOfWork:
    return wiring().uow()


def session() -> Session:
    """The request's live session (401 without)."""
    return session_web.current_session()


# --- what the API and the pages call ----------------------------------------------------------------


def me() -> Account:
    return handlers.my_account(session(), uow())


def change_workspaces(workspaces: Iterable[str]) -> Account:
    return handlers.change_workspaces(session(), workspaces, uow())


def change_password(current_password: str, password: str, password_confirmation: str) -> Account:
    command = handlers.ChangePassword(session(), current_password, password, password_confirmation)
    return handlers.change_password(command, uow(), wiring().hasher)


def change_secret_question(current_password: str, secret_question: str, secret_answer: str) -> Account:
    command = handlers.ChangeSecretQuestion(session(), current_password, secret_question, secret_answer)
    return handlers.change_secret_question(command, uow(), wiring().hasher)


def request_contact_email(contact_email: str) -> ContactLink:
    links = wiring().contact_email_links
    return handlers.request_contact_email_change(session(), contact_email, uow(), links)


def open_contact_link(token: str) -> ContactLink:
    return handlers.open_contact_email_link(token, uow())


def confirm_contact_email(token: str) -> Account:
    return handlers.confirm_contact_email(token, uow())


def deactivate(current_password: str) -> Account:
    command = handlers.DeactivateAccount(session(), current_password)
    return handlers.deactivate_account(command, uow(), wiring().hasher)


def signed_out(response: Response) -> Response:
    """The answer with the session's cookie cleared."""
    return session_web.clear_session_cookie(response, wiring().settings)


def account_view(account: Account) -> dict[str, object]:
    return {
        "account_id": account.account_id,
        "login_email": account.login_email,
        "contact_email": account.contact_email,
        "last_name": account.last_name,
        "first_name": account.first_name,
        "structures": account.structures_view(),
        "company_name": account.company_name,
        "workspaces": list(account.workspaces),
    }


# --- the JSON API -------------------------------------------------------------------------------------


@blp.after_request
def _private(response):
    """Personal data, and confirmation URLs hold a secret: out of every cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.errorhandler(ContactLinkGone)
def _contact_link_gone(error: ContactLinkGone):
    return error_response(error.status, error.message, extra={"reason": error.reason})


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeSchema)
    @blp.alt_response(401, description=NO_SESSION)
    def get(self):
        """The signed-in account, its structure and role, its workspaces."""
        return account_view(me())


@blp.route("/me/workspaces")
class MyWorkspaces(MethodView):
    @blp.arguments(MyWorkspacesChangeSchema)
    @blp.response(200, MyWorkspacesSchema)
    @blp.alt_response(401, description=NO_SESSION)
    def put(self, body):
        """The workspaces open from now on (step 3's catalogue); event WorkspacesChanged."""
        return {"workspaces": list(change_workspaces(body["workspaces"]).workspaces)}


@blp.route("/me/password")
class MyPassword(MethodView):
    @blp.arguments(MyPasswordChangeSchema)
    @blp.response(200, MyAccountDoneSchema)
    @blp.alt_response(401, description=NO_SESSION)
    @blp.alt_response(429, description="Trop de tentatives : réessayez après Retry-After secondes.")
    def post(self, body):
        """A new password (step 4's rules), the current one given (422 on `current_password` when
        wrong); every other session of the account ends; event PasswordChanged."""
        change_password(**body)
        return {"status": "changed"}


@blp.route("/me/secret-question")
class MySecretQuestion(MethodView):
    @blp.arguments(MySecretQuestionChangeSchema)
    @blp.response(200, MyAccountDoneSchema)
    @blp.alt_response(401, description=NO_SESSION)
    @blp.alt_response(429, description="Trop de tentatives : réessayez après Retry-After secondes.")
    def post(self, body):
        """A new secret question (one of step 4's) and answer, the current password given."""
        change_secret_question(**body)
        return {"status": "changed"}


@blp.route("/me/contact-email")
class MyContactEmail(MethodView):
    @blp.arguments(MyContactEmailRequestSchema)
    @blp.response(202, MyContactEmailRequestedSchema)
    @blp.alt_response(401, description=NO_SESSION)
    @blp.alt_response(429, description="Trop de demandes : réessayez après Retry-After secondes.")
    def post(self, body):
        """A confirmation link is emailed to the new address (valid 24 hours; a new request voids
        the previous link); the contact email changes once it is opened."""
        link = request_contact_email(body["contact_email"])
        expires_at = datetime.fromtimestamp(link.expires_at, UTC)
        return {"status": "sent", "contact_email": link.contact_email, "expires_at": expires_at}


@blp.route("/contact-emails/<token>")
class ContactEmailConfirmation(MethodView):
    @blp.response(200, ContactEmailConfirmedSchema)
    @blp.alt_response(410, schema=ContactLinkGoneSchema, description="Lien utilisé, remplacé ou expiré")
    def post(self, token):
        """The link emailed to the new address: the contact email becomes it (single use); event
        ContactEmailChanged. No session needed: the link is the proof."""
        return {"contact_email": confirm_contact_email(token).contact_email}


@blp.route("/me/deactivation")
class Deactivation(MethodView):
    @blp.arguments(MyDeactivationSchema)
    @blp.response(200, MyAccountDoneSchema)
    @blp.alt_response(401, description=NO_SESSION)
    @blp.alt_response(409, description="Le gestionnaire principal d'une structure ne peut pas la quitter.")
    @blp.alt_response(429, description="Trop de tentatives : réessayez après Retry-After secondes.")
    def post(self, body):
        """The account is deactivated, the current password given: every session ends, the cookie
        is cleared, the login email is free again, the personal data is erased (names, emails,
        password, secret question; docs/privacy.md); event AccountDeactivated (ids only)."""
        closed = deactivate(body["current_password"])
        return signed_out(make_response({"status": closed.status}, 200))
