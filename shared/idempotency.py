"""`Idempotency-Key` on the POSTs of the JSON API: a retry gets the first answer again, with no
second effect, even across a failover.

A client that may retry a POST (its answer lost, a 503) sends the same `Idempotency-Key` (1 to
255 visible ASCII characters, typically a UUID) with each attempt. Each service keeps, under
`{service}:idempotency:{sha256 of the key}`, one Redis hash per key for 24 hours:

- `fingerprint`: the SHA-256 of the request (method, path, query, the caller's credentials —
  `Authorization` and `Cookie` — and the raw body). The same key on another request is a 422:
  a client that reuses keys by mistake, or someone who learnt another person's key, gets no
  one else's answer;
- `state`: `in_progress` while the first attempt runs (claimed atomically before the view, a
  lease of `CLAIM_SECONDS` so that a crashed process does not block the key for a day),
  `committed` once its unit of work has committed (written in the same MULTI as the effect, see
  `stage_commit_marker`), `answered` once the answer is kept;
- `status` and `answer`: the answer (status, body, the headers of `KEPT_HEADERS`), sealed
  (Fernet) with a key derived from the Idempotency-Key and SECRET_KEY: an answer may carry a session
  cookie, a sign-in challenge or recovery codes, which Redis otherwise only ever holds hashed.

What a request with a key gets:

- no record: the view runs; a final answer (below 500, 429 aside) is kept and replayed to
  every retry with `Idempotent-Replayed: true`; any other answer gives the key back, so that
  a retry runs the view again — unless the view committed an effect first: the record then
  stays `committed` and a retry gets 409 (the effect happened once; its answer is lost);
- a record of another request: 422; one still in progress: 409 with `Retry-After: 1`.

With REDIS_MIN_REPLICAS, the kept answer (and whatever the request wrote before it) is fenced
(`shared.replication`) before it leaves, as is a replay: an answer a client has seen survives a
failover. If a failover loses the record, it lost the request's effect with it (the claim and
the committed marker precede or accompany every write of the request), so running the request
again is right.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import redis
from apispec import BasePlugin
from cryptography.fernet import Fernet
from flask import Flask, Response, g, request
from redis.client import Pipeline
from redis.commands.core import Script

from shared import replication
from shared.errors import DomainError, Invalid
from shared.http_api import error_response
from shared.settings import Settings

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
RECORD_SECONDS = 24 * 3600
CLAIM_SECONDS = 45  # longer than any request runs (gunicorn's 30 s timeout kills a slower worker)
"""How long an attempt may hold its key without committing nor answering: well beyond the
gateway's 60 s read timeout, short enough that a key whose process died is free again soon."""
KEPT_HEADERS = ("Content-Type", "Location", "Retry-After", "Set-Cookie", "Cache-Control")
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")

IN_PROGRESS = "in_progress"
COMMITTED = "committed"
ANSWERED = "answered"

INVALID_KEY = (
    "La clé d'idempotence doit compter de 1 à 255 caractères ASCII visibles, sans espace "
    "(par exemple un UUID)."
)
KEY_REUSED = "Cette clé d'idempotence a déjà servi pour une autre requête."

current_claim: ContextVar[str | None] = ContextVar("idempotency_claim", default=None)
"""The record of the key the current request holds, for the unit of work's commit marker."""


class RequestInProgress(DomainError):
    status = 409
    default_message = "Une requête avec cette clé est en cours : réessayez dans un instant."

    def __init__(self) -> None:
        super().__init__()
        self.headers = {"Retry-After": "1"}


class AlreadyCommitted(DomainError):
    status = 409
    default_message = (
        "Cette requête a déjà été traitée, mais sa réponse n'a pas pu être conservée : "
        "consultez l'état de votre inscription."
    )


# --- the rules ---------------------------------------------------------------------------------------


def check_key(value: str) -> str:
    """The key as sent, or a 422 on the header."""
    if not KEY_PATTERN.fullmatch(value):
        raise Invalid.on(HEADER, INVALID_KEY)
    return value


def record_name(service: str, key: str) -> str:
    return f"{service}:idempotency:{hashlib.sha256(key.encode('ascii')).hexdigest()}"


def fingerprint(method: str, path: str, query: bytes, credentials: Iterable[str], body: bytes) -> str:
    """What makes two requests the same: each part length-prefixed, so that no two different
    requests run together into one string."""
    digest = hashlib.sha256()
    parts = [method.encode(), path.encode(), query, *(c.encode("latin-1") for c in credentials), body]
    for part in parts:
        digest.update(b"%d:" % len(part))
        digest.update(part)
    return digest.hexdigest()


def is_final(status: int) -> bool:
    """An answer a retry must get again. A 5xx (Redis away, not replicated, a bug) and a 429 (come
    back later) are not: the retry runs again."""
    return status < 500 and status != 429


def settled(record: Mapping[str, str], request_fingerprint: str) -> str | None:
    """The sealed answer of the earlier request with this key; None when it committed but its
    answer was lost. Raises when the key served another request, or while the first one runs."""
    if record.get("fingerprint") != request_fingerprint:
        raise Invalid.on(HEADER, KEY_REUSED)
    state = record.get("state")
    if state == ANSWERED:
        return record["answer"]
    if state == COMMITTED:
        return None
    raise RequestInProgress()


def _fernet(key: str) -> Fernet:
    # Not the record's name (sha256 of the key alone): whoever reads Redis cannot open answers.
    digest = hashlib.sha256(b"portail-idempotency-answer\0" + key.encode("ascii")).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


@dataclass(frozen=True)
class Answer:
    """What a retry gets again: the status, the body and the headers that matter."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @classmethod
    def of(cls, response: Response) -> Answer:
        kept = {name.lower() for name in KEPT_HEADERS}
        headers = tuple((name, value) for name, value in response.headers.items() if name.lower() in kept)
        return cls(response.status_code, headers, response.get_data())

    def sealed(self, key: str) -> str:
        plain = {"status": self.status, "headers": self.headers, "body": base64.b64encode(self.body).decode()}
        return _fernet(key).encrypt(json.dumps(plain).encode()).decode()

    @classmethod
    def opened(cls, sealed: str, key: str) -> Answer:
        """Raises cryptography's InvalidToken for another key."""
        plain = json.loads(_fernet(key).decrypt(sealed.encode()))
        headers = tuple((name, value) for name, value in plain["headers"])
        return cls(plain["status"], headers, base64.b64decode(plain["body"]))

    def replayed(self) -> Response:
        response = Response(self.body, status=self.status)
        del response.headers["Content-Type"]  # the original's, if it had one, comes next
        response.headers.extend(self.headers)
        response.headers[REPLAYED_HEADER] = "true"
        return response


# --- the records ---------------------------------------------------------------------------------------

_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HGETALL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', ARGV[2], 'owner', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return false
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and redis.call('HGET', KEYS[1], 'state') == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class IdempotencyRecords:
    """The only code that knows the `{service}:idempotency:` keys."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    @cached_property
    def _claim(self) -> Script:  # made on first use: an app that never sees a key needs none
        return self.redis.register_script(_CLAIM)

    @cached_property
    def _release(self) -> Script:
        return self.redis.register_script(_RELEASE)

    def claim(self, name: str, request_fingerprint: str, owner: str) -> dict[str, str] | None:
        """Take the key for this attempt (None), or the record already there, in one atomic step."""
        found = self._claim(keys=[name], args=[request_fingerprint, IN_PROGRESS, owner, CLAIM_SECONDS])
        if found is None:
            return None
        return dict(zip(found[::2], found[1::2], strict=True))

    def keep(self, name: str, answer: Answer, key: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset(
                name, mapping={"state": ANSWERED, "status": answer.status, "answer": answer.sealed(key)}
            )
            pipe.expire(name, RECORD_SECONDS)
            pipe.execute()

    def release(self, name: str, owner: str) -> bool:
        """Give the key back for a retry to run again, unless the attempt committed (or is not
        this one's any more); whether it was given back."""
        return bool(self._release(keys=[name], args=[owner, IN_PROGRESS]))


def stage_commit_marker(pipe: Pipeline) -> None:
    """In the unit of work's MULTI, just before EXEC: when the current request holds a key and
    the transaction writes, its record says `committed` together with the effect, so that a retry
    whose first attempt's answer was lost does not run it twice."""
    name = current_claim.get()
    if name is None or not len(pipe):
        return
    pipe.hset(name, "state", COMMITTED)
    pipe.expire(name, RECORD_SECONDS)


# --- the Flask hooks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    name: str
    key: str  # what seals its answer: the client's key with SECRET_KEY (HMAC-SHA256)
    owner: str
    token: Token[str | None]


def install(app: Flask, service: str, client: redis.Redis, settings: Settings) -> None:
    """Honour `Idempotency-Key` on every POST under `/{service}/api/` of `app`."""
    records = IdempotencyRecords(client)
    api_prefix = f"/{service}/api/"
    secret = (settings.secret_key or "").encode()

    @app.before_request
    def _claim_or_replay() -> Response | None:
        if request.method != "POST" or not request.path.startswith(api_prefix):
            return None
        sent = request.headers.get(HEADER)
        if sent is None or request.routing_exception is not None:
            return None
        key = check_key(sent)
        name = record_name(service, key)
        # Answers are sealed with the client's key and SECRET_KEY together: a short key alone
        # would let whoever reads Redis open them.
        sealing = hmac.new(secret, key.encode("ascii"), hashlib.sha256).hexdigest()
        owner = secrets.token_hex(16)
        this_request = _request_fingerprint()
        earlier = records.claim(name, this_request, owner)
        if earlier is None:
            g.idempotency_claim = Claim(name, sealing, owner, current_claim.set(name))
            return None
        sealed = settled(earlier, this_request)
        replication.fence_for(client, service, settings)  # what the client is about to see must survive
        if sealed is None:
            raise AlreadyCommitted()
        return Answer.opened(sealed, sealing).replayed()

    @app.after_request
    def _keep_answer(response: Response) -> Response:
        claim: Claim | None = g.get("idempotency_claim")
        if claim is None:
            return response
        g.idempotency_answered = True
        try:
            # A 429 or a 5xx is not kept, so that the retry runs again. A 429 after an effect was
            # committed (a sign-in failure counted, then the lock's 429) is the first answer, which
            # every retry gets; a 5xx after one leaves the record `committed` (409 to a retry).
            if not is_final(response.status_code):
                released = records.release(claim.name, claim.owner)
                if released or response.status_code >= 500:
                    return response
            records.keep(claim.name, Answer.of(response), claim.key)
            replication.fence_for(client, service, settings)
        except replication.NotReplicated as error:
            # Kept on the primary: a retry gets this answer once a replica has it.
            return app.make_response(error_response(error.status, error.message, headers=error.headers))
        except redis.RedisError as error:
            log.warning("idempotency record not kept: %s", error)
            if settings.redis_min_replicas > 0:
                # Its commit was not confirmed by the replicas either: say nothing that a failover
                # might take back; the retry finds the effect, or runs again.
                unconfirmed = replication.NotReplicated()
                return app.make_response(
                    error_response(unconfirmed.status, unconfirmed.message, headers=unconfirmed.headers)
                )
        return response

    @app.teardown_request
    def _forget_claim(_error: BaseException | None) -> None:
        claim: Claim | None = g.pop("idempotency_claim", None)
        if claim is None:
            return
        current_claim.reset(claim.token)
        if not g.pop("idempotency_answered", False):  # an exception no handler answered
            try:
                records.release(claim.name, claim.owner)
            except redis.RedisError as error:
                log.warning("idempotency key not given back: %s", error)


def _request_fingerprint() -> str:
    credentials = (request.headers.get("Authorization", ""), request.headers.get("Cookie", ""))
    return fingerprint(request.method, request.path, request.query_string, credentials, request.get_data())


# --- the OpenAPI documents ---------------------------------------------------------------------------------

PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": (
        "Facultatif : une clé choisie par le client (par exemple un UUID) pour réessayer sans risque. "
        "La même clé avec la même requête dans les 24 h rend la première réponse (en-tête "
        "`Idempotent-Replayed: true`), sans second effet ; avec une autre requête, 422 ; pendant que "
        "la première est en cours, 409 avec `Retry-After`."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}


class IdempotencyKeyPlugin(BasePlugin):
    """Lists the `Idempotency-Key` header on every POST under `/{service}/api/`."""

    def __init__(self, service: str) -> None:
        self.api_prefix = f"/{service}/api/"

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **kwargs: Any
    ) -> None:
        if not path or not path.startswith(self.api_prefix) or not operations or "post" not in operations:
            return
        parameters = operations["post"].setdefault("parameters", [])
        if not any(p.get("in") == "header" and p.get("name") == HEADER for p in parameters):
            parameters.append(copy.deepcopy(PARAMETER))
