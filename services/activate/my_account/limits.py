"""« Mon compte »'s rate limits (`shared.limits`), API and pages sharing their buckets.

- The commands that check the current password (password, secret question, deactivation) are a
  way to guess it with a stolen session: per signed-in account, `CURRENT_PASSWORD_PER_ACCOUNT`,
  and per client address, as sign-in is (RATE_LIMIT_SIGN_IN_PER_IP).
- A new contact email sends an email to an address the person types: per account,
  `CONTACT_EMAIL_PER_ACCOUNT` (emails sent only: a mistyped address costs nothing), and per
  client address as a new activation link is (RATE_LIMIT_LINK_REQUEST_PER_IP).
- The confirmation link, like an activation link: per client address and per token (hashed)
  (RATE_LIMIT_ACTIVATION_PER_IP, RATE_LIMIT_ACTIVATION_PER_TOKEN).

A request without a live session is not counted per account: it gets 401 (or the sign-in page).
"""

from __future__ import annotations

from services.activate.sessions import web as session_web
from shared import limits
from shared.errors import Unauthorized
from shared.settings import Settings

CURRENT_PASSWORD_PER_ACCOUNT = "5 per minute;20 per hour"
CONTACT_EMAIL_PER_ACCOUNT = "3 per hour;10 per day"


def signed_in_account() -> str | None:
    """The account of the request's live session (`registration_id`), or None without one."""
    try:
        return session_web.current_session().registration_id
    except Unauthorized:
        return None


def guards(settings: Settings) -> list[limits.Guard]:
    return [
        limits.Guard(
            endpoints=(
                "activate_me.MyPassword",
                "activate_me.MySecretQuestion",
                "activate_me.Deactivation",
                "activate_me_pages.change_password",
                "activate_me_pages.change_secret_question",
                "activate_me_pages.deactivate",
            ),
            methods=("POST",),
            rules=(
                limits.Rule("me-current-password-account", CURRENT_PASSWORD_PER_ACCOUNT, signed_in_account),
                limits.per_client("me-current-password-ip", settings.rate_limit_sign_in_per_ip),
            ),
        ),
        limits.Guard(
            endpoints=("activate_me.MyContactEmail", "activate_me_pages.change_contact_email"),
            methods=("POST",),
            rules=(
                limits.Rule(
                    "me-contact-email-account",
                    CONTACT_EMAIL_PER_ACCOUNT,
                    signed_in_account,
                    only_successes=True,
                ),
                limits.per_client("me-contact-email-ip", settings.rate_limit_link_request_per_ip),
            ),
        ),
        limits.Guard(
            endpoints=(
                "activate_me.ContactEmailConfirmation",
                "activate_me_pages.contact_email_link",
                "activate_me_pages.confirm_contact_email",
            ),
            methods=("GET", "POST"),
            rules=(
                limits.per_client("contact-link-ip", settings.rate_limit_activation_per_ip),
                limits.Rule(
                    "contact-link-token",
                    settings.rate_limit_activation_per_token,
                    limits.path_value("token", hashed=True),
                ),
            ),
        ),
    ]
