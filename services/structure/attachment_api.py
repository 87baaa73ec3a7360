"""`POST /structure/api/registrations/{id}/attachment`: step 2 when the identifier already has a
structure, the newcomer asks to join it. `request` runs the handler for the API and the page."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields

from services.structure import api, domain, handlers
from services.structure.attachment import NewAttachmentRequest
from services.structure.schemas import CaptchaAnswerSchema, UserSchema
from shared.bootstrap import wiring_of
from shared.schemas import PortalSchema

blp = Blueprint(
    "structure_attachment",
    __name__,
    url_prefix="/structure/api",
    description="Step 2 for a structure that exists: ask to join it (rattachement)",
)


class AttachmentRequestSchema(PortalSchema):
    user = fields.Nested(UserSchema, load_default=dict)
    captcha = fields.Nested(
        CaptchaAnswerSchema,
        load_default=None,
        allow_none=True,
        metadata={"description": "Obligatoire quand la vérification anti-robot est activée"},
    )


class AttachmentRequestedSchema(PortalSchema):
    attachment_request_id = fields.String()


def request(command: handlers.RequestAttachment) -> NewAttachmentRequest:
    return handlers.request_attachment(
        command,
        wiring_of().uow(),
        captcha_required=api.captcha_required(),
        arrivals=wiring_of().registrations,
    )


@blp.route("/registrations/<registration_id>/attachment")
class AttachmentRequest(MethodView):
    @blp.arguments(AttachmentRequestSchema)
    @blp.response(201, AttachmentRequestedSchema)
    def post(self, body, registration_id):
        """Ask to join the structure that already has the registration's identifier: its
        gestionnaire principal approves or refuses. 409 when there is none to join (or the
        registration already went on)."""
        captcha = body.get("captcha") or {}
        user = {k: v for k, v in (body["user"] or {}).items() if v is not None}
        made = request(
            handlers.RequestAttachment(
                registration_id=registration_id,
                user=domain.UserForm(**user),
                captcha_id=captcha.get("captcha_id"),
                captcha_answer=captcha.get("answer"),
            )
        )
        return {"attachment_request_id": made.attachment_request_id}
