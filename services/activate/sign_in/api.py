"""Sign-in's JSON API: the password, the second factor, signing out. The functions at the top are
also what the pages (`pages.py`) call.

The session's cookie is set on the answer that starts the session (a new id each time) and
cleared on sign-out; see `sessions/web.py`.
"""

from __future__ import annotations

from flask import Response, after_this_request
from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.error_handler import ErrorSchema

from services.activate.bootstrap import Activate
from services.activate.sessions import web as session_web
from services.activate.sign_in import handlers as sign_in_handlers
from services.activate.sign_in.domain import Method
from services.activate.sign_in.handlers import EnterCode, Opened, SignedInAs, SignIn
from services.activate.sign_in.schemas import (
    ChallengeSchema,
    CodeSchema,
    SignedInSchema,
    SignInSchema,
    SignOutQuerySchema,
)
from shared.bootstrap import wiring_of
from shared.timestamps import iso_utc

RETRY_AFTER = {"Retry-After": {"description": "Secondes à attendre", "schema": {"type": "integer"}}}
LOCKED = "Trop d'échecs pour cette adresse : connexion suspendue pendant Retry-After secondes."

blp = Blueprint(
    "activate_sign_in",
    __name__,
    url_prefix="/activate/api",
    description="Connexion : mot de passe, puis second facteur (code reçu par courriel, application "
    "d'authentification ou code de secours) ; déconnexion",
)
session_web.guard_cookie_api(blp)


# --- what the API and the pages call ----------------------------------------------------------------


def wiring() -> Activate:
    return wiring_of()


def sign_in(login_email: str, password: str, method: str | None = None) -> Opened:
    w = wiring()
    command = SignIn(login_email, password, Method(method) if method else None)
    return sign_in_handlers.sign_in_with_password(command, w.uow(), w.sign_in_deps)


def enter_code(challenge_id: str, code: str) -> SignedInAs:
    """The second factor; the answer to the request will carry the new session's cookie. A session
    this browser had before (its cookie is replaced) ends: it would otherwise live on unseen."""
    w = wiring()
    signed = sign_in_handlers.enter_code(EnterCode(challenge_id, code), w.uow(), w.sign_in_deps)
    sign_in_handlers.sign_out(session_web.session_id(), w.uow())
    settings = w.settings

    @after_this_request
    def _cookie(response: Response) -> Response:
        return session_web.set_session_cookie(response, signed.session_id, settings)

    return signed


def sign_out(everywhere: bool = False) -> None:
    """This session ends (or, `everywhere`, every session of the account: 401 without a live one);
    the answer will clear the cookie."""
    w = wiring()
    if everywhere:
        sign_in_handlers.sign_out_everywhere(session_web.current_session(), w.uow())
    else:
        sign_in_handlers.sign_out(session_web.session_id(), w.uow())
    settings = w.settings

    @after_this_request
    def _cookie(response: Response) -> Response:
        return session_web.clear_session_cookie(response, settings)


def signed_in_view(signed: SignedInAs) -> dict[str, object]:
    account = signed.account
    return {
        "account_id": account.account_id,
        "role": account.role,
        "structures": account.structures_view(),
    }


@blp.after_request
def _private(response):
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the JSON API -------------------------------------------------------------------------------------


@blp.route("/sign-in")
class SignInPassword(MethodView):
    @blp.arguments(SignInSchema)
    @blp.response(200, ChallengeSchema)
    @blp.alt_response(401, schema=ErrorSchema, description="Adresse ou mot de passe incorrect (même réponse)")
    @blp.alt_response(429, schema=ErrorSchema, headers=RETRY_AFTER, description=LOCKED)
    def post(self, body):
        """The login email and password: a challenge opens for the second factor. Without an
        authenticator app (or with `method: email_code`), a 6-digit code goes to the login email.
        An unknown email, a wrong password and an account that is not active get the same 401."""
        opened = sign_in(body["login_email"], body["password"], body["method"])
        return {
            "challenge_id": opened.challenge_id,
            "methods": list(opened.methods),
            "email_code_sent": opened.email_code_sent,
            "expires_at": iso_utc(opened.expires_at),
        }


@blp.route("/sign-in/<challenge_id>")
class SignInCode(MethodView):
    @blp.arguments(CodeSchema)
    @blp.response(200, SignedInSchema)
    @blp.alt_response(401, schema=ErrorSchema, description="Code incorrect (5 essais par demande)")
    @blp.alt_response(410, schema=ErrorSchema, description="Demande inconnue, expirée, utilisée ou remplacée")
    @blp.alt_response(429, schema=ErrorSchema, headers=RETRY_AFTER, description=LOCKED)
    def post(self, body, challenge_id):
        """The second factor: the emailed code, the authenticator app's code or a recovery code.
        The session starts: its cookie comes with the answer."""
        return signed_in_view(enter_code(challenge_id, body["code"]))


@blp.route("/sign-out")
class SignOut(MethodView):
    @blp.arguments(SignOutQuerySchema, location="query")
    @blp.response(204)
    @blp.alt_response(401, schema=ErrorSchema, description="`everywhere` sans session")
    def post(self, query):
        """This session ends and its cookie is cleared; with `?everywhere=1` (« se déconnecter
        partout »), every session of the account ends."""
        sign_out(everywhere=query["everywhere"])
