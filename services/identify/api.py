"""identify's JSON API: parse, call a handler, shape the answer."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from services.identify import handlers
from services.identify.schemas import RegistrationCreatedSchema, RegistrationSchema, StartRegistrationSchema
from shared.errors import NotFound

blp = Blueprint("registrations", __name__, url_prefix="/identify/api", description="Step 1: identify")


def _deps():
    return current_app.extensions["identify"]


@blp.route("/registrations")
class Registrations(MethodView):
    @blp.arguments(StartRegistrationSchema)
    @blp.response(201, RegistrationCreatedSchema)
    def post(self, body):
        """Start a registration: login email and structure identifier."""
        deps = _deps()
        registration = handlers.start_registration(
            handlers.StartRegistration(**body), deps.repo, deps.clock, deps.settings.registration_ttl_seconds
        )
        return registration


@blp.route("/registrations/<registration_id>")
class RegistrationById(MethodView):
    @blp.response(200, RegistrationSchema)
    def get(self, registration_id):
        """A registration and where it stands."""
        registration = _deps().repo.get(registration_id)
        if registration is None:
            raise NotFound()
        return registration
