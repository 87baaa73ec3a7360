"""« Mot de passe oublié »'s JSON API: parse, call a handler, shape the answer.

The functions at the top are the one way the views and the pages (`pages.py`)
call the handlers, with the wiring of the app at hand.
"""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.activate.bootstrap import Activate
from services.activate.domain import Account
from services.activate.password_reset import handlers
from services.activate.password_reset.domain import (
    PASSWORD_CHANGED,
    RESET_REQUESTED,
    ResetLinkGone,
    ResetPage,
)
from services.activate.password_reset.schemas import (
    PasswordResetDoneSchema,
    PasswordResetPageSchema,
    PasswordResetRequestedSchema,
    PasswordResetRequestSchema,
    ResetLinkGoneSchema,
    ResetPasswordSchema,
)
from services.activate.repository import ActivateUnitOfWork
from shared.bootstrap import wiring_of
from shared.http_api import error_response

blp = Blueprint(
    "password_resets",
    __name__,
    url_prefix="/activate/api",
    description="Mot de passe oublié : lien par courriel, question secrète, nouveau mot de passe",
)


def wiring() -> Activate:
    return wiring_of()


def unit_of_work() -> ActivateUnitOfWork:
    return wiring().uow()


def request_reset(login_email: str) -> None:
    """A link for the active account that uses `login_email`, if any: the caller learns nothing."""
    command = handlers.RequestPasswordReset(login_email)
    handlers.request_password_reset(command, unit_of_work(), wiring().password_reset_links)


def open_link(token: str) -> ResetPage:
    return handlers.open_password_reset(token, unit_of_work())


def reset(command: handlers.ResetPassword) -> Account:
    return handlers.reset_password(command, unit_of_work(), wiring().hasher)


@blp.after_request
def _private(response):
    """The links' URLs hold a secret, the answers a secret question: never cached."""
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.errorhandler(ResetLinkGone)
def _gone(error: ResetLinkGone):
    """410 like every error answer, plus why (`reason`); never the account."""
    return error_response(error.status, error.message, extra={"reason": error.reason})


@blp.route("/password-resets")
class PasswordResets(MethodView):
    @blp.arguments(PasswordResetRequestSchema)
    @blp.response(202, PasswordResetRequestedSchema)
    def post(self, body):
        """A link to choose a new password, emailed when an active account uses this login email
        (its previous link stops working); the same answer whatever the email."""
        request_reset(body["login_email"])
        return {"status": "accepted", "message": RESET_REQUESTED}


@blp.route("/password-resets/<token>")
class PasswordReset(MethodView):
    @blp.response(200, PasswordResetPageSchema)
    @blp.alt_response(
        410, schema=ResetLinkGoneSchema, description="Lien expiré, utilisé, remplacé ou inconnu"
    )
    def get(self, token):
        """The secret question the link's page asks."""
        return {"secret_question": open_link(token).secret_question}

    @blp.arguments(ResetPasswordSchema)
    @blp.response(200, PasswordResetDoneSchema)
    @blp.alt_response(
        410, schema=ResetLinkGoneSchema, description="Lien expiré, utilisé, remplacé ou inconnu"
    )
    def post(self, body, token):
        """The answer and the new password: every session of the account ends; 422 on
        `secret_answer` for a wrong answer (5 kill the link)."""
        reset(handlers.ResetPassword(token, **body))
        return {"status": "changed", "message": PASSWORD_CHANGED}
