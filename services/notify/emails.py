"""Rendering of the emails from Jinja templates: a plain-text and an HTML part each.

The HTML templates (`*.html.j2`) are autoescaped, so a name such as `<script>` is shown, never
run; the plain-text ones are not escaped (nothing interprets them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notify.account_emails import ContactEmailConfirmation
from services.notify.attachment_emails import (
    ApprovalRequestedEmail,
    AttachmentExpiredEmail,
    AttachmentRefusedEmail,
)
from services.notify.domain import ActivationEmail, AttemptEmail, Email, FlaggedStructureEmail
from services.notify.password_emails import PasswordChangedEmail, PasswordResetEmail
from services.notify.sign_in_emails import AccountLockedEmail, SecondFactorEmail, SignInCodeEmail

TEMPLATES = Path(__file__).parent / "templates"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True, default=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


_TEMPLATES: dict[type, str] = {
    ActivationEmail: "activation",
    AttemptEmail: "attempt",
    FlaggedStructureEmail: "structure_flagged",
    PasswordResetEmail: "password_reset",
    PasswordChangedEmail: "password_changed",
    ContactEmailConfirmation: "contact_email_confirmation",
    SignInCodeEmail: "sign_in_code",
    AccountLockedEmail: "account_locked",
    SecondFactorEmail: "second_factor",
    ApprovalRequestedEmail: "approval_requested",
    AttachmentRefusedEmail: "attachment_refused",
    AttachmentExpiredEmail: "attachment_expired",
}
"""Each email's templates: `{name}.txt.j2` and `{name}.html.j2`."""


def render(email: Email) -> RenderedEmail:
    name = _TEMPLATES[type(email)]
    return RenderedEmail(
        subject=email.subject,
        text=_env.get_template(f"{name}.txt.j2").render(email=email),
        html=_env.get_template(f"{name}.html.j2").render(email=email),
    )
