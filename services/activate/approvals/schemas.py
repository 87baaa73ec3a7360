"""« Approbations » and the users of a manager's structures: request and answer schemas (they also
make their part of the OpenAPI document)."""

from __future__ import annotations

from marshmallow import fields

from services.activate.approvals.domain import REASON_MAX_LENGTH
from shared.schemas import Length, PortalSchema

ID_MAX = 64


class PendingRequestSchema(PortalSchema):
    attachment_request_id = fields.String()
    login_email = fields.String()
    last_name = fields.String()
    first_name = fields.String()
    requested_at = fields.String(metadata={"description": "ISO 8601, UTC"})
    structure_id = fields.String()
    company_name = fields.String()


class PendingRequestsSchema(PortalSchema):
    requests = fields.List(fields.Nested(PendingRequestSchema))


class DecisionSchema(PortalSchema):
    decision = fields.String(
        required=True,
        validate=Length(max=16),
        metadata={"description": "`approve` (accepter) ou `refuse` (refuser)"},
    )
    reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=Length(max=REASON_MAX_LENGTH * 2),
        metadata={
            "description": f"Motif d'un refus, envoyé au demandeur ({REASON_MAX_LENGTH} caractères au plus)"
        },
    )


class DecidedSchema(PortalSchema):
    attachment_request_id = fields.String()
    decision = fields.String()
    status = fields.String(
        metadata={
            "description": "Où en est la demande : awaiting_activation (le lien d'activation est envoyé ; "
            "une adresse qui a déjà un compte actif le rattache avec son mot de passe) ou refused"
        }
    )


class StructureUserSchema(PortalSchema):
    account_id = fields.String()
    structure_id = fields.String()
    company_name = fields.String()
    login_email = fields.String()
    last_name = fields.String()
    first_name = fields.String()
    role = fields.String()


class StructureUsersSchema(PortalSchema):
    users = fields.List(fields.Nested(StructureUserSchema))


class DetachmentSchema(PortalSchema):
    structure_id = fields.String(
        required=True, validate=Length(max=ID_MAX), metadata={"description": "La structure à quitter"}
    )


class DetachedSchema(PortalSchema):
    account_id = fields.String()
    structure_id = fields.String()
    status = fields.String(metadata={"description": "active (il garde d'autres structures) ou deactivated"})
