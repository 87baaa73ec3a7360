"""identify's JSON API: parse, call a handler, shape the answer."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.identify import handlers
from services.identify.bootstrap import Identify
from services.identify.schemas import RegistrationCreatedSchema, RegistrationSchema, StartRegistrationSchema
from shared.bootstrap import wiring_of

blp = Blueprint("registrations", __name__, url_prefix="/identify/api", description="Step 1: identify")


def start(command: handlers.StartRegistration):
    """Step 1 for the API and the page alike."""
    wiring: Identify = wiring_of()
    return handlers.start_registration(command, wiring.uow(), wiring.settings.registration_ttl_seconds)


@blp.route("/registrations")
class Registrations(MethodView):
    @blp.arguments(StartRegistrationSchema)
    @blp.response(201, RegistrationCreatedSchema)
    def post(self, body):
        """Start a registration: login email and structure identifier."""
        return start(handlers.StartRegistration(**body))


@blp.route("/registrations/<registration_id>")
class RegistrationById(MethodView):
    @blp.response(200, RegistrationSchema)
    def get(self, registration_id):
        """A registration and where it stands."""
        return handlers.registration(registration_id, wiring_of().uow())
