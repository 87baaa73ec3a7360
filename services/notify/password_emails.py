"""The emails of « Mot de passe oublié » and of a changed password: what their templates are
given. Pure, like `domain`: no Redis, no SMTP, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from services.notify.domain import clean_name, deadline_in_words
from shared.wording import validity_in_words

RESET_SUBJECT = "Réinitialisation de votre mot de passe"
CHANGED_SUBJECT = "Votre mot de passe a été modifié"


def reset_link(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/activate/password-resets/{quote(token, safe='')}"


def new_request_link(public_base_url: str) -> str:
    """« Mot de passe oublié »: where a new link is asked for."""
    return f"{public_base_url.rstrip('/')}/activate/password-resets/new"


@dataclass(frozen=True)
class PasswordResetEmail:
    """The link that lets the holder of the login email choose a new password."""

    to: str
    first_name: str
    last_name: str
    link: str
    validity: str
    deadline: str
    subject: str = RESET_SUBJECT


def password_reset_email(
    *,
    to: str,
    first_name: str,
    last_name: str,
    token: str,
    public_base_url: str,
    ttl_seconds: int,
    expires_at: datetime,
) -> PasswordResetEmail:
    return PasswordResetEmail(
        to=to,
        first_name=clean_name(first_name),
        last_name=clean_name(last_name),
        link=reset_link(public_base_url, token),
        validity=validity_in_words(ttl_seconds),
        deadline=deadline_in_words(expires_at),
    )


CHANGED_HOW = {
    "reset": "avec le lien de réinitialisation envoyé à cette adresse et la réponse à votre question secrète",
    "change": "depuis la page « Mon compte », avec l'ancien mot de passe",
}
"""PasswordChanged's `reason` → how the password was changed, as the notice tells it."""


@dataclass(frozen=True)
class PasswordChangedEmail:
    """The notice of a changed password: no link that acts, only where to ask for a new one."""

    to: str
    first_name: str
    last_name: str
    how: str
    new_request_link: str
    subject: str = CHANGED_SUBJECT


def password_changed_email(
    *, to: str, first_name: str, last_name: str, reason: str, public_base_url: str
) -> PasswordChangedEmail:
    return PasswordChangedEmail(
        to=to,
        first_name=clean_name(first_name),
        last_name=clean_name(last_name),
        how=CHANGED_HOW[reason],
        new_request_link=new_request_link(public_base_url),
    )
