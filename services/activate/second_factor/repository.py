"""The authenticator app's Redis keys (prefix `activate:`), `uow.second_factors`:

- `activate:second-factor:{registration_id}` (hash): the enrolled app: its secret sealed with
  SECRET_KEY, the last TOTP step accepted, the SHA-256 of each recovery code not used yet
  (space-separated), when it was enrolled. No expiry: it lasts until removed;
- `activate:second-factor-pending:{registration_id}` (hash): an enrolment waiting for its first
  code: the sealed secret and its deadline; it expires by itself at that deadline.

Like the other repositories: reads through the unit of work, writes recorded on it; no rules.
"""

from __future__ import annotations

from services.activate.second_factor.domain import PendingEnrolment, SecondFactor
from shared.unit_of_work import RedisUnitOfWork


def _factor_key(registration_id: str) -> str:
    return f"activate:second-factor:{registration_id}"


def _pending_key(registration_id: str) -> str:
    return f"activate:second-factor-pending:{registration_id}"


class SecondFactorRepository:
    def __init__(self, uow: RedisUnitOfWork) -> None:
        self.uow = uow

    def get(self, registration_id: str) -> SecondFactor | None:
        key = _factor_key(registration_id)
        (fields,) = self.uow.read(key, ("HGETALL", key))
        if not fields:
            return None
        return SecondFactor(
            registration_id=registration_id,
            sealed_secret=fields["sealed_secret"],
            last_step=int(fields["last_step"]),
            recovery_hashes=tuple(fields.get("recovery_hashes", "").split()),
            enrolled_at=int(fields["enrolled_at"]),
        )

    def save(self, factor: SecondFactor) -> None:
        key = _factor_key(factor.registration_id)
        self.uow.writes.delete(key)  # the recovery codes used are dropped, not merged
        self.uow.writes.hset(
            key,
            mapping={
                "sealed_secret": factor.sealed_secret,
                "last_step": str(factor.last_step),
                "recovery_hashes": " ".join(factor.recovery_hashes),
                "enrolled_at": str(factor.enrolled_at),
            },
        )

    def remove(self, registration_id: str) -> None:
        self.uow.writes.delete(_factor_key(registration_id), _pending_key(registration_id))

    def pending(self, registration_id: str) -> PendingEnrolment | None:
        key = _pending_key(registration_id)
        (fields,) = self.uow.read(key, ("HGETALL", key))
        if not fields:
            return None
        return PendingEnrolment(registration_id, fields["sealed_secret"], int(fields["expires_at"]))

    def save_pending(self, pending: PendingEnrolment) -> None:
        key = _pending_key(pending.registration_id)
        self.uow.writes.hset(
            key, mapping={"sealed_secret": pending.sealed_secret, "expires_at": str(pending.expires_at)}
        )
        self.uow.writes.expireat(key, pending.expires_at)

    def drop_pending(self, registration_id: str) -> None:
        self.uow.writes.delete(_pending_key(registration_id))
