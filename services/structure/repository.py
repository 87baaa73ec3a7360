"""The only module that knows structure's Redis keys (prefix `structure:`).

- `structure:registration:{registration_id}` (hash): the registration as step 1 announced it,
  the SIRENE look-up's outcome, the form's pre-fill, and once confirmed its structure id (the
  structure it opened, or the one it asked to join, with `attachment_request_id`); its login
  email and pre-fill are erased once its account is deactivated (`erasure.py`);
- `structure:structure:{structure_id}` (hash): a structure, with its claim on its identity
  (`claim_status`, `claim_expires_at`); a released structure is kept a week, then forgotten;
- `structure:by-identifier:{country}:{type}:{identifier}` (string): the structure id of an
  identity, the guard that makes one structure per identity (removed when its structure is
  released);
- `structure:claim-deadlines` (sorted set): structure id → when its claim is released unless its
  first account is activated, for the beat's sweep;
- `structure:to-verify` (sorted set): structure id → its claim's deadline (oldest first), for the structures
  opened while no SIRENE source could check their SIRET (`verification` to_verify), for the
  beat's check;
- `structure:captcha:{captcha_id}` (hash): a bot challenge: its answer's hash, its expiry, its
  text sealed with SECRET_KEY and how many times its image was drawn (the image is not kept);
- `structure:registration-captchas:{registration_id}` (hash): the challenges issued for a
  registration, id → expiry, so that issuing one more can spend the oldest.

Repositories map these keys to domain objects and back; they decide nothing. A read can be
asked on its own (`registrations.get`) or, as a `Read`, together with others in one round trip
(`uow.read_together`): confirming step 2 reads a registration, its identity's guard and a
challenge at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

from services.structure.captcha import KeptDrawing, NewCaptcha, StoredCaptcha
from services.structure.domain import (
    Claim,
    ClaimStatus,
    ExistingStructure,
    Identity,
    LookupOutcome,
    NewStructure,
    Registration,
    StructureFields,
    Verification,
)
from shared.unit_of_work import RedisUnitOfWork

T = TypeVar("T")

RETENTION_SECONDS = 7 * 24 * 3600  # a registration (or a released structure) stays this long
CLAIM_DEADLINES = "structure:claim-deadlines"
TO_VERIFY = "structure:to-verify"
_CLAIM_FIELDS = (
    "identifier_type",
    "identifier",
    "country",
    "registration_id",
    "claim_status",
    "claim_expires_at",
)


def _registration_key(registration_id: str) -> str:
    return f"structure:registration:{registration_id}"


def _structure_key(structure_id: str) -> str:
    return f"structure:structure:{structure_id}"


def _identity_key(identity: Identity) -> str:
    return f"structure:by-identifier:{identity.country}:{identity.identifier_type}:{identity.identifier}"


def _captcha_key(captcha_id: str) -> str:
    return f"structure:captcha:{captcha_id}"


def _issued_captchas_key(registration_id: str) -> str:
    return f"structure:registration-captchas:{registration_id}"


@dataclass(frozen=True)
class Read(Generic[T]):
    """One key to watch and read with `command`, and how the answer becomes a domain object.

    `key=None` reads nothing and gives None (a challenge that was not sent)."""

    key: str | None
    command: tuple[Any, ...] = ()
    parse: Callable[[Any], T] = lambda answer: answer


NOTHING: Read[Any] = Read(None, parse=lambda _: None)


def _registration(registration_id: str, fields: dict[str, str]) -> Registration | None:
    if not fields:
        return None
    return Registration(
        registration_id=registration_id,
        identity=Identity(fields["identifier_type"], fields["identifier"], fields["country"]),
        login_email=fields["login_email"],
        lookup=LookupOutcome(fields["lookup"]),
        prefill=StructureFields(**json.loads(fields["prefill"])),
        structure_id=fields.get("structure_id") or None,
        prefill_source=fields.get("prefill_source") or "none",
        as_of=fields.get("as_of") or None,
    )


def _stored_captcha(values: list[str | None]) -> StoredCaptcha | None:
    answer, expires_at = values
    if not answer or not expires_at:
        return None
    return StoredCaptcha(answer, float(expires_at))


def _issued(fields: dict[str, str]) -> dict[str, float]:
    return {captcha_id: float(expires_at) for captcha_id, expires_at in fields.items()}


def _kept_drawing(values: list[str | None]) -> KeptDrawing | None:
    sealed_text, expires_at, draws = values
    if not sealed_text or not expires_at:
        return None
    return KeptDrawing(sealed_text, float(expires_at), int(draws or 0))


def _structure_mapping(structure: NewStructure) -> dict[str, str]:
    """The structure's hash: its identity, then its fields (the address's country apart), then
    its claim."""
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
        "claim_status": ClaimStatus.CLAIMED,
        "claim_expires_at": str(structure.claim_expires_at),
        "verification": structure.verification,
    }


def _claim(structure_id: str, values: list[str | None]) -> Claim | None:
    identifier_type, identifier, country, registration_id, status, expires_at = values
    if not identifier_type or not identifier or not country:
        return None
    return Claim(
        structure_id=structure_id,
        identity=Identity(identifier_type, identifier, country),
        registration_id=registration_id or "",
        # A structure opened before claims had a deadline is held, as it always was.
        status=ClaimStatus(status) if status else ClaimStatus.HELD,
        expires_at=int(expires_at) if expires_at else None,
    )


def _existing(structure_id: str, values: list[str | None]) -> ExistingStructure | None:
    company_name, postal_code, city, status = values
    if company_name is None or status == ClaimStatus.RELEASED:
        return None
    return ExistingStructure(structure_id, company_name, postal_code or "", city or "")


class RegistrationRepository:
    def __init__(self, uow: StructureUnitOfWork) -> None:
        self.uow = uow

    def read(self, registration_id: str) -> Read[Registration | None]:
        key = _registration_key(registration_id)
        return Read(key, ("HGETALL", key), lambda fields: _registration(registration_id, fields))

    def get(self, registration_id: str) -> Registration | None:
        (registration,) = self.uow.read_together(self.read(registration_id))
        return registration

    def add(self, registration: Registration, keep_seconds: int) -> None:
        key = _registration_key(registration.registration_id)
        self.uow.writes.hset(
            key,
            mapping={
                "identifier_type": registration.identity.identifier_type,
                "identifier": registration.identity.identifier,
                "country": registration.identity.country,
                "login_email": registration.login_email,
                "lookup": registration.lookup,
                "prefill": json.dumps(asdict(registration.prefill), ensure_ascii=False),
                "prefill_source": registration.prefill_source,
                **({"as_of": registration.as_of} if registration.as_of else {}),
            },
        )
        self.uow.writes.expire(key, keep_seconds + RETENTION_SECONDS)

    def record_confirmation(self, registration_id: str, structure_id: str, confirmed_at: str) -> None:
        self.uow.writes.hset(
            _registration_key(registration_id),
            mapping={"structure_id": structure_id, "confirmed_at": confirmed_at},
        )

    def erase_personal_fields(self, registration: Registration) -> None:
        """The registration's login email and pre-fill as `registration` has them once erased
        (`erasure.erased`). Only for a registration just read: HSET would make a key."""
        self.uow.writes.hset(
            _registration_key(registration.registration_id),
            mapping={
                "login_email": registration.login_email,
                "prefill": json.dumps(asdict(registration.prefill), ensure_ascii=False),
            },
        )

    def record_attachment(
        self, registration_id: str, structure_id: str, attachment_request_id: str, requested_at: str
    ) -> None:
        """The registration asked to join `structure_id`: it is done with step 2, as a confirmed one."""
        self.uow.writes.hset(
            _registration_key(registration_id),
            mapping={
                "structure_id": structure_id,
                "attachment_request_id": attachment_request_id,
                "confirmed_at": requested_at,
            },
        )


class StructureRepository:
    """Structures and the guard of their identity."""

    def __init__(self, uow: StructureUnitOfWork) -> None:
        self.uow = uow

    def read_holder(self, identity: Identity) -> Read[str | None]:
        """The id of the structure that holds `identity`, if any."""
        key = _identity_key(identity)
        return Read(key, ("GET", key))

    def add(self, structure: NewStructure) -> None:
        """The structure, its identity's guard and its claim's deadline."""
        self.uow.writes.set(_identity_key(structure.identity), structure.structure_id)
        self.uow.writes.hset(_structure_key(structure.structure_id), mapping=_structure_mapping(structure))
        self.uow.writes.zadd(CLAIM_DEADLINES, {structure.structure_id: structure.claim_expires_at})
        if structure.verification is Verification.TO_VERIFY:
            self.uow.writes.zadd(TO_VERIFY, {structure.structure_id: structure.claim_expires_at})

    def read_claim(self, structure_id: str) -> Read[Claim | None]:
        """The structure's claim on its identity, if the structure exists."""
        key = _structure_key(structure_id)
        return Read(key, ("HMGET", key, *_CLAIM_FIELDS), lambda values: _claim(structure_id, values))

    def hold(self, structure_id: str) -> None:
        """Held for good: its first account is active."""
        self.uow.writes.hset(_structure_key(structure_id), "claim_status", ClaimStatus.HELD)
        self.forget_deadline(structure_id)

    def release(self, claim: Claim, released_at: str, *, free_identity: bool) -> None:
        """Released: kept a week for the record; its identity's guard removed when it still
        names this structure (`free_identity`)."""
        key = _structure_key(claim.structure_id)
        if free_identity:
            self.uow.writes.delete(_identity_key(claim.identity))
        self.uow.writes.hset(key, mapping={"claim_status": ClaimStatus.RELEASED, "released_at": released_at})
        self.uow.writes.expire(key, RETENTION_SECONDS)
        self.forget_deadline(claim.structure_id)
        self.forget_check(claim.structure_id)  # a released structure is no longer checked

    def forget_deadline(self, structure_id: str) -> None:
        self.uow.writes.zrem(CLAIM_DEADLINES, structure_id)

    def due_for_release(self, until: float, limit: int = 500) -> list[str]:
        """Ids of the structures whose claim's deadline is at or before `until`, earliest first."""
        (due,) = self.uow.read(
            CLAIM_DEADLINES, ("ZRANGEBYSCORE", CLAIM_DEADLINES, "-inf", until, "LIMIT", 0, limit)
        )
        return due


    def read_existing(self, structure_id: str | None) -> Read[ExistingStructure | None]:
        """The public summary of a structure (None when there is none, or it was released)."""
        if not structure_id:
            return NOTHING
        key = _structure_key(structure_id)
        return Read(
            key,
            ("HMGET", key, "company_name", "postal_code", "city", "claim_status"),
            lambda values: _existing(structure_id, values),
        )

    def read_verification(self, structure_id: str) -> Read[Verification | None]:
        """Whether the structure's SIRET was checked (None when the structure is gone)."""
        key = _structure_key(structure_id)
        return Read(key, ("HGET", key, "verification"), lambda value: Verification(value) if value else None)

    def to_verify(self, limit: int) -> list[str]:
        """Ids of the structures waiting for their SIRET to be checked, oldest first."""
        (due,) = self.uow.read(TO_VERIFY, ("ZRANGE", TO_VERIFY, 0, limit - 1))
        return due

    def record_check(self, structure_id: str, verification: Verification) -> None:
        self.uow.writes.hset(_structure_key(structure_id), "verification", verification)
        self.forget_check(structure_id)

    def forget_check(self, structure_id: str) -> None:
        self.uow.writes.zrem(TO_VERIFY, structure_id)


class CaptchaRepository:
    def __init__(self, uow: StructureUnitOfWork) -> None:
        self.uow = uow

    def read(self, captcha_id: str | None) -> Read[StoredCaptcha | None]:
        if not captcha_id:
            return NOTHING
        key = _captcha_key(captcha_id)
        return Read(key, ("HMGET", key, "answer_hash", "expires_at"), _stored_captcha)

    def drawing(self, captcha_id: str) -> KeptDrawing | None:
        """What is needed to draw the challenge's image again (watched inside `run`)."""
        key = _captcha_key(captcha_id)
        (values,) = self.uow.read(key, ("HMGET", key, "sealed_text", "expires_at", "draws"))
        return _kept_drawing(values)

    def count_drawing(self, captcha_id: str) -> None:
        """After `drawing` watched the key: should it expire meanwhile, EXEC is aborted (Redis
        6.0.9 and later), so HINCRBY never brings back a dead challenge without an expiry."""
        self.uow.writes.hincrby(_captcha_key(captcha_id), "draws", 1)

    def add(self, captcha: NewCaptcha, sealed_text: str, draws: int) -> None:
        """The challenge, `draws` times drawn already: its answer hashed, its text sealed."""
        key = _captcha_key(captcha.captcha_id)
        self.uow.writes.hset(
            key,
            mapping={
                "answer_hash": captcha.stored.answer_hash,
                "expires_at": repr(captcha.stored.expires_at),
                "sealed_text": sealed_text,
                "draws": draws,
            },
        )
        self.uow.writes.expire(key, captcha.ttl_seconds)

    def remove(self, captcha_id: str) -> None:
        self.uow.writes.delete(_captcha_key(captcha_id))

    def read_issued(self, registration_id: str) -> Read[dict[str, float]]:
        """The challenges issued for the registration, id → expiry; some may be spent already."""
        key = _issued_captchas_key(registration_id)
        return Read(key, ("HGETALL", key), _issued)

    def record_issue(self, registration_id: str, captcha: NewCaptcha, spent: list[str]) -> None:
        """`captcha` issued for the registration; the challenges `spent` removed, from it too."""
        key = _issued_captchas_key(registration_id)
        for captcha_id in spent:
            self.uow.writes.delete(_captcha_key(captcha_id))
        if spent:
            self.uow.writes.hdel(key, *spent)
        self.uow.writes.hset(key, captcha.captcha_id, repr(captcha.stored.expires_at))
        self.uow.writes.expire(key, captcha.ttl_seconds)


class StructureUnitOfWork(RedisUnitOfWork):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registrations = RegistrationRepository(self)
        self.structures = StructureRepository(self)
        self.captchas = CaptchaRepository(self)

    def read_together(self, *reads: Read[Any]) -> list[Any]:
        """The answers of `reads`, in one round trip (watched inside `run`)."""
        wanted = [read for read in reads if read.key is not None]
        keys = [str(read.key) for read in wanted]
        answers = iter(self.read(keys, *(read.command for read in wanted)) if wanted else ())
        return [read.parse(next(answers) if read.key is not None else None) for read in reads]
