"""The authenticator app's JSON API, for the signed-in (401 without a live session). The functions
at the top are also what the page (`pages.py`) calls."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.error_handler import ErrorSchema

from services.activate.bootstrap import Activate
from services.activate.second_factor import handlers
from services.activate.second_factor.handlers import Enrolment, Standing
from services.activate.second_factor.schemas import (
    CurrentPasswordSchema,
    EnrolmentSchema,
    RecoveryCodesSchema,
    SecondFactorStandingSchema,
)
from services.activate.sessions import web as session_web
from services.activate.sign_in.api import LOCKED, RETRY_AFTER
from services.activate.sign_in.schemas import CodeSchema
from shared.bootstrap import wiring_of
from shared.timestamps import iso_utc

NO_SESSION = "Pas de session, ou elle a pris fin : connectez-vous."

blp = Blueprint(
    "activate_second_factor",
    __name__,
    url_prefix="/activate/api",
    description="Sécurité du compte : l'application d'authentification (TOTP) et ses codes de secours",
)
session_web.guard_cookie_api(blp, session_paths="/activate/api/me")


def wiring() -> Activate:
    return wiring_of()


def standing() -> Standing:
    w = wiring()
    return handlers.standing(session_web.current_session(), w.uow(), w.sign_in_deps)


def start() -> Enrolment:
    w = wiring()
    return handlers.start_enrolment(session_web.current_session(), w.uow(), w.sign_in_deps)


def confirm(code: str) -> list[str]:
    w = wiring()
    return handlers.confirm_enrolment(session_web.current_session(), code, w.uow(), w.sign_in_deps)


def remove(current_password: str) -> None:
    w = wiring()
    handlers.remove_second_factor(session_web.current_session(), current_password, w.uow(), w.sign_in_deps)


@blp.after_request
def _private(response):
    """The secret and the recovery codes must not rest in any cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/me/second-factor")
class SecondFactor(MethodView):
    @blp.response(200, SecondFactorStandingSchema)
    @blp.alt_response(401, schema=ErrorSchema, description=NO_SESSION)
    def get(self):
        """Whether an authenticator app is enrolled, and how many recovery codes are left."""
        found = standing()
        return {
            "enrolled": found.enrolled,
            "recovery_codes_left": found.recovery_codes_left,
            "pending": found.pending is not None,
        }

    @blp.response(200, EnrolmentSchema)
    @blp.alt_response(401, schema=ErrorSchema, description=NO_SESSION)
    @blp.alt_response(409, schema=ErrorSchema, description="Une application est déjà associée")
    def post(self):
        """A new secret to enrol an app with (QR code and text); pending until confirmed by its
        first code, for 15 minutes. A pending one is replaced."""
        shown = start()
        return {
            "secret": shown.secret,
            "otpauth_uri": shown.otpauth_uri,
            "qr_svg": shown.qr_svg,
            "expires_at": iso_utc(shown.expires_at),
        }

    @blp.arguments(CurrentPasswordSchema)
    @blp.response(204)
    @blp.alt_response(401, schema=ErrorSchema, description=NO_SESSION)
    @blp.alt_response(409, schema=ErrorSchema, description="Aucune application associée")
    @blp.alt_response(422, schema=ErrorSchema, description="Mot de passe actuel incorrect")
    @blp.alt_response(429, schema=ErrorSchema, headers=RETRY_AFTER, description=LOCKED)
    def delete(self, body):
        """The app removed (the current password required): sign-in emails a code again."""
        remove(body["current_password"])


@blp.route("/me/second-factor/confirm")
class SecondFactorConfirmation(MethodView):
    @blp.arguments(CodeSchema)
    @blp.response(200, RecoveryCodesSchema)
    @blp.alt_response(401, schema=ErrorSchema, description=NO_SESSION)
    @blp.alt_response(409, schema=ErrorSchema, description="Une application est déjà associée")
    @blp.alt_response(410, schema=ErrorSchema, description="Aucune association en cours, ou elle a expiré")
    @blp.alt_response(422, schema=ErrorSchema, description="Code incorrect")
    def post(self, body):
        """The app's first code confirms it; the ten recovery codes are returned, this once."""
        return {"recovery_codes": confirm(body["code"])}
