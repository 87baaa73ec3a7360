"""activate's JSON API: parse, call a handler, shape the answer.

The functions at the top are the one way the views and the pages (`pages.py`) call the
handlers, with the wiring of the app at hand.
"""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.activate import handlers
from services.activate.bootstrap import Activate
from services.activate.catalogue import SECRET_QUESTIONS, WORKSPACES
from services.activate.domain import Account, AccountStatus
from services.activate.links import LINK_REQUESTED, NextStep, TokenGone
from services.activate.schemas import (
    AccountCreatedSchema,
    ActivatedSchema,
    ActivateSchema,
    ActivationPageSchema,
    ChooseWorkspacesSchema,
    LinkRequestedSchema,
    LinkRequestSchema,
    LinkSentSchema,
    TokenGoneSchema,
    WorkspacesPageSchema,
)
from shared.bootstrap import wiring_of

blp = Blueprint(
    "activate",
    __name__,
    url_prefix="/activate/api",
    description="Étapes 3 et 4 : espaces de travail, activation",
)


def wiring() -> Activate:
    return wiring_of()


def account(registration_id: str) -> Account:
    w = wiring()
    return handlers.find_account(registration_id, w.uow(), w.structures)


def choose(command: handlers.ChooseWorkspaces) -> Account:
    w = wiring()
    return handlers.choose_workspaces(command, w.uow(), w.links, w.structures)


def resend(registration_id: str) -> Account:
    w = wiring()
    return handlers.resend_activation_link(registration_id, w.uow(), w.links, w.structures)


def request_link(login_email: str) -> None:
    """A new link for the account awaiting activation with `login_email`, if any: the caller
    learns nothing of the outcome."""
    w = wiring()
    handlers.request_activation_link(handlers.RequestActivationLink(login_email), w.uow(), w.links)


def open_link(token: str) -> Account:
    return handlers.open_activation(token, wiring().uow())


def joins_an_active_account(account: Account) -> bool:
    return handlers.joins_an_active_account(account, wiring().uow())


def after_dead_link(gone: TokenGone) -> NextStep:
    return handlers.after_dead_link(gone, wiring().uow())


def activate(command: handlers.ActivateAccount) -> Account:
    w = wiring()
    return handlers.activate_account(command, w.uow(), w.hasher)


@blp.after_request
def _private(response):
    """Answers hold personal data, and activation URLs hold a secret: keep both out of caches
    (`shared.web` already keeps the URL out of Referer headers)."""
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/registrations/<registration_id>/workspaces")
class Workspaces(MethodView):
    @blp.response(200, WorkspacesPageSchema)
    def get(self, registration_id):
        """The workspaces offered, with the person's name and login email."""
        found = account(registration_id)
        return {
            "registration_id": registration_id,
            "first_name": found.first_name,
            "last_name": found.last_name,
            "login_email": found.login_email,
            "status": found.status,
            "workspaces": WORKSPACES,
        }

    @blp.arguments(ChooseWorkspacesSchema)
    @blp.response(201, AccountCreatedSchema)
    def post(self, body, registration_id):
        """Step 3: open the chosen workspaces; the activation email goes out."""
        chosen = choose(handlers.ChooseWorkspaces(registration_id, body["workspaces"]))
        return {"account_id": chosen.account_id}


@blp.route("/registrations/<registration_id>/activation-email")
class ActivationEmail(MethodView):
    @blp.response(202, LinkSentSchema)
    def post(self, registration_id):
        """Send a new activation link; the previous one stops working."""
        resend(registration_id)
        return {"status": "sent"}


@blp.route("/activation-links")
class ActivationLinks(MethodView):
    @blp.arguments(LinkRequestSchema)
    @blp.response(202, LinkRequestedSchema)
    def post(self, body):
        """A new link for the account awaiting activation with this login email, if there is one
        (the previous link stops working); the same answer whatever the email."""
        request_link(body["login_email"])
        return {"status": "accepted", "message": LINK_REQUESTED}


@blp.route("/activations/<token>")
class Activation(MethodView):
    @blp.response(200, ActivationPageSchema)
    @blp.alt_response(410, schema=TokenGoneSchema, description="Lien expiré, déjà utilisé ou remplacé")
    def get(self, token):
        """What the activation page shows."""
        found = open_link(token)
        return {
            "login_email": found.login_email,
            "contact_email": found.contact_email,
            "last_name": found.last_name,
            "first_name": found.first_name,
            "secret_questions": SECRET_QUESTIONS,
            "existing_account": joins_an_active_account(found),
        }

    @blp.arguments(ActivateSchema)
    @blp.response(200, ActivatedSchema)
    @blp.alt_response(410, schema=TokenGoneSchema, description="Lien expiré, déjà utilisé ou remplacé")
    def post(self, body, token):
        """Step 4: password and secret question; the account becomes active. For an approved
        attachment request whose login email already has an active account (`existing_account`
        on the GET), only `password`, that account's: it joins the structure."""
        active = activate(handlers.ActivateAccount(token, **body))
        return {
            "status": AccountStatus.ACTIVE if active.status is AccountStatus.JOINED else active.status,
            "role": active.role,
            "structure_id": active.structure_id,
            "account_id": active.account_id,
        }
