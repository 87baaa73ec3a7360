"""The only module that knows structure's Redis keys (prefix `structure:`).

- `structure:registration:{registration_id}` (hash): the registration as step 1 announced it,
  the SIRENE look-up's outcome, the form's pre-fill, and once confirmed its structure id;
- `structure:structure:{structure_id}` (hash): a structure;
- `structure:by-identifier:{country}:{type}:{identifier}` (string): the structure id of an
  identity, the guard that makes one structure per identity;
- `structure:captcha:{captcha_id}` (hash): a bot challenge (answer hash, expiry, image).
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from enum import Enum

import redis
from redis.client import Pipeline

from services.structure.captcha import StoredCaptcha
from services.structure.domain import Identity, StructureFields
from shared.bus import publish
from shared.events import Event
from shared.watching import watch_and_read

RETENTION_SECONDS = 7 * 24 * 3600  # a registration stays readable this long after it is abandoned


def _registration_key(registration_id: str) -> str:
    return f"structure:registration:{registration_id}"


def _structure_key(structure_id: str) -> str:
    return f"structure:structure:{structure_id}"


def _identity_key(identity: Identity) -> str:
    return f"structure:by-identifier:{identity.country}:{identity.identifier_type}:{identity.identifier}"


def _captcha_key(captcha_id: str) -> str:
    return f"structure:captcha:{captcha_id}"


@dataclass(frozen=True)
class Registration:
    registration_id: str
    identity: Identity
    login_email: str
    lookup: str
    prefill: StructureFields
    structure_id: str | None = None


@dataclass(frozen=True)
class NewStructure:
    structure_id: str
    identity: Identity
    fields: StructureFields
    registration_id: str
    created_at: str


class ConfirmOutcome(Enum):
    CONFIRMED = "confirmed"
    UNKNOWN_REGISTRATION = "unknown_registration"
    ALREADY_CONFIRMED = "already_confirmed"
    IDENTIFIER_TAKEN = "identifier_taken"


def _registration(registration_id: str, fields: dict[str, str]) -> Registration | None:
    if not fields:
        return None
    return Registration(
        registration_id=registration_id,
        identity=Identity(fields["identifier_type"], fields["identifier"], fields["country"]),
        login_email=fields["login_email"],
        lookup=fields["lookup"],
        prefill=StructureFields(**json.loads(fields["prefill"])),
        structure_id=fields.get("structure_id") or None,
    )


class StructureRepository:
    def __init__(self, client: redis.Redis, stream_maxlen: int) -> None:
        self.redis = client
        self.stream_maxlen = stream_maxlen

    # Registrations -----------------------------------------------------------------------

    def get(self, registration_id: str) -> Registration | None:
        return _registration(registration_id, self.redis.hgetall(_registration_key(registration_id)))

    def watch(self, pipe: Pipeline, registration_id: str) -> Registration | None:
        """Watch a registration inside an event's transaction and read it (one round trip)."""
        key = _registration_key(registration_id)
        (fields,) = watch_and_read(pipe, key, ("HGETALL", key))
        return _registration(registration_id, fields)

    def add(self, pipe: Pipeline, registration: Registration, keep_seconds: int) -> None:
        """Queue a new registration (the pipeline must be in MULTI)."""
        key = _registration_key(registration.registration_id)
        pipe.hset(
            key,
            mapping={
                "identifier_type": registration.identity.identifier_type,
                "identifier": registration.identity.identifier,
                "country": registration.identity.country,
                "login_email": registration.login_email,
                "lookup": registration.lookup,
                "prefill": json.dumps(asdict(registration.prefill), ensure_ascii=False),
            },
        )
        pipe.expire(key, keep_seconds + RETENTION_SECONDS)

    # Structures --------------------------------------------------------------------------

    def confirm(self, registration_id: str, structure: NewStructure, event: Event) -> ConfirmOutcome:
        """Create the structure, mark the registration confirmed and publish `event`, atomically.

        The identity key and the registration are watched: when two requests race for the same
        identity (or the same registration), exactly one transaction commits; the other is
        retried, finds the key set and reports it, and writes nothing.
        """
        registration_key = _registration_key(registration_id)
        identity_key = _identity_key(structure.identity)

        def attempt(pipe: Pipeline) -> ConfirmOutcome:
            reads = ("HGETALL", registration_key), ("EXISTS", identity_key)
            current, taken = watch_and_read(pipe, [registration_key, identity_key], *reads)
            if not current:
                return ConfirmOutcome.UNKNOWN_REGISTRATION
            if current.get("structure_id"):
                return ConfirmOutcome.ALREADY_CONFIRMED
            if taken:
                return ConfirmOutcome.IDENTIFIER_TAKEN
            pipe.multi()
            pipe.set(identity_key, structure.structure_id)
            pipe.hset(_structure_key(structure.structure_id), mapping=_structure_mapping(structure))
            pipe.hset(
                registration_key,
                mapping={"structure_id": structure.structure_id, "confirmed_at": structure.created_at},
            )
            publish(pipe, event, self.stream_maxlen)
            return ConfirmOutcome.CONFIRMED

        return self.redis.transaction(attempt, value_from_callable=True)

    # Captchas ----------------------------------------------------------------------------

    def save_captcha(self, captcha_id: str, stored: StoredCaptcha, png: bytes, ttl_seconds: int) -> None:
        key = _captcha_key(captcha_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "answer_hash": stored.answer_hash,
                    "expires_at": repr(stored.expires_at),
                    "png": base64.b64encode(png).decode("ascii"),
                },
            )
            pipe.expire(key, ttl_seconds)
            pipe.execute()

    def captcha_image(self, captcha_id: str) -> bytes | None:
        encoded = self.redis.hget(_captcha_key(captcha_id), "png")
        return base64.b64decode(encoded) if encoded else None

    def take_captcha(self, captcha_id: str) -> StoredCaptcha | None:
        key = _captcha_key(captcha_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hmget(key, "answer_hash", "expires_at")
            pipe.delete(key)
            (answer, expires_at), _ = pipe.execute()
        if not answer or not expires_at:
            return None
        return StoredCaptcha(answer, float(expires_at))


def _structure_mapping(structure: NewStructure) -> dict[str, str]:
    """The structure's hash: its identity, then its fields (the address's country apart)."""
    fields = asdict(structure.fields)
    address_country = fields.pop("country")
    return {
        "structure_id": structure.structure_id,
        "identifier_type": structure.identity.identifier_type,
        "identifier": structure.identity.identifier,
        "country": structure.identity.country,
        **fields,
        "address_country": address_country,
        "registration_id": structure.registration_id,
        "created_at": structure.created_at,
    }
