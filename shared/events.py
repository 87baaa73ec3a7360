"""The CloudEvents 1.0 envelope that every domain event travels in.

One stream entry holds one field, ``event``, whose value is the whole JSON document.
The data of each event type is checked against its schema in `shared.contracts`
both when it is published and when it is read.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError
from redis.client import Pipeline

from shared import contracts
from shared.contracts import DomainEvent
from shared.timestamps import now_iso_utc


class InvalidEvent(ValueError):
    """An entry that is not a well-formed event of a known type."""


def _now_iso() -> str:
    return now_iso_utc("milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    type: str
    source: str
    subject: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=_now_iso)

    def to_json(self) -> str:
        return json.dumps(
            {
                "specversion": "1.0",
                "id": self.id,
                "source": self.source,
                "type": self.type,
                "time": self.time,
                "subject": self.subject,
                "datacontenttype": "application/json",
                "data": self.data,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> Event:
        try:
            doc = json.loads(raw) if raw is not None else None
        except (TypeError, ValueError) as exc:
            raise InvalidEvent(f"not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise InvalidEvent("the event field must hold a JSON object")
        if doc.get("specversion") != "1.0":
            raise InvalidEvent(f"unsupported specversion {doc.get('specversion')!r}")
        for name in ("id", "source", "type"):
            if not isinstance(doc.get(name), str) or not doc[name]:
                raise InvalidEvent(f"missing CloudEvents attribute {name!r}")
        data = validate_data(doc["type"], doc.get("data"))
        return cls(
            type=doc["type"],
            source=doc["source"],
            subject=str(doc.get("subject", "")),
            data=data,
            id=doc["id"],
            time=str(doc.get("time", "")),
        )


def validate_data(event_type: str, data: Any) -> dict[str, Any]:
    """Check `data` against the contract of `event_type`; unknown fields are kept."""
    schema = contracts.schema_for(event_type)
    if schema is None:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    if not isinstance(data, dict):
        raise InvalidEvent(f"{event_type}: data must be a JSON object")
    try:
        schema.load(data)
    except ValidationError as exc:
        raise InvalidEvent(f"{event_type}: invalid data {exc.messages}") from exc
    return data


def envelope(event: DomainEvent, source: str) -> Event:
    """`event` in its CloudEvents envelope; its data is checked when it is appended."""
    return Event(type=event.type, source=source, subject=event.registration_id, data=event.data())


def new_event(event_type: str, service: str, registration_id: str, data: dict[str, Any]) -> Event:
    """An envelope built from plain data (for tests and tools that speak the contract as JSON);
    checked when it is appended."""
    data = {"registration_id": registration_id, **data}
    return Event(type=event_type, source=f"/services/{service}", subject=registration_id, data=data)


def stream_for(event_type: str) -> str:
    return f"events:{event_type}"


def append_to_stream(pipe: Pipeline, event: Event, maxlen: int, *, validated: bool = False) -> None:
    """Queue the XADD of `event` on `pipe`; it is written when the pipeline executes."""
    if not validated:
        validate_data(event.type, event.data)
    pipe.xadd(stream_for(event.type), {"event": event.to_json()}, maxlen=maxlen, approximate=True)
