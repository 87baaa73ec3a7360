"""Sign-in's Redis keys (prefix `activate:`), beside the other repositories of activate (the
authenticator app's are in second_factor/repository.py):

- `activate:sign-in:{sha256 of the challenge id}` (hash): an open sign-in between the password
  and the second factor: its account, what its code may be, the emailed code's keyed digest (an
  HMAC, never the code), its deadline, the wrong codes so far and its state; it expires by itself
  at its deadline (SIGN_IN_CODE_TTL_SECONDS after the password);
- `activate:account-sign-in:{registration_id}` (string): the hash of the account's latest
  challenge, which a new sign-in voids; it expires with that challenge;
- `activate:sign-in-failures:{sha256 of the login email}` (hash): failures in a row for a login
  email (whether an account uses it or not) and until when it is locked; it expires a day after
  the last failure, and is deleted at a successful sign-in.

activate's unit of work (`services.activate.repository.ActivateUnitOfWork`) holds them as
`uow.sign_ins` and `uow.sign_in_failures`. Like the other repositories: reads through the unit of
work, writes recorded on it; no rules.
"""

from __future__ import annotations

from services.activate.sign_in import domain as sign_in
from services.activate.sign_in.domain import Challenge, ChallengeState, Failures, Method
from shared.unit_of_work import RedisUnitOfWork


def _challenge_key(challenge_hash: str) -> str:
    return f"activate:sign-in:{challenge_hash}"


def _account_challenge_key(registration_id: str) -> str:
    return f"activate:account-sign-in:{registration_id}"


def _failures_key(throttle_key: str) -> str:
    return f"activate:sign-in-failures:{throttle_key}"


class SignInRepository:
    """The challenges, and each account's latest."""

    def __init__(self, uow: RedisUnitOfWork) -> None:
        self.uow = uow

    def get(self, challenge_hash: str) -> Challenge | None:
        key = _challenge_key(challenge_hash)
        (fields,) = self.uow.read(key, ("HGETALL", key))
        if not fields:
            return None
        return Challenge(
            challenge_hash=challenge_hash,
            registration_id=fields["registration_id"],
            account_id=fields["account_id"],
            throttle_key=fields["throttle_key"],
            accepts=tuple(Method(m) for m in fields["accepts"].split(",") if m),
            code_digest=fields.get("code_digest") or None,
            expires_at=int(fields["expires_at"]),
            failures=int(fields["failures"]),
            state=ChallengeState(fields["state"]),
        )

    def save(self, challenge: Challenge) -> None:
        key = _challenge_key(challenge.challenge_hash)
        self.uow.writes.hset(
            key,
            mapping={
                "registration_id": challenge.registration_id,
                "account_id": challenge.account_id,
                "throttle_key": challenge.throttle_key,
                "accepts": ",".join(challenge.accepts),
                "code_digest": challenge.code_digest or "",
                "expires_at": str(challenge.expires_at),
                "failures": str(challenge.failures),
                "state": challenge.state,
            },
        )
        self.uow.writes.expireat(key, challenge.expires_at)

    def latest_of(self, registration_id: str) -> str | None:
        """The hash of the account's latest challenge (it may be closed or gone since)."""
        key = _account_challenge_key(registration_id)
        (found,) = self.uow.read(key, ("GET", key))
        return found

    def set_latest(self, challenge: Challenge) -> None:
        key = _account_challenge_key(challenge.registration_id)
        self.uow.writes.set(key, challenge.challenge_hash)
        self.uow.writes.expireat(key, challenge.expires_at)

    def forget_latest(self, registration_id: str, challenge_hash: str | None) -> None:
        """The account's latest challenge (`challenge_hash`, if any) and the pointer to it, deleted:
        its account is erased. Older ones name the login only by its SHA-256 and lapse within
        SIGN_IN_CODE_TTL_SECONDS."""
        if challenge_hash:
            self.uow.writes.delete(_challenge_key(challenge_hash))
        self.uow.writes.delete(_account_challenge_key(registration_id))


class SignInFailures:
    """Failures in a row per login email (`sign_in.throttle_key`)."""

    def __init__(self, uow: RedisUnitOfWork) -> None:
        self.uow = uow

    def get(self, throttle_key: str) -> Failures:
        key = _failures_key(throttle_key)
        (fields,) = self.uow.read(key, ("HGETALL", key))
        if not fields:
            return Failures()
        return Failures(int(fields["count"]), int(fields["locked_until"]))

    def save(self, throttle_key: str, failures: Failures, now: float) -> None:
        key = _failures_key(throttle_key)
        self.uow.writes.hset(
            key, mapping={"count": str(failures.count), "locked_until": str(failures.locked_until)}
        )
        forgotten_at = max(int(now) + sign_in.FAILURES_FORGOTTEN_AFTER_SECONDS, failures.locked_until)
        self.uow.writes.expireat(key, forgotten_at)

    def forget(self, throttle_key: str) -> None:
        self.uow.writes.delete(_failures_key(throttle_key))
