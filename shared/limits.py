"""Rate limits against automated abuse: Flask-Limiter, counting in the project's Redis.

A service names its limited actions with `Guard`s: the endpoints of the action (its JSON API
and its page share the same buckets, so switching from one to the other gains nothing), the
methods concerned, and `Rule`s, each a bucket counted per client address or per what is under
attack (a login email, a registration, a token). The limits themselves are settings.

Keys live under `limits:` in the Redis at REDIS_URL; emails and tokens appear in them only as
their SHA-256. Nothing connects before the first limited request. Over a limit the answer is
429 with `Retry-After`: the usual JSON error under `/{service}/api/`, a French page elsewhere.
When Redis is down the check raises `redis.ConnectionError`, which the service answers with 503.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import redis
from email_validator import EmailNotValidError, validate_email
from flask import Flask, render_template, request
from flask_limiter import Limiter, RateLimitExceeded

from shared.http_api import error_response
from shared.settings import Settings
from shared.wording import validity_in_words

KEY_PREFIX = "limits"
STRATEGY = "moving-window"  # no burst of twice the limit across a window boundary
DEFAULT_RETRY_AFTER = 60

Key = Callable[[], str | None]
"""What a request is counted against; None when the rule does not apply to this request."""


@dataclass(frozen=True)
class Rule:
    bucket: str  # e.g. "registration-ip": the same bucket for the API and the page
    limits: str  # "10 per minute;100 per hour"
    key: Key
    only_successes: bool = False  # count only requests answered below 400


@dataclass(frozen=True)
class Guard:
    endpoints: tuple[str, ...]  # Flask endpoint names
    methods: tuple[str, ...]
    rules: tuple[Rule, ...]


# --- what a request is counted against --------------------------------------------------------


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


IPV6_PREFIX = 64


def client_address() -> str:
    """The client's address; behind the gateway ProxyFix has taken it from X-Forwarded-For.

    An IPv6 client is counted by its /64: one subscriber line or host usually owns a whole /64
    and picks any address in it at will, so counting single addresses would count nothing."""
    address = request.remote_addr or "unknown"
    return address_key(address)


def address_key(address: str) -> str:
    """`address` itself for IPv4 (or anything not an IP address), its /64 network for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # an IPv4 client seen through a dual-stack socket
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


def path_value(name: str, *, hashed: bool = False) -> Key:
    """A part of the URL, such as the registration id; `hashed` for a secret such as a token."""

    def key() -> str | None:
        value = (request.view_args or {}).get(name)
        if not isinstance(value, str) or not value:
            return None
        return digest(value) if hashed or len(value) > 64 else value

    return key


def email_field(name: str) -> Key:
    """An email sent in the JSON body or the form, counted as the login it names, hashed."""

    def key() -> str | None:
        body = request.get_json(silent=True) if request.is_json else request.form
        value = body.get(name) if isinstance(body, Mapping) else None
        if not isinstance(value, str) or not value.strip():
            return None
        return digest(login_of(value))

    return key


def login_of(email: str) -> str:
    """The one spelling of every way to write a login email: email-validator's normalisation (as
    identify normalises the login), the domain in its ASCII (IDNA) form so that `exämple.com`
    and `xn--exmple-cua.com` are one domain, and no case (as activate compares logins). An
    address email-validator refuses is only stripped and case-folded: identify refuses it too,
    but the attempt still counts."""
    address = email.strip()
    try:
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        pass
    else:
        address = f"{valid.local_part}@{valid.ascii_domain}"
    return unicodedata.normalize("NFKC", address).casefold()


def per_client(bucket: str, limits: str) -> Rule:
    return Rule(bucket, limits, client_address)


# --- installing them --------------------------------------------------------------------------


def install(
    app: Flask, service: str, settings: Settings, client: redis.Redis, guards: Iterable[Guard]
) -> Limiter | None:
    """Put the guards on `app`'s endpoints (which must be registered already); None when off."""
    if not settings.rate_limits_enabled:
        return None
    limiter = Limiter(
        client_address,
        app=app,
        strategy=STRATEGY,
        storage_uri=settings.redis_url,
        # The app's own connection pool: no second pool, and no connection made here.
        storage_options={"connection_pool": client.connection_pool, "key_prefix": KEY_PREFIX},
    )
    for guard in guards:
        for endpoint in guard.endpoints:
            view = app.view_functions.get(endpoint)
            if view is None:
                raise LookupError(f"no endpoint {endpoint!r} to rate-limit in {service}")
            for rule in guard.rules:
                view = limiter.shared_limit(
                    rule.limits,
                    scope=rule.bucket,
                    key_func=_never_empty(rule.key),
                    methods=list(guard.methods),
                    exempt_when=lambda key=rule.key: key() is None,
                    deduct_when=_succeeded if rule.only_successes else None,
                )(view)
            app.view_functions[endpoint] = view

    @app.errorhandler(RateLimitExceeded)
    def _too_many(error: RateLimitExceeded):
        wait = retry_after(limiter)
        headers = {"Retry-After": str(wait)}
        if request.path.startswith(f"/{service}/api/"):
            return error_response(429, headers=headers)
        page = render_template(
            "portal/problem.html",
            title="Trop de tentatives",
            message="Vous avez fait trop de tentatives en peu de temps. Pour la sécurité des comptes, "
            f"cette action est suspendue : réessayez dans {validity_in_words(wait)}.",
            step=None,
        )
        return page, 429, headers

    return limiter


def retry_after(limiter: Limiter, now: Callable[[], float] = time.time) -> int:
    """Whole seconds until the breached limit lets a request through again (at least 1)."""
    breached = limiter.current_limit
    if breached is None:
        return DEFAULT_RETRY_AFTER
    return max(1, math.ceil(breached.window[0] - now()))


def _never_empty(key: Key) -> Callable[[], str]:
    # Only called when `exempt_when` has found a key; the fallback keeps the type honest.
    return lambda: key() or "-"


def _succeeded(response) -> bool:
    return response.status_code < 400
