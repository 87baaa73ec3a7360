"""One `Settings` object, built from the environment once and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from limits import parse_many

SMTP_SECURITY_MODES = ("none", "starttls", "ssl")


class SettingsError(ValueError):
    """A configuration value is missing or malformed; raised at start, never mid-request."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


SIRENE_SOURCES = ("stock", "insee", "recherche")


def _sirene_sources(env: Mapping[str, str]) -> tuple[str, ...]:
    """SIRENE_SOURCE: the sources asked, in order, e.g. `stock,insee`; `insee` needs a key."""
    names = tuple(n.strip().lower() for n in env.get("SIRENE_SOURCE", "stock").split(",") if n.strip())
    unknown = [n for n in names if n not in SIRENE_SOURCES]
    if not names or unknown or len(set(names)) != len(names):
        raise SettingsError(
            f"SIRENE_SOURCE must list some of {', '.join(SIRENE_SOURCES)} once each, in order, got "
            f"{env.get('SIRENE_SOURCE')!r}"
        )
    if "insee" in names and not (env.get("INSEE_API_KEY") or "").strip():
        raise SettingsError("SIRENE_SOURCE names insee: INSEE_API_KEY must be set (INSEE's API portal)")
    return names


def _sentinels(raw: str) -> tuple[tuple[str, int], ...]:
    """REDIS_SENTINELS: `host:port,host:port,…` (empty: no Sentinel, REDIS_URL names the server)."""
    found = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"REDIS_SENTINELS must list host:port pairs, got {item!r}")
        found.append((host.strip("[]"), int(port)))
    return tuple(found)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")


def _rate(env: Mapping[str, str], name: str, default: str) -> str:
    """A rate limit such as "10 per minute;100 per hour" (the `limits` notation), checked now."""
    raw = env.get(name, "").strip() or default
    try:
        parse_many(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must look like '10 per minute;100 per hour', got {raw!r}") from exc
    return raw


# Each rate limit: its setting, its default. Every request counts, except at step 1 per email
# where only registrations actually started do (a person correcting a typo is not held back).
RATE_LIMIT_DEFAULTS = {
    "RATE_LIMIT_REGISTRATION_PER_IP": "10 per minute;100 per hour",
    "RATE_LIMIT_REGISTRATION_PER_EMAIL": "5 per hour;20 per day",
    "RATE_LIMIT_STRUCTURE_PER_IP": "20 per minute;200 per hour",
    "RATE_LIMIT_STRUCTURE_PER_REGISTRATION": "10 per minute;30 per hour",
    "RATE_LIMIT_CAPTCHA_PER_IP": "20 per minute;200 per hour",
    "RATE_LIMIT_CAPTCHA_PER_REGISTRATION": "10 per minute;30 per hour",
    "RATE_LIMIT_RESEND_PER_IP": "10 per minute;50 per hour",
    "RATE_LIMIT_RESEND_PER_REGISTRATION": "2 per minute;10 per day",
    "RATE_LIMIT_ACTIVATION_PER_IP": "30 per minute;300 per hour",
    "RATE_LIMIT_ACTIVATION_PER_TOKEN": "10 per minute;50 per hour",
    "RATE_LIMIT_LINK_REQUEST_PER_IP": "10 per minute;50 per hour",
    "RATE_LIMIT_LINK_REQUEST_PER_EMAIL": "3 per hour;10 per day",
    "RATE_LIMIT_STEP_READS_PER_IP": "60 per minute;600 per hour",
    # Suggestions come while a person types (debounced): more than step 1's submissions.
    "RATE_LIMIT_COMPANY_SEARCH_PER_IP": "60 per minute;600 per hour",
    # Sign-in and recovery, per client address (the per-account throttle is in activate's rules).
    "RATE_LIMIT_SIGN_IN_PER_IP": "30 per minute;300 per hour",
    "RATE_LIMIT_PASSWORD_RESET_PER_IP": "10 per minute;50 per hour",
    "RATE_LIMIT_PASSWORD_RESET_PER_EMAIL": "3 per hour;10 per day",
}


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    # High availability: the Sentinels that name the primary (host:port, …) and the name it is
    # monitored under; when set, REDIS_URL only lends its database number and password.
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_master_name: str = "portal"
    # Replicas that must hold a transaction's writes (WAIT) before a request is answered or an
    # event handled; within `redis_replica_timeout_ms`, else 503 (the client may retry safely).
    redis_min_replicas: int = 0
    redis_replica_timeout_ms: int = 1000
    port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_security: str = "none"
    mail_from: str = "Portail de facturation <ne-pas-repondre@portail.invalid>"
    activation_ttl_seconds: int = 3600
    registration_ttl_seconds: int = 86400
    # A structure whose first account is not activated within this is released (its identifier
    # can open a new structure): a SIRET cannot be held for ever by a registration never activated.
    structure_claim_ttl_seconds: int = 7 * 24 * 3600
    # An attachment request not decided by its structure's gestionnaire principal within this lapses.
    attachment_ttl_seconds: int = 30 * 24 * 3600
    expiry_sweep_seconds: int = 60
    captcha_enabled: bool = True
    # Seals activation tokens between activate and notify; required by both.
    secret_key: str | None = None
    # The key SECRET_KEY replaced, while rotating: tokens it sealed still open (shared/sealing.py).
    secret_key_previous: str | None = None
    sirene_dir: str = os.path.join(os.path.dirname(__file__), "..", "services", "structure", "data")
    # SIRENE: the sources asked, in order (stock, insee, recherche), the imported stock's file, and
    # the two APIs (services/structure/sirene/).
    sirene_source: tuple[str, ...] = ("stock",)
    sirene_db: str = "var/sirene.sqlite3"
    insee_api_url: str = "https://api.insee.fr/api-sirene/3.11"
    insee_api_key: str | None = None
    recherche_entreprises_url: str = "https://recherche-entreprises.api.gouv.fr"
    # Structures opened while no source could check their SIRET are checked again this often.
    sirene_verify_sweep_seconds: int = 300
    # Life after activation (services/activate): the emailed sign-in code's and the reset link's
    # validity, and a session's idle and absolute time-outs.
    sign_in_code_ttl_seconds: int = 600
    password_reset_ttl_seconds: int = 3600
    session_idle_seconds: int = 1800
    session_max_seconds: int = 12 * 3600
    mail_dir: str = "var/mail"
    # The mailbox pages and API (`/notify/mailbox`): set by `make run` only when it runs the local
    # mail catcher and the gateway listens on a loopback address; they show every activation link.
    mailbox_enabled: bool = False
    # How long a read waits for an event not yet handled before answering 404, and how many
    # requests of one process may wait at once (beyond: 503 with Retry-After; shared/arrivals.py).
    event_wait_seconds: float = 5.0
    event_waits_per_process: int = 2
    # Event consumers: an entry idle this long on a consumer is claimed by another.
    event_claim_idle_ms: int = 30000
    event_max_deliveries: int = 5
    event_stream_maxlen: int = 1_000_000
    # Stream entries older than this are trimmed once every consumer group has handled them
    # (shared/retention.py); the dead letters, which hold whole events, at their own retention.
    event_retention_seconds: int = 7 * 24 * 3600
    dead_letter_retention_seconds: int = 30 * 24 * 3600
    email_retry_backoff_max: int = 60
    email_max_retries: int = 60
    # Anti-automation (shared/limits.py): off only for tests that run many flows from one address.
    rate_limits_enabled: bool = True
    rate_limit_registration_per_ip: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_REGISTRATION_PER_IP"]
    rate_limit_registration_per_email: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_REGISTRATION_PER_EMAIL"]
    rate_limit_structure_per_ip: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_STRUCTURE_PER_IP"]
    rate_limit_structure_per_registration: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_STRUCTURE_PER_REGISTRATION"]
    rate_limit_captcha_per_ip: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_CAPTCHA_PER_IP"]
    rate_limit_captcha_per_registration: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_CAPTCHA_PER_REGISTRATION"]
    rate_limit_resend_per_ip: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_RESEND_PER_IP"]
    rate_limit_resend_per_registration: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_RESEND_PER_REGISTRATION"]
    rate_limit_activation_per_ip: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_ACTIVATION_PER_IP"]
    rate_limit_activation_per_token: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_ACTIVATION_PER_TOKEN"]
    rate_limit_link_request_per_ip: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_LINK_REQUEST_PER_IP"]
    rate_limit_link_request_per_email: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_LINK_REQUEST_PER_EMAIL"]
    rate_limit_step_reads_per_ip: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_STEP_READS_PER_IP"]
    rate_limit_company_search_per_ip: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_COMPANY_SEARCH_PER_IP"]
    rate_limit_sign_in_per_ip: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_SIGN_IN_PER_IP"]
    rate_limit_password_reset_per_ip: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_PASSWORD_RESET_PER_IP"]
    rate_limit_password_reset_per_email: str = RATE_LIMIT_DEFAULTS["RATE_LIMIT_PASSWORD_RESET_PER_EMAIL"]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        port = _int(env, "PORT", defaults.port, 1)
        security = env.get("SMTP_SECURITY", "none").strip().lower() or "none"
        if security not in SMTP_SECURITY_MODES:
            raise SettingsError(f"SMTP_SECURITY must be one of {SMTP_SECURITY_MODES}, got {security!r}")
        return cls(
            redis_url=env.get("REDIS_URL") or defaults.redis_url,
            redis_sentinels=_sentinels(env.get("REDIS_SENTINELS", "")),
            redis_master_name=env.get("REDIS_MASTER_NAME") or defaults.redis_master_name,
            redis_min_replicas=_int(env, "REDIS_MIN_REPLICAS", defaults.redis_min_replicas, 0),
            redis_replica_timeout_ms=_int(
                env, "REDIS_REPLICA_TIMEOUT_MS", defaults.redis_replica_timeout_ms, 10
            ),
            port=port,
            public_base_url=(env.get("PUBLIC_BASE_URL") or f"http://127.0.0.1:{port}").rstrip("/"),
            smtp_host=env.get("SMTP_HOST") or None,
            smtp_port=_int(env, "SMTP_PORT", 465 if security == "ssl" else 25, 1),
            smtp_username=env.get("SMTP_USERNAME") or None,
            smtp_password=env.get("SMTP_PASSWORD") or None,
            smtp_security=security,
            mail_from=env.get("MAIL_FROM") or defaults.mail_from,
            activation_ttl_seconds=_int(env, "ACTIVATION_TTL_SECONDS", defaults.activation_ttl_seconds, 1),
            registration_ttl_seconds=_int(
                env, "REGISTRATION_TTL_SECONDS", defaults.registration_ttl_seconds, 1
            ),
            structure_claim_ttl_seconds=_int(
                env, "STRUCTURE_CLAIM_TTL_SECONDS", defaults.structure_claim_ttl_seconds, 1
            ),
            attachment_ttl_seconds=_int(env, "ATTACHMENT_TTL_SECONDS", defaults.attachment_ttl_seconds, 1),
            expiry_sweep_seconds=_int(env, "EXPIRY_SWEEP_SECONDS", defaults.expiry_sweep_seconds, 1),
            captcha_enabled=_bool(env, "CAPTCHA_ENABLED", defaults.captcha_enabled),
            secret_key=env.get("SECRET_KEY") or None,
            secret_key_previous=env.get("SECRET_KEY_PREVIOUS") or None,
            sirene_dir=env.get("SIRENE_DIR") or defaults.sirene_dir,
            sirene_source=_sirene_sources(env),
            sirene_db=env.get("SIRENE_DB") or defaults.sirene_db,
            insee_api_url=(env.get("INSEE_API_URL") or defaults.insee_api_url).rstrip("/"),
            insee_api_key=env.get("INSEE_API_KEY") or None,
            recherche_entreprises_url=(
                env.get("RECHERCHE_ENTREPRISES_URL") or defaults.recherche_entreprises_url
            ).rstrip("/"),
            sirene_verify_sweep_seconds=_int(
                env, "SIRENE_VERIFY_SWEEP_SECONDS", defaults.sirene_verify_sweep_seconds, 1
            ),
            sign_in_code_ttl_seconds=_int(
                env, "SIGN_IN_CODE_TTL_SECONDS", defaults.sign_in_code_ttl_seconds, 60
            ),
            password_reset_ttl_seconds=_int(
                env, "PASSWORD_RESET_TTL_SECONDS", defaults.password_reset_ttl_seconds, 60
            ),
            session_idle_seconds=_int(env, "SESSION_IDLE_SECONDS", defaults.session_idle_seconds, 60),
            session_max_seconds=_int(env, "SESSION_MAX_SECONDS", defaults.session_max_seconds, 60),
            mail_dir=env.get("MAIL_DIR") or defaults.mail_dir,
            mailbox_enabled=_bool(env, "MAILBOX_ENABLED", defaults.mailbox_enabled),
            event_wait_seconds=_int(env, "EVENT_WAIT_MS", round(defaults.event_wait_seconds * 1000)) / 1000,
            event_waits_per_process=_int(env, "EVENT_WAITS_PER_PROCESS", defaults.event_waits_per_process, 1),
            event_claim_idle_ms=_int(env, "EVENT_CLAIM_IDLE_MS", defaults.event_claim_idle_ms, 1),
            event_max_deliveries=_int(env, "EVENT_MAX_DELIVERIES", defaults.event_max_deliveries, 1),
            event_stream_maxlen=_int(env, "EVENT_STREAM_MAXLEN", defaults.event_stream_maxlen, 1000),
            event_retention_seconds=_int(
                env, "EVENT_RETENTION_SECONDS", defaults.event_retention_seconds, 60
            ),
            dead_letter_retention_seconds=_int(
                env, "DEAD_LETTER_RETENTION_SECONDS", defaults.dead_letter_retention_seconds, 60
            ),
            email_retry_backoff_max=_int(env, "EMAIL_RETRY_BACKOFF_MAX", defaults.email_retry_backoff_max, 1),
            email_max_retries=_int(env, "EMAIL_MAX_RETRIES", defaults.email_max_retries, 0),
            rate_limits_enabled=_bool(env, "RATE_LIMITS_ENABLED", defaults.rate_limits_enabled),
            **{name.lower(): _rate(env, name, default) for name, default in RATE_LIMIT_DEFAULTS.items()},
        )

    def require_secret_key(self) -> str:
        if not self.secret_key:
            raise SettingsError("SECRET_KEY must be set (make run generates one under var/)")
        return self.secret_key
