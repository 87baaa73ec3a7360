"""Life after activation, for the end-to-end tests: accounts registered through the JSON API (steps
1 to 4, or 1 to 3 for an account not yet active), sign-ins through the JSON API, what the emails
carry (the sign-in code, the password-reset link), and the POST forms of a page.

Everything goes through HTTP and the SMTP server the system sends to, as a client that knows
only SPEC's contract and the pages."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests

from tests.e2e.conftest import RunningSystem
from tests.e2e.sirets import take_siret

PASSWORD = "Facture-2026-Été"
SECRET_ANSWER = "Médor"
HTTP_TIMEOUT = 10
STEP_READ_TIMEOUT = 30  # steps 2 and 3's reads wait for the previous step's event
MAIL_TIMEOUT = 30
SESSION_COOKIE = "portail_session"

ACTIVATION_LINK = re.compile(r"https?://\S+/activate/activations/[A-Za-z0-9_\-]+")
SIGN_IN_CODE = re.compile(r"^\s*(\d{6})\s*$", re.MULTILINE)
RESET_LINK = re.compile(r"https?://\S+/activate/password-resets/(?!new\b)([A-Za-z0-9_\-]+)")
CONTACT_LINK = re.compile(r"https?://\S+/activate/contact-emails/([A-Za-z0-9_\-]+)")


def unique_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.fr"


# --- the emails -------------------------------------------------------------------------------------


def mail_mark(system: RunningSystem) -> int:
    """How many emails the SMTP server holds: what arrives after an action is counted from here."""
    return len(system.smtp.recorder.messages)


def plain_text(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def _addressed_to(message: EmailMessage, address: str) -> bool:
    return any(a.addr_spec.casefold() == address.casefold() for a in message["To"].addresses)


def wait_for_mail(
    system: RunningSystem, address: str, pattern: re.Pattern[str], since: int, timeout: float = MAIL_TIMEOUT
) -> re.Match[str]:
    """The first match of `pattern` in the text of an email to `address` received after the
    `since`-th; waits on the SMTP server's arrivals (no polling delay), fails after `timeout`."""
    recorder = system.smtp.recorder
    found: list[re.Match[str]] = []

    def arrived() -> bool:
        for message in recorder.messages[since:]:
            if _addressed_to(message, address) and (match := pattern.search(plain_text(message))):
                found.append(match)
                return True
        return False

    with recorder.arrived:
        recorder.arrived.wait_for(arrived, timeout)
    assert found, f"no email to {address} matching {pattern.pattern} within {timeout}s"
    return found[0]


def sign_in_code(system: RunningSystem, address: str, since: int) -> str:
    return wait_for_mail(system, address, SIGN_IN_CODE, since).group(1)


def reset_link(system: RunningSystem, address: str, since: int) -> str:
    return wait_for_mail(system, address, RESET_LINK, since).group(0)


# --- accounts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """Steps 1 to 3 done: the account exists, not active; its activation link was emailed."""

    registration_id: str
    login_email: str
    activation_token: str


@dataclass(frozen=True)
class Member:
    """An active account, and what its holder knows."""

    registration_id: str
    login_email: str
    password: str
    secret_question: str
    secret_answer: str = SECRET_ANSWER


def _checked(answer: requests.Response, status: int) -> dict:
    assert answer.status_code == status, (
        f"{answer.request.method} {answer.url}: {answer.status_code} {answer.text}"
    )
    return answer.json()


def register(system: RunningSystem, tag: str) -> Pending:
    """Steps 1 to 3 through the JSON API (the default workspaces), with a SIRET of its own
    (tests/e2e/sirets.py)."""
    email = unique_email(tag)
    siret, _ = take_siret(system)
    started = requests.post(
        system.url("/identify/api/registrations"),
        json={"login_email": email, "identifier": siret},
        timeout=HTTP_TIMEOUT,
    )
    registration_id = _checked(started, 201)["registration_id"]
    form = _checked(
        requests.get(
            system.url(f"/structure/api/registrations/{registration_id}"), timeout=STEP_READ_TIMEOUT
        ),
        200,
    )
    step2 = {
        "structure": {k: v for k, v in form["prefill"].items() if v},
        "user": {"last_name": "Fleur", "first_name": "Françoise", "login_email_confirmation": email},
        "features": {"payment_requests": True},
    }
    _checked(
        requests.post(
            system.url(f"/structure/api/registrations/{registration_id}"), json=step2, timeout=HTTP_TIMEOUT
        ),
        201,
    )
    since = mail_mark(system)
    _checked(
        requests.post(
            system.url(f"/activate/api/registrations/{registration_id}/workspaces"),
            json={},
            timeout=STEP_READ_TIMEOUT,
        ),
        201,
    )
    link = wait_for_mail(system, email, ACTIVATION_LINK, since).group(0)
    return Pending(registration_id, email, link.rsplit("/", 1)[1])


def activate(system: RunningSystem, pending: Pending, password: str = PASSWORD) -> Member:
    """Step 4 through the JSON API, with the first secret question offered."""
    url = system.url(f"/activate/api/activations/{pending.activation_token}")
    question = _checked(requests.get(url, timeout=HTTP_TIMEOUT), 200)["secret_questions"][0]
    body = {
        "password": password,
        "password_confirmation": password,
        "secret_question": question,
        "secret_answer": SECRET_ANSWER,
    }
    _checked(requests.post(url, json=body, timeout=HTTP_TIMEOUT), 200)
    return Member(pending.registration_id, pending.login_email, password, question)


def active_account(system: RunningSystem, tag: str) -> Member:
    return activate(system, register(system, tag))


# --- signing in through the JSON API -----------------------------------------------------------------


def post_password(
    system: RunningSystem, login_email: str, password: str, http: requests.Session | None = None
) -> requests.Response:
    return (http or requests).post(
        system.url("/activate/api/sign-in"),
        json={"login_email": login_email, "password": password},
        timeout=HTTP_TIMEOUT,
    )


def post_code(
    system: RunningSystem, challenge_id: str, code: str, http: requests.Session | None = None
) -> requests.Response:
    return (http or requests).post(
        system.url(f"/activate/api/sign-in/{challenge_id}"), json={"code": code}, timeout=HTTP_TIMEOUT
    )


@dataclass
class SignedIn:
    """A client holding a session's cookie, and the challenge and code that opened it."""

    http: requests.Session
    challenge_id: str
    code: str


def api_sign_in(system: RunningSystem, login_email: str, password: str) -> SignedIn:
    """The password, then the emailed code: a `requests.Session` with the session's cookie."""
    http = requests.Session()
    since = mail_mark(system)
    challenge = _checked(post_password(system, login_email, password, http), 200)
    code = sign_in_code(system, login_email, since)
    _checked(post_code(system, challenge["challenge_id"], code, http), 200)
    assert http.cookies.get(SESSION_COOKIE), "no session cookie after the second factor"
    return SignedIn(http, challenge["challenge_id"], code)


# --- the POST forms of a page ------------------------------------------------------------------------


@dataclass
class Form:
    """A POST form as the page gives it: where it goes and the values it would send."""

    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._open: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {k: v or "" for k, v in attrs}
        if tag == "form" and named.get("method", "get").lower() == "post":
            self._open = Form(named.get("action", ""))
        elif self._open is not None and tag in ("input", "select", "textarea") and named.get("name"):
            if named.get("type") in ("radio", "checkbox") and "checked" not in named:
                return
            self._open.fields.setdefault(named["name"], named.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._open is not None:
            self.forms.append(self._open)
            self._open = None


def post_forms(page_url: str, html: str) -> list[Form]:
    """The page's POST forms, their actions made absolute."""
    reader = _FormReader()
    reader.feed(html)
    return [Form(urljoin(page_url, f.action or page_url), f.fields) for f in reader.forms]
