"""The authenticator app (TOTP, RFC 6238, with `pyotp`) and its recovery codes: the rules.

Enrolment, from « Mon compte »: a new secret is kept *pending* (ENROLMENT_TTL_SECONDS) and shown
as a QR code (`segno`, inline SVG) and as text; the first code computed from it confirms it, and
ten recovery codes are then shown once. Afterwards:

- the secret rests sealed with SECRET_KEY (`shared.sealing`): Redis alone cannot compute codes;
- a code is accepted in its 30-second step or the one before or after (clocks drift), and never
  twice: the last step accepted is kept, and only later steps are accepted after it;
- a recovery code (80 random bits, `XXXX-XXXX-XXXX-XXXX` in Crockford's base32) is kept as its
  SHA-256 and works once; all ten are compared, in constant time, whichever matches.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace

import pyotp
import segno

from services.activate.domain import Account, to_holder
from services.activate.sign_in.codes import is_six_digits, same
from shared.contracts import SecondFactorEnrolled, SecondFactorRemoved
from shared.errors import Conflict, Gone, Invalid

ISSUER = "Portail de facturation"
QR_TITLE = "QR code à scanner avec votre application d'authentification"
METHOD = "totp"
DRIFT_STEPS = 1
ENROLMENT_TTL_SECONDS = 15 * 60
NO_STEP = -1
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O nor U
RECOVERY_GROUPS, RECOVERY_GROUP_LENGTH = 4, 4
_CROCKFORD_READING = str.maketrans("OIL", "011")  # what a person may type for 0 and 1


@dataclass(frozen=True)
class SecondFactor:
    """An enrolled authenticator app: its sealed secret, the last step it signed in with, the
    hashes of the recovery codes not used yet."""

    registration_id: str
    sealed_secret: str
    last_step: int
    recovery_hashes: tuple[str, ...]
    enrolled_at: int


@dataclass(frozen=True)
class PendingEnrolment:
    registration_id: str
    sealed_secret: str
    expires_at: int


class AlreadyEnrolled(Conflict):
    default_message = (
        "Une application d'authentification est déjà associée à ce compte : retirez-la d'abord pour en "
        "associer une autre."
    )


class NoEnrolment(Gone):
    default_message = (
        "Aucune association d'application n'est en cours, ou elle a expiré : recommencez depuis le début."
    )


class NotEnrolled(Conflict):
    default_message = "Aucune application d'authentification n'est associée à ce compte."


WRONG_CODE = (
    "Code incorrect : saisissez les 6 chiffres affichés en ce moment par l'application, "
    "après avoir scanné le QR code ou saisi la clé."
)


# --- TOTP ------------------------------------------------------------------------------------------


def new_secret() -> str:
    """160 random bits in base32, as RFC 4226 recommends."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, login_email: str) -> str:
    """The `otpauth://` URI that the QR code holds: the app shows the portal and the login."""
    return pyotp.TOTP(secret).provisioning_uri(name=login_email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code as an inline `<svg>` element (no XML declaration): no image URL, nothing for
    the Content-Security-Policy to allow."""
    return segno.make(uri, error="m").svg_inline(scale=5, border=4, title=QR_TITLE)


def grouped(secret: str) -> str:
    """The secret as a person types it: groups of four."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def matching_step(secret: str, code: str, now: float, after_step: int = NO_STEP) -> int | None:
    """The time step whose code `code` (normalised) is, among the current one and DRIFT_STEPS
    around it, and later than `after_step`; None otherwise. Every candidate is compared."""
    if not is_six_digits(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if same(code, totp.generate_otp(step)) and step > after_step and found is None:
            found = step
    return found


def ensure_enrolment_code(secret: str, code: str, now: float) -> int:
    step = matching_step(secret, code, now)
    if step is None:
        raise Invalid.on("code", WRONG_CODE)
    return step


# --- recovery codes ----------------------------------------------------------------------------------


def new_recovery_codes() -> list[str]:
    length = RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(length))
        codes.append(
            "-".join(raw[i : i + RECOVERY_GROUP_LENGTH] for i in range(0, length, RECOVERY_GROUP_LENGTH))
        )
    return codes


def recovery_hash(code: str) -> str:
    """`code` normalised (`sign_in.codes.normalise`); O, I and L read as 0, 1 and 1."""
    canonical = code.replace("-", "").upper().translate(_CROCKFORD_READING)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def matching_recovery_hash(code: str, hashes: tuple[str, ...]) -> str | None:
    """The stored hash that `code` matches, comparing it with every one."""
    candidate = recovery_hash(code)
    found = None
    for stored in hashes:
        if same(candidate, stored) and found is None:
            found = stored
    return found


# --- the account's second factor ---------------------------------------------------------------------


def ensure_not_enrolled(factor: SecondFactor | None) -> None:
    if factor is not None:
        raise AlreadyEnrolled()


def ensure_pending(pending: PendingEnrolment | None, now: float) -> PendingEnrolment:
    if pending is None or now >= pending.expires_at:
        raise NoEnrolment()
    return pending


def ensure_enrolled(factor: SecondFactor | None) -> SecondFactor:
    if factor is None:
        raise NotEnrolled()
    return factor


def pending_enrolment(registration_id: str, sealed_secret: str, now: float) -> PendingEnrolment:
    return PendingEnrolment(registration_id, sealed_secret, int(now) + ENROLMENT_TTL_SECONDS)


def enrolled(
    pending: PendingEnrolment, first_step: int, recovery_hashes: tuple[str, ...], now: float
) -> SecondFactor:
    """The confirmed app: the step of its first code is spent already (it cannot sign in)."""
    return SecondFactor(pending.registration_id, pending.sealed_secret, first_step, recovery_hashes, int(now))


def after_totp(factor: SecondFactor, step: int, sealed_secret: str | None = None) -> SecondFactor:
    """The step signed in with is spent; `sealed_secret` when it was sealed again (key rotation)."""
    return replace(factor, last_step=step, sealed_secret=sealed_secret or factor.sealed_secret)


def after_recovery(factor: SecondFactor, used_hash: str) -> SecondFactor:
    return replace(factor, recovery_hashes=tuple(h for h in factor.recovery_hashes if h != used_hash))


def enrolled_event(account: Account) -> SecondFactorEnrolled:
    return SecondFactorEnrolled(**to_holder(account), method=METHOD)


def removed_event(account: Account) -> SecondFactorRemoved:
    return SecondFactorRemoved(**to_holder(account), method=METHOD)
