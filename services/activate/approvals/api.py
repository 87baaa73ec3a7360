"""« Approbations »'s JSON API and the users of a manager's structures: parse, call a handler with
the signed-in session, shape the answer. Every path here needs a live session (401 without) and a
gestionnaire principal (403 for anyone else). The functions at the top are what the pages call."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.activate.approvals import handlers
from services.activate.approvals.domain import PendingRequest
from services.activate.approvals.handlers import StructureUser
from services.activate.approvals.schemas import (
    DecidedSchema,
    DecisionSchema,
    DetachedSchema,
    DetachmentSchema,
    PendingRequestsSchema,
    StructureUsersSchema,
)
from services.activate.domain import Account
from services.activate.my_account.api import NO_SESSION, session, uow, wiring
from services.activate.sessions import web as session_web

blp = Blueprint(
    "activate_approvals",
    __name__,
    url_prefix="/activate/api",
    description="« Approbations » : les demandes de rattachement qu'un gestionnaire principal accepte ou "
    "refuse, et les utilisateurs de ses structures",
)
session_web.guard_cookie_api(blp, session_paths="/activate/api")

NOT_MANAGER = "Réservé au gestionnaire principal d'une structure."


def pending() -> list[PendingRequest]:
    return handlers.pending_requests(session(), uow())


def decide(attachment_request_id: str, decision: str, reason: str | None = None) -> Account:
    command = handlers.Decide(session(), attachment_request_id, decision, reason)
    return handlers.decide(command, uow(), wiring().links)


def users() -> list[StructureUser]:
    return handlers.structure_users(session(), uow())


def detach(structure_id: str, account_id: str) -> Account:
    return handlers.detach_user(handlers.DetachUser(session(), structure_id, account_id), uow())


@blp.after_request
def _private(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/approvals")
class Approvals(MethodView):
    @blp.response(200, PendingRequestsSchema)
    @blp.alt_response(401, description=NO_SESSION)
    @blp.alt_response(403, description=NOT_MANAGER)
    def get(self):
        """The attachment requests waiting for the signed-in gestionnaire principal, oldest first."""
        return {"requests": pending()}


@blp.route("/approvals/<attachment_request_id>")
class Approval(MethodView):
    @blp.arguments(DecisionSchema)
    @blp.response(200, DecidedSchema)
    @blp.alt_response(401, description=NO_SESSION)
    @blp.alt_response(403, description=NOT_MANAGER)
    @blp.alt_response(404, description="Pas de telle demande pour vos structures")
    @blp.alt_response(409, description="Déjà traitée autrement, ou expirée")
    def post(self, body, attachment_request_id):
        """Approve (the activation email goes out; or, for a login email with an active account, that
        account joins the structure) or refuse (the reason is emailed). Once: the same decision again
        changes nothing; events AttachmentApproved, AttachmentRefused."""
        decided = decide(attachment_request_id, body["decision"], body.get("reason"))
        return {
            "attachment_request_id": decided.attachment_request_id,
            "decision": "refuse" if decided.status == "refused" else "approve",
            "status": decided.status,
        }


@blp.route("/me/users")
class StructureUsers(MethodView):
    @blp.response(200, StructureUsersSchema)
    @blp.alt_response(401, description=NO_SESSION)
    @blp.alt_response(403, description=NOT_MANAGER)
    def get(self):
        """The active users of the signed-in gestionnaire principal's structures."""
        return {"users": users()}


@blp.route("/me/users/<account_id>/detachment")
class Detachment(MethodView):
    @blp.arguments(DetachmentSchema)
    @blp.response(200, DetachedSchema)
    @blp.alt_response(401, description=NO_SESSION)
    @blp.alt_response(403, description=NOT_MANAGER)
    @blp.alt_response(404, description="Pas de tel utilisateur dans cette structure")
    @blp.alt_response(409, description="Le gestionnaire principal ne peut pas être détaché")
    def post(self, body, account_id):
        """The user no longer belongs to the structure (event UserDetached); an account left with no
        structure is deactivated (AccountDeactivated)."""
        left = detach(body["structure_id"], account_id)
        return {"account_id": left.account_id, "structure_id": body["structure_id"], "status": left.status}
