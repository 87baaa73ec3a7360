"""structure's dependencies, built once per process for its app and its consumer."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import redis

from services.structure.captcha import CaptchaMaker, SealingKeys, random_text
from services.structure.repository import StructureUnitOfWork
from services.structure.sirene.configured import configured_register
from services.structure.sirene.sources import Register
from shared.arrivals import Arrivals, has_unhandled
from shared.bootstrap import Clock, Wiring, arrivals, base_dependencies
from shared.events import stream_for
from shared.settings import Settings

SERVICE = "structure"


@dataclass(frozen=True, kw_only=True)
class Structure(Wiring):
    register: Register  # SIRENE's sources, in SIRENE_SOURCE's order
    captchas: CaptchaMaker
    sealing_keys: SealingKeys  # seal the challenges' texts

    def uow(self) -> StructureUnitOfWork:
        return StructureUnitOfWork(
            self.redis,
            SERVICE,
            stream_maxlen=self.settings.event_stream_maxlen,
            min_replicas=self.settings.redis_min_replicas,
            replica_timeout_ms=self.settings.redis_replica_timeout_ms,
            clock=self.clock,
        )

    @cached_property
    def registrations(self) -> Arrivals:
        """The registrations the consumer keeps from RegistrationStarted, for step 2 to wait on."""
        return arrivals(self, SERVICE, "RegistrationStarted")

    def activations_pending(self) -> bool:
        """Whether the consumer has AccountActivated entries not handled yet: an activation that
        holds a structure may be on its way, and the sweep releases nothing meanwhile."""
        return has_unhandled(self.redis, SERVICE, stream_for("AccountActivated"))


def bootstrap(
    settings: Settings | None = None,
    *,
    client: redis.Redis | None = None,
    clock: Clock = time.time,
    register: Register | None = None,
    captcha_text: Callable[[], str] = random_text,
) -> Structure:
    """`register` defaults to SIRENE_SOURCE's sources; `captcha_text` draws each challenge's
    characters (tests pass their own to know the answer)."""
    settings, client = base_dependencies(settings, client)
    return Structure(
        settings,
        client,
        clock,
        register=register or configured_register(settings, client, clock),
        captchas=CaptchaMaker(text=captcha_text),
        # The challenges' texts are sealed with SECRET_KEY (and the pages' forms signed with
        # it): fail now, not in the middle of a request.
        sealing_keys=SealingKeys(settings.require_secret_key(), settings.secret_key_previous),
    )
