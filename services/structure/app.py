"""`create_app()`: structure's Flask app around its wiring (`bootstrap.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from flask import Flask, request

from services.structure import api, attachment_api, attachment_pages, companies_api, companies_pages, pages
from services.structure.bootstrap import SERVICE, Structure, bootstrap
from services.structure.captcha import random_text
from services.structure.sirene.sources import Register
from shared import limits
from shared.bootstrap import Clock, service_app
from shared.settings import Settings


def create_app(
    settings: Settings | None = None,
    *,
    client: redis.Redis | None = None,
    register: Register | None = None,
    clock: Clock = time.time,
    captcha_text: Callable[[], str] = random_text,
    wiring: Structure | None = None,
) -> Flask:
    wiring = wiring or bootstrap(
        settings, client=client, clock=clock, register=register, captcha_text=captcha_text
    )
    return service_app(
        SERVICE,
        "structure — étape 2",
        wiring,
        api=[api.blp, attachment_api.blp, companies_api.blp],
        pages=[pages.bp, attachment_pages.bp, companies_pages.bp],
        guards=[
            guard_step_two(wiring.settings),
            guard_step_two_reads(wiring.settings),
            guard_captchas(wiring.settings),
            guard_company_search(wiring.settings),
        ],
    )


def guard_step_two(settings: Settings) -> limits.Guard:
    """Confirming step 2, or asking to join the structure instead (where the bot challenge is
    answered), API and page alike."""
    return limits.Guard(
        endpoints=(
            "structure.RegistrationForm",
            "structure_pages.confirm",
            "structure_attachment.AttachmentRequest",
            "structure_attachment_pages.request_attachment",
        ),
        methods=("POST",),
        rules=(
            limits.per_client("structure-ip", settings.rate_limit_structure_per_ip),
            limits.Rule(
                "structure-registration",
                settings.rate_limit_structure_per_registration,
                limits.path_value("registration_id"),
            ),
        ),
    )


def guard_step_two_reads(settings: Settings) -> limits.Guard:
    """Reading the step-2 form, API and page alike: an unknown id may be waited for a moment."""
    return limits.Guard(
        endpoints=(
            "structure.RegistrationForm",
            "structure_pages.step_two",
            "structure_attachment_pages.attachment_form",
        ),
        methods=("GET",),
        rules=(limits.per_client("step2-read-ip", settings.rate_limit_step_reads_per_ip),),
    )


def guard_company_search(settings: Settings) -> limits.Guard:
    """« Je ne connais pas mon SIRET »: the suggestions while typing and the results page share
    one bucket per client address (each search reads the register, or spends an API's budget)."""
    return limits.Guard(
        endpoints=("structure_companies.Companies", "structure_companies_pages.search_page"),
        methods=("GET",),
        rules=(limits.per_client("company-search-ip", settings.rate_limit_company_search_per_ip),),
    )


CAPTCHA_API = "structure.CaptchaChallenges"
CAPTCHA_PAGES = (
    "structure_pages.step_two",
    "structure_pages.confirm",
    "structure_attachment_pages.attachment_form",
    "structure_attachment_pages.request_attachment",
)


def guard_captchas(settings: Settings) -> limits.Guard:
    """Every challenge issued: `POST /captchas`, and the step-2 page, whose every render (the
    form, or the form refused) issues one. They share the buckets, per client address and per
    registration (the page's, or the one the API names). The image's URL needs no bucket of
    its own: each challenge is rendered three times at most, image or audio
    (`captcha.DRAWS_PER_CHALLENGE`)."""
    pages = CAPTCHA_PAGES if settings.captcha_enabled else ()  # switched off, a render issues none
    return limits.Guard(
        endpoints=(CAPTCHA_API, *pages),
        methods=("GET", "POST"),
        rules=(
            limits.per_client("captcha-ip", settings.rate_limit_captcha_per_ip),
            limits.Rule(
                "captcha-registration", settings.rate_limit_captcha_per_registration, _captcha_registration
            ),
        ),
    )


_registration_in_path = limits.path_value("registration_id")


def _captcha_registration() -> str | None:
    """The registration a challenge is issued for: in the page's path, or the API's
    `?registration_id=` (hashed when too long to be one, as `limits.path_value` does)."""
    named = _registration_in_path() or request.args.get("registration_id")
    if not named:
        return None
    return limits.digest(named) if len(named) > 64 else named
