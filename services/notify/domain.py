"""How notify's emails say things, and when an event's email may be sent. Pure: no Redis, no
SMTP, no clock."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, StrEnum
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stdnum.fr import siret

from shared.wording import validity_in_words

SUBJECT = "Activez votre compte sur le portail de facturation"
ATTEMPT_SUBJECT = "Tentative de création de compte avec votre adresse électronique"
FLAGGED_SUBJECT = "Votre structure n'a pas pu être vérifiée"

_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class ActivationEmail:
    """What the templates of the activation email are given."""

    to: str
    first_name: str
    last_name: str
    link: str
    validity: str
    deadline: str
    resent: bool
    approved: bool  # an attachment request approved: the first sentence says so
    subject: str = SUBJECT


def clean_name(raw: str) -> str:
    """A name as one line of text: control characters (CR, LF, TAB, NUL…) become spaces.

    Names never go into headers; this keeps a crafted name from breaking the layout of the
    plain-text body either. HTML is escaped by the template, not here.
    """
    chars = (" " if unicodedata.category(c).startswith("C") else c for c in raw)
    return _SPACES.sub(" ", "".join(chars)).strip()


def activation_link(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/activate/activations/{quote(token, safe='')}"


def _paris() -> tuple[ZoneInfo | None, str]:
    try:
        return ZoneInfo("Europe/Paris"), "heure de Paris"
    except ZoneInfoNotFoundError:  # no time zone data installed: say it in UTC
        return None, "UTC"


def deadline_in_words(moment: datetime) -> str:
    """`2025-03-12T14:05:00+00:00` → "12 mars 2025 à 15 h 05 (heure de Paris)"."""
    if moment.tzinfo is None:  # the contract's times are UTC
        moment = moment.replace(tzinfo=UTC)
    zone, label = _paris()
    local = moment.astimezone(zone) if zone else moment
    day = "1er" if local.day == 1 else str(local.day)
    return f"{day} {_MONTHS[local.month - 1]} {local.year} à {local.hour} h {local.minute:02d} ({label})"


def activation_email(
    *,
    to: str,
    first_name: str,
    last_name: str,
    token: str,
    public_base_url: str,
    ttl_seconds: int,
    expires_at: datetime,
    reason: str,
) -> ActivationEmail:
    return ActivationEmail(
        to=to,
        first_name=clean_name(first_name),
        last_name=clean_name(last_name),
        link=activation_link(public_base_url, token),
        validity=validity_in_words(ttl_seconds),
        deadline=deadline_in_words(expires_at),
        resent=reason == "resent",
        approved=reason == "approved",
    )


@dataclass(frozen=True)
class AttemptEmail:
    """What the templates of the warning to an account's holder are given. No link at all: the
    email must give nothing to whoever typed the address."""

    to: str
    first_name: str
    last_name: str
    when: str
    resent: bool
    subject: str = ATTEMPT_SUBJECT


def attempt_email(
    *, to: str, first_name: str | None, last_name: str | None, attempted_at: datetime, reason: str
) -> AttemptEmail:
    return AttemptEmail(
        to=to,
        first_name=clean_name(first_name or ""),
        last_name=clean_name(last_name or ""),
        when=deadline_in_words(attempted_at),
        resent=reason == "resent",
    )


@dataclass(frozen=True)
class FlaggedStructureEmail:
    """What the templates of the email to a person whose structure, opened while SIRENE could
    not be asked, was found unknown or closed since are given: the SIRET, why, and where to
    start again. No other personal data: the event carries none, and the email needs none."""

    to: str
    siret: str  # as people read it: `552 100 554 00013`
    reason: str  # the check's finding, in words
    restart_link: str  # step 1
    subject: str = FLAGGED_SUBJECT


FLAG_REASONS = {
    "unknown": "numéro SIRET inconnu de la base SIRENE de l'INSEE",
    "closed": "établissement fermé",
}
"""StructureFlagged's `reason` → the finding, as the email tells it."""


def restart_link(public_base_url: str) -> str:
    return f"{public_base_url.rstrip('/')}/identify/"


def flagged_structure_email(
    *, to: str, identifier: str, reason: str, public_base_url: str
) -> FlaggedStructureEmail:
    return FlaggedStructureEmail(
        to=to,
        siret=siret.format(identifier) if siret.is_valid(identifier) else identifier,
        reason=FLAG_REASONS[reason],
        restart_link=restart_link(public_base_url),
    )


Email = ActivationEmail | AttemptEmail | FlaggedStructureEmail


# --- once per event ---------------------------------------------------------------------------------

LEASE_SECONDS = 120
"""How long one copy of the task may hold an email's lease: far above the SMTP time-outs of one
send, so that the lease lapses only when its holder died."""


class Outcome(StrEnum):
    """What became of an event's email: the email task's result. `sent` and `refused` are also
    stored, as the email's status."""

    SENT = "sent"
    ALREADY_DONE = "already-done"  # another copy of the task dealt with it
    DROPPED = "dropped"  # the event cannot make an email (invalid data, token that will not open)
    REFUSED = "refused"  # the SMTP server refused it for good


@dataclass(frozen=True)
class Delivery:
    """Where an event's email stands: its outcome once dealt with (`sent` or `refused`), and the
    copy of the task holding its lease, if any."""

    outcome: Outcome | None = None
    lease_holder: str | None = None


class Claim(Enum):
    """What a copy of the task may do with an event's email."""

    SEND = "send"  # the lease is (now) this copy's
    DONE = "done"  # already dealt with: nothing to do
    WAIT = "wait"  # another copy holds the lease: try again later


def claim(delivery: Delivery, owner: str) -> Claim:
    """The rule of the lease. `owner` is the broker message's delivery tag, which a message
    requeued after its worker died keeps: that copy takes its own lease over at once instead of
    waiting for it to lapse."""
    if delivery.outcome is not None:
        return Claim.DONE
    if delivery.lease_holder not in (None, owner):
        return Claim.WAIT
    return Claim.SEND


def holds_lease(delivery: Delivery, owner: str) -> bool:
    """Only the holder frees a lease: one that lapsed and was taken by another copy stays theirs."""
    return delivery.lease_holder == owner
