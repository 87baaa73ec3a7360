"""identify's request and answer schemas (they also make its OpenAPI document)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class StartRegistrationSchema(Schema):
    login_email = fields.String(required=True, validate=validate.Length(max=254))
    identifier_type = fields.String(load_default="SIRET", validate=validate.Length(max=20))
    identifier = fields.String(required=True, validate=validate.Length(max=64))
    country = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2))


class RegistrationCreatedSchema(Schema):
    registration_id = fields.String()
    status = fields.String()


class RegistrationSchema(Schema):
    registration_id = fields.String()
    login_email = fields.String()
    identifier_type = fields.String()
    identifier = fields.String()
    country = fields.String()
    status = fields.String()
