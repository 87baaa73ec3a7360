"""The project's marshmallow base schema and validators: their error messages are French.

Every request schema of a service inherits `PortalSchema`; its fields get French messages by
error KEY (`required`, `null`, `invalid`…), through marshmallow's `on_bind_field` hook, unless
the field was given a message of its own (`error_messages=`). Validators come from here:
`Length(max=64)` for a text, `Count(max=50)` for a list, `OneOf(choices)`; their messages are
French too. Nothing reads marshmallow's English messages.

    class StartRegistrationSchema(PortalSchema):
        login_email = fields.String(required=True, validate=Length(max=254))
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

INVALID_JSON = "Le corps de la requête n'est pas un JSON valide."

# By field class, then by error key; a field gets the messages of its classes, the closest last
# (as marshmallow merges `default_error_messages`).
FIELD_MESSAGES: dict[type[fields.Field], dict[str, str]] = {
    fields.Field: {
        "required": "Ce champ est obligatoire.",
        "null": "Ce champ ne peut pas être vide.",
        "validator_failed": "Valeur invalide.",
    },
    fields.String: {
        "invalid": "Une chaîne de caractères est attendue.",
        "invalid_utf8": "Une chaîne de caractères UTF-8 est attendue.",
    },
    fields.UUID: {"invalid_uuid": "Identifiant UUID invalide."},
    fields.Number: {"invalid": "Un nombre est attendu.", "too_large": "Ce nombre est trop grand."},
    fields.Integer: {"invalid": "Un nombre entier est attendu."},
    fields.Boolean: {"invalid": "La valeur doit être vrai ou faux."},
    fields.List: {"invalid": "Une liste est attendue."},
    fields.Tuple: {"invalid": "Une liste est attendue."},
    fields.Mapping: {"invalid": "Un objet JSON est attendu."},
    fields.Nested: {"type": "Un objet JSON est attendu."},
    fields.DateTime: {"invalid": "Date et heure invalides."},
    fields.Date: {"invalid": "Date invalide."},
    fields.Enum: {"unknown": "Valeur attendue parmi : {choices}."},
}


def _merged(field_class: type[fields.Field], attribute: str | None) -> dict[str, Any]:
    """The messages of `field_class` (French ones, or marshmallow's own when `attribute` is
    `default_error_messages`), merged along its classes as marshmallow does."""
    messages: dict[str, Any] = {}
    for cls in reversed(field_class.__mro__):
        if attribute is None:
            messages.update(FIELD_MESSAGES.get(cls, {}))
        else:
            messages.update(getattr(cls, attribute, None) or {})
    return messages


def in_french(field: fields.Field) -> fields.Field:
    """Give `field` (and the fields it holds: a list's items…) the French message of each error
    key whose message is still marshmallow's default; a message the schema chose is kept."""
    defaults = _merged(type(field), "default_error_messages")
    for key, message in _merged(type(field), None).items():
        if key in field.error_messages and field.error_messages[key] is defaults.get(key):
            field.error_messages[key] = message
    for inner in _held(field):
        in_french(inner)
    return field


def _held(field: fields.Field) -> list[fields.Field]:
    if isinstance(field, fields.List):
        return [field.inner]
    if isinstance(field, fields.Tuple):
        return list(field.tuple_fields)
    if isinstance(field, fields.Mapping):
        return [f for f in (field.key_field, field.value_field) if f is not None]
    return []


class PortalSchema(Schema):
    """Base of the project's schemas: French messages for its fields and for the schema itself
    (an unknown field, a body that is not an object)."""

    error_messages = {
        "unknown": "Champ inconnu.",
        "type": "Un objet JSON est attendu.",
    }

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        in_french(field_obj)


class Length(validate.Length):
    """`validate.Length` for a text, in French: `Length(max=64)` → « Au plus 64 caractères. »."""

    message_min = "Au moins {min} caractères."
    message_max = "Au plus {max} caractères."
    message_all = "Entre {min} et {max} caractères."
    message_equal = "Exactement {equal} caractères."


class Count(validate.Length):
    """`validate.Length` for a list, in French: `Count(max=50)` → « Au plus 50 éléments. »."""

    message_min = "Au moins {min} éléments."
    message_max = "Au plus {max} éléments."
    message_all = "Entre {min} et {max} éléments."
    message_equal = "Exactement {equal} éléments."


class OneOf(validate.OneOf):
    """`validate.OneOf` in French: « Valeur attendue parmi : SIRET, TVA. »."""

    default_message = "Valeur attendue parmi : {choices}."


class Email(fields.Email):
    """`fields.Email` whose message is French (« Adresse électronique invalide. »)."""

    default_error_messages = {"invalid": "Adresse électronique invalide."}
