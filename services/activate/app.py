"""`create_app()`: activate's Flask app around its wiring (`bootstrap.py`)."""

from __future__ import annotations

import time

import redis
from argon2 import PasswordHasher
from flask import Flask

from services.activate import api, pages
from services.activate.approvals import api as approvals_api
from services.activate.approvals import pages as approvals_pages
from services.activate.bootstrap import SERVICE, Activate, bootstrap
from services.activate.links import TokenGone
from services.activate.my_account import api as my_account_api
from services.activate.my_account import limits as my_account_limits
from services.activate.my_account import pages as my_account_pages
from services.activate.password_reset import api as password_reset_api
from services.activate.password_reset import pages as password_reset_pages
from services.activate.second_factor import api as second_factor_api
from services.activate.second_factor import pages as second_factor_pages
from services.activate.sign_in import api as sign_in_api
from services.activate.sign_in import pages as sign_in_pages
from shared import limits, redaction
from shared.bootstrap import Clock, service_app
from shared.http_api import error_response
from shared.settings import Settings


def create_app(
    settings: Settings | None = None,
    *,
    client: redis.Redis | None = None,
    clock: Clock = time.time,
    hasher: PasswordHasher | None = None,
    wiring: Activate | None = None,
) -> Flask:
    wiring = wiring or bootstrap(settings, client=client, clock=clock, hasher=hasher)
    app = service_app(
        SERVICE,
        "activate — étapes 3 et 4",
        wiring,
        api=[
            api.blp,
            password_reset_api.blp,
            my_account_api.blp,
            sign_in_api.blp,
            second_factor_api.blp,
            approvals_api.blp,
        ],
        pages=[
            pages.bp,
            password_reset_pages.bp,
            my_account_pages.bp,
            sign_in_pages.bp,
            second_factor_pages.bp,
            approvals_pages.bp,
        ],
        guards=guards(wiring.settings) + my_account_limits.guards(wiring.settings),
    )
    app.register_error_handler(TokenGone, token_gone)
    redaction.install(app.logger)  # "Exception on /activate/activations/{token}" never shows a token
    return app


def token_gone(error: TokenGone):
    """410 like every error answer, plus what became of the link (the pages render their own
    answer for a dead link: this is the JSON API's). Never the registration id: it would open the
    account's data and its resend to whoever holds an old link."""
    return error_response(error.status, error.message, extra={"reason": error.reason})


def guards(settings: Settings) -> list[limits.Guard]:
    """Step 3's reads, the resend, the request of a new link by login email and the activation
    link, API and page alike. An email is counted as the login it names and a link by its token, both by their
    SHA-256: neither reaches Redis in clear."""
    return [
        limits.Guard(
            endpoints=("activate.ActivationLinks", "activate_pages.request_link"),
            methods=("POST",),
            rules=(
                limits.per_client("link-request-ip", settings.rate_limit_link_request_per_ip),
                limits.Rule(
                    "link-request-email",
                    settings.rate_limit_link_request_per_email,
                    limits.email_field("login_email"),
                ),
            ),
        ),
        limits.Guard(
            endpoints=("activate.ActivationEmail", "activate_pages.resend"),
            methods=("POST",),
            rules=(
                limits.per_client("resend-ip", settings.rate_limit_resend_per_ip),
                limits.Rule(
                    "resend-registration",
                    settings.rate_limit_resend_per_registration,
                    limits.path_value("registration_id"),
                ),
            ),
        ),
        limits.Guard(
            endpoints=("activate.Workspaces", "activate_pages.workspaces", "activate_pages.created"),
            methods=("GET",),
            rules=(limits.per_client("step3-read-ip", settings.rate_limit_step_reads_per_ip),),
        ),
        limits.Guard(
            endpoints=("activate.Activation", "activate_pages.activation", "activate_pages.activate"),
            methods=("GET", "POST"),
            rules=(
                limits.per_client("activation-ip", settings.rate_limit_activation_per_ip),
                limits.Rule(
                    "activation-token",
                    settings.rate_limit_activation_per_token,
                    limits.path_value("token", hashed=True),
                ),
            ),
        ),
        # « Mot de passe oublié »: the request by login email (per address, and per email counted by its
        # SHA-256), then the emailed link's page and form (per address; each link takes 5 answers).
        limits.Guard(
            endpoints=("password_resets.PasswordResets", "password_reset_pages.request_reset"),
            methods=("POST",),
            rules=(
                limits.per_client("password-reset-ip", settings.rate_limit_password_reset_per_ip),
                limits.Rule(
                    "password-reset-email",
                    settings.rate_limit_password_reset_per_email,
                    limits.email_field("login_email"),
                ),
            ),
        ),
        limits.Guard(
            endpoints=(
                "password_resets.PasswordReset",
                "password_reset_pages.reset_form",
                "password_reset_pages.reset",
            ),
            methods=("GET", "POST"),
            rules=(limits.per_client("password-reset-link-ip", settings.rate_limit_password_reset_per_ip),),
        ),
        # Sign-in: the password and the second factor, API and pages, per client address (each login
        # email has its own growing delays and temporary lock besides: services/activate/sign_in/domain.py).
        limits.Guard(
            endpoints=(
                "activate_sign_in.SignInPassword",
                "activate_sign_in.SignInCode",
                "activate_sign_in_pages.sign_in",
                "activate_sign_in_pages.enter_code",
            ),
            methods=("POST",),
            rules=(limits.per_client("sign-in-ip", settings.rate_limit_sign_in_per_ip),),
        ),
    ]
