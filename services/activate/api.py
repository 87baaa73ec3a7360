"""activate's JSON API: parse, call a handler, shape the answer."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from services.activate import domain, handlers
from services.activate.schemas import (
    AccountCreatedSchema,
    ActivatedSchema,
    ActivateSchema,
    ActivationPageSchema,
    ChooseWorkspacesSchema,
    LinkSentSchema,
    TokenGoneSchema,
    WorkspacesPageSchema,
)

blp = Blueprint(
    "activate",
    __name__,
    url_prefix="/activate/api",
    description="Étapes 3 et 4 : espaces de travail, activation",
)


def _deps():
    return current_app.extensions["activate"]


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
        deps = _deps()
        account = handlers.find_account(registration_id, deps.repo, deps.settings)
        return {
            "registration_id": registration_id,
            "first_name": account.first_name,
            "last_name": account.last_name,
            "login_email": account.login_email,
            "status": account.status,
            "workspaces": domain.WORKSPACES,
        }

    @blp.arguments(ChooseWorkspacesSchema)
    @blp.response(201, AccountCreatedSchema)
    def post(self, body, registration_id):
        """Step 3: open the chosen workspaces; the activation email goes out."""
        deps = _deps()
        account = handlers.choose_workspaces(
            registration_id, body["workspaces"], deps.repo, deps.clock, deps.settings
        )
        return {"account_id": account.account_id}


@blp.route("/registrations/<registration_id>/activation-email")
class ActivationEmail(MethodView):
    @blp.response(202, LinkSentSchema)
    def post(self, registration_id):
        """Send a new activation link; the previous one stops working."""
        deps = _deps()
        handlers.resend_activation_link(registration_id, deps.repo, deps.clock, deps.settings)
        return {"status": "sent"}


@blp.route("/activations/<token>")
class Activation(MethodView):
    @blp.response(200, ActivationPageSchema)
    @blp.alt_response(410, schema=TokenGoneSchema, description="Lien expiré, déjà utilisé ou remplacé")
    def get(self, token):
        """What the activation page shows."""
        deps = _deps()
        account = handlers.open_activation(token, deps.repo, deps.clock)
        return {
            "login_email": account.login_email,
            "contact_email": account.contact_email,
            "last_name": account.last_name,
            "first_name": account.first_name,
            "secret_questions": domain.SECRET_QUESTIONS,
        }

    @blp.arguments(ActivateSchema)
    @blp.response(200, ActivatedSchema)
    @blp.alt_response(410, schema=TokenGoneSchema, description="Lien expiré, déjà utilisé ou remplacé")
    def post(self, body, token):
        """Step 4: password and secret question; the account becomes active."""
        deps = _deps()
        account = handlers.activate_account(
            token, **body, repo=deps.repo, clock=deps.clock, hasher=deps.hasher
        )
        return {
            "status": account.status,
            "role": account.role,
            "structure_id": account.structure_id,
            "account_id": account.account_id,
        }
