"""The mailbox (every activation link) is not served beyond this machine: which names are
loopback, when `make run` turns it on, and what notify answers to a request from elsewhere.
Through the real gateway and `make run` itself: tests/integration/test_mailbox_exposure.py."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from services.notify import mailbox_access, mailfiles
from services.notify.app import create_app
from shared.loopback import is_loopback
from shared.settings import Settings
from system.launcher import plan, startup_line
from tests.servers import free_port

TOKEN = "Zt0k3n-of_the-exposure-tests"
MAILBOX_URLS = ("/notify/mailbox", "/notify/api/mailbox")


class NoRedis:
    def ping(self):
        raise AssertionError("not used here")


def saved_link(mail_dir: Path) -> str:
    """An activation email saved as the mail catcher saves it; its file name."""
    message = EmailMessage()
    message["To"], message["Subject"] = "fleur.f@example.fr", "Activez votre compte"
    message.set_content(f"Lien : http://127.0.0.1:8000/activate/activations/{TOKEN}")
    return mailfiles.save(mail_dir, message.as_bytes(), datetime.now(UTC))


def mailbox_urls(name: str) -> list[str]:
    """The listings (they name the message), then the message itself (it shows the link)."""
    return [*MAILBOX_URLS, f"/notify/mailbox/{name}", f"/notify/api/mailbox/{name}"]


# --- loopback names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:8000", "127.8.9.10:1", "localhost", "LocalHost:8000", "::1", "[::1]",
     "[::1]:8000", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]:8000"],
)  # fmt: skip
def test_loopback_names(host):
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["", "0.0.0.0", "::", "[::]:8000", "192.168.1.10", "192.168.1.10:8000", "rebound.example",
     "rebound.example:8000", "localhost.rebound.example", "127.0.0.1.rebound.example:8000",
     "localhost:80:80", "localhost:x", "localhost:８０", "[::1", "[::1]x", "[::1]:", "127.1",
     "2001:db8::1", "::ffff:192.0.2.1"],
)  # fmt: skip
def test_other_names_are_not_loopback(host):
    assert not is_loopback(host)


# --- when `make run` turns the mailbox on -------------------------------------------------------


def planned(tmp_path: Path, **env: str) -> tuple[dict[str, str], dict[str, str]]:
    base = {
        "PATH": "",
        "VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "test-secret-key",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # none answers: its start is planned
        "SMTP_PORT": str(free_port()),
    }
    return plan({**base, **env})


def test_make_run_with_the_mail_catcher_on_loopback_opens_the_mailbox(tmp_path):
    commands, env = planned(tmp_path)
    assert "mail" in commands and env["BIND_HOST"] == "127.0.0.1"
    assert env["MAILBOX_ENABLED"] == "1"
    assert Settings.from_env(env).mailbox_enabled
    line = startup_line(commands, env)
    assert f"(mailbox: http://127.0.0.1:{env['PORT']}/notify/mailbox)" in line


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.168.1.10", "portal.example", ""])
def test_make_run_listening_on_the_network_keeps_the_mailbox_closed(tmp_path, bind):
    commands, env = planned(tmp_path, BIND_HOST=bind, MAILBOX_ENABLED="1")
    assert "mail" in commands  # the emails are still caught, saved under MAIL_DIR
    assert env["MAILBOX_ENABLED"] == "0"
    assert "mailbox off" in startup_line(commands, env) and env["MAIL_DIR"] in startup_line(commands, env)


def test_make_run_with_smtp_has_no_mailbox_even_when_asked(tmp_path):
    commands, env = planned(tmp_path, SMTP_HOST="smtp.example", MAILBOX_ENABLED="1")
    assert "mail" not in commands
    assert env["MAILBOX_ENABLED"] == "0"
    assert startup_line(commands, env).endswith("(emails sent through smtp.example)")


def test_the_mailbox_is_off_unless_set():
    assert not Settings().mailbox_enabled
    assert not Settings.from_env({}).mailbox_enabled
    assert Settings.from_env({"MAILBOX_ENABLED": "1"}).mailbox_enabled


def test_read_the_links_of_make_run_listening_on_the_network(tmp_path):
    """The attack: `BIND_HOST=0.0.0.0 make run`, then the mailbox from another machine. notify as
    the launcher configures it has no mailbox: 404, the link nowhere."""
    _, env = planned(tmp_path, BIND_HOST="0.0.0.0")
    settings = Settings.from_env(env)
    name = saved_link(Path(settings.mail_dir))
    client = create_app(settings, client=NoRedis()).test_client()
    for url in mailbox_urls(name):
        answer = client.get(url, headers={"Host": "127.0.0.1:8000"})
        assert answer.status_code == 404, url
        assert TOKEN not in answer.get_data(as_text=True)
    assert not [path for path in client.get("/notify/openapi.json").json["paths"] if "mailbox" in path]


# --- what notify answers ------------------------------------------------------------------------


@pytest.fixture
def mailbox(tmp_path):
    """notify with the mailbox on, as `make run` starts it; an activation email in it."""
    settings = Settings(mail_dir=str(tmp_path / "mail"), mailbox_enabled=True)
    name = saved_link(tmp_path / "mail")
    return create_app(settings, client=NoRedis()).test_client(), name


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"])
def test_the_developer_reads_the_mailbox(mailbox, host):
    client, name = mailbox
    listings, messages = mailbox_urls(name)[:2], mailbox_urls(name)[2:]
    for url in listings:
        answer = client.get(url, headers={"Host": host})
        assert answer.status_code == 200 and name in answer.get_data(as_text=True), url
    for url in messages:
        answer = client.get(url, headers={"Host": host})
        assert answer.status_code == 200 and TOKEN in answer.get_data(as_text=True), url


@pytest.mark.parametrize("host", ["rebound.example:8000", "rebound.example", "0.0.0.0:8000", "[::]:8000"])
def test_dns_rebinding_to_read_the_mailbox_is_refused(mailbox, host):
    """A page of `rebound.example`, whose name now resolves to 127.0.0.1, reads the mailbox from
    the developer's browser: the request comes from this machine but asks for that name."""
    client, name = mailbox
    for url in mailbox_urls(name):
        answer = client.get(url, headers={"Host": host})
        assert answer.status_code == 403, url
        assert answer.json["message"] == mailbox_access.REFUSED
        assert TOKEN not in answer.get_data(as_text=True) and name not in answer.get_data(as_text=True)


def test_forwarded_host_of_another_site_is_refused(mailbox):
    """Behind the gateway, the host the client asked for arrives as X-Forwarded-Host."""
    client, name = mailbox
    answer = client.get(
        "/notify/api/mailbox", headers={"Host": "127.0.0.1:5004", "X-Forwarded-Host": "rebound.example:8000"}
    )
    assert answer.status_code == 403 and name not in answer.get_data(as_text=True)


@pytest.mark.parametrize("peer", ["192.0.2.7", "2001:db8::7"])
def test_a_client_of_another_machine_is_refused_whatever_host_it_names(mailbox, peer):
    """With the setting forced on behind a gateway on the network: the client's address, which
    the gateway writes in X-Forwarded-For, is not this machine's."""
    client, name = mailbox
    for url in mailbox_urls(name):
        answer = client.get(url, headers={"Host": "127.0.0.1:8000", "X-Forwarded-For": peer})
        assert answer.status_code == 403, url
        assert TOKEN not in answer.get_data(as_text=True)
