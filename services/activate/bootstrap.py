"""activate's dependencies, built once per process for its app, consumer and tasks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import redis
from argon2 import PasswordHasher

from services.activate.my_account.domain import CONTACT_LINK_TTL_SECONDS
from services.activate.passwords import make_hasher
from services.activate.repository import ActivateUnitOfWork
from services.activate.sign_in.handlers import SignInDeps
from services.activate.tokens import LinkMaker
from shared.arrivals import Arrivals
from shared.bootstrap import Clock, Wiring, arrivals, base_dependencies
from shared.settings import Settings

SERVICE = "activate"


@dataclass(frozen=True)
class Activate(Wiring):
    """Besides Redis and the clock: the argon2id hasher and the key that seals links for notify;
    what each use case makes of them (its links, sign-in's codes) is made once, on first use."""

    hasher: PasswordHasher = field(default_factory=make_hasher)
    sealing_key: str = ""

    def uow(self) -> ActivateUnitOfWork:
        return ActivateUnitOfWork(
            self.redis,
            SERVICE,
            stream_maxlen=self.settings.event_stream_maxlen,
            min_replicas=self.settings.redis_min_replicas,
            replica_timeout_ms=self.settings.redis_replica_timeout_ms,
            clock=self.clock,
            session_idle_seconds=self.settings.session_idle_seconds,
            session_max_seconds=self.settings.session_max_seconds,
        )

    @cached_property
    def links(self) -> LinkMaker:
        return LinkMaker(self.sealing_key, self.settings.activation_ttl_seconds)

    @cached_property
    def password_reset_links(self) -> LinkMaker:
        return LinkMaker(self.sealing_key, self.settings.password_reset_ttl_seconds)

    @cached_property
    def contact_email_links(self) -> LinkMaker:
        """The links that confirm a new contact email (« Mon compte »)."""
        return LinkMaker(self.sealing_key, CONTACT_LINK_TTL_SECONDS)

    @cached_property
    def sign_in_deps(self) -> SignInDeps:
        """What sign-in and the authenticator app need besides the unit of work, made once per
        process with its dummy hash: no password check is ever slowed by making it (an unknown
        email would answer later than a known one)."""
        deps = SignInDeps(
            hasher=self.hasher,
            secret_key=self.sealing_key,
            code_ttl_seconds=self.settings.sign_in_code_ttl_seconds,
            secret_key_previous=self.settings.secret_key_previous,
        )
        deps.dummy_hash  # noqa: B018 (made now, before any password is checked with it)
        return deps

    @cached_property
    def structures(self) -> Arrivals:
        """The pending accounts the consumer opens from StructureConfirmed (or AttachmentRequested),
        for step 3 to wait on."""
        return arrivals(self, SERVICE, "StructureConfirmed", "AttachmentRequested")


def bootstrap(
    settings: Settings | None = None,
    *,
    client: redis.Redis | None = None,
    clock: Clock = time.time,
    hasher: PasswordHasher | None = None,
) -> Activate:
    settings, client = base_dependencies(settings, client)
    # Links cannot be sealed without SECRET_KEY: fail now, not in the middle of a request.
    sealing_key = settings.require_secret_key()
    return Activate(settings, client, clock, hasher=hasher or make_hasher(), sealing_key=sealing_key)
