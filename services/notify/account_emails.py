"""The email of « Mon compte »: the link that confirms a new contact email, sent to that new
address. What its templates are given. Pure, like `domain`: no Redis, no SMTP, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from services.notify.domain import clean_name, deadline_in_words
from shared.wording import validity_in_words

CONTACT_EMAIL_SUBJECT = "Confirmez votre adresse électronique de contact"


def contact_email_link(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/activate/contact-emails/{quote(token, safe='')}"


@dataclass(frozen=True)
class ContactEmailConfirmation:
    """To the new contact address: the link that makes it the account's, and the account's login
    email, so that whoever receives it can tell whether the request is theirs."""

    to: str
    first_name: str
    last_name: str
    login_email: str
    link: str
    validity: str
    deadline: str
    subject: str = CONTACT_EMAIL_SUBJECT


def contact_email_confirmation(
    *,
    to: str,
    first_name: str,
    last_name: str,
    login_email: str,
    token: str,
    public_base_url: str,
    ttl_seconds: int,
    expires_at: datetime,
) -> ContactEmailConfirmation:
    return ContactEmailConfirmation(
        to=to,
        first_name=clean_name(first_name),
        last_name=clean_name(last_name),
        login_email=login_email,
        link=contact_email_link(public_base_url, token),
        validity=validity_in_words(ttl_seconds),
        deadline=deadline_in_words(expires_at),
    )
