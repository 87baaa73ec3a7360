"""notify's answer schemas (they also make its OpenAPI document)."""

from __future__ import annotations

from marshmallow import fields

from shared.schemas import PortalSchema
from shared.timestamps import iso_utc


def _iso(obj) -> str:
    date = obj["date"] if isinstance(obj, dict) else obj.date
    return iso_utc(date.timestamp())


class MessageSummarySchema(PortalSchema):
    name = fields.String(metadata={"description": "File name under MAIL_DIR"})
    to = fields.String()
    subject = fields.String()
    date = fields.Function(_iso, metadata={"description": "ISO 8601, UTC"})


class HeaderSchema(PortalSchema):
    name = fields.String()
    value = fields.String()


class MessageSchema(MessageSummarySchema):
    sender = fields.String(data_key="from")
    headers = fields.List(fields.Nested(HeaderSchema))
    text = fields.String(allow_none=True)
    html = fields.String(allow_none=True)
