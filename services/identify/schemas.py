"""identify's request and answer schemas (they also make its OpenAPI document)."""

from __future__ import annotations

from marshmallow import fields

from shared.schemas import Length, PortalSchema


class StartRegistrationSchema(PortalSchema):
    login_email = fields.String(required=True, validate=Length(max=254))
    identifier_type = fields.String(load_default="SIRET", validate=Length(max=20))
    identifier = fields.String(required=True, validate=Length(max=64))
    country = fields.String(load_default=None, allow_none=True, validate=Length(max=2))


class RegistrationCreatedSchema(PortalSchema):
    registration_id = fields.String()
    status = fields.String()


class RegistrationSchema(PortalSchema):
    registration_id = fields.String()
    login_email = fields.String()
    identifier_type = fields.String()
    identifier = fields.String()
    country = fields.String()
    status = fields.String()
