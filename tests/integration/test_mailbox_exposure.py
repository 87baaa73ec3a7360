"""Reading the activation links in the mailbox from elsewhere than the developer's machine.

notify serves its real app on 127.0.0.1, behind the real gateway (`system.gateway`), as under
`make run`; requests are sent with exactly the Host header an attacker chooses. A client on
another machine is a request whose TCP peer address is not loopback: the gateway's WSGI app is
given that peer (REMOTE_ADDR), as a server listening on the network would. Last, `make run`
itself (`system.launcher`), with its mail catcher and a real email.
"""

from __future__ import annotations

import os
import smtplib
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer

from services.notify import mailfiles
from services.notify.app import create_app as notify_app
from system.gateway import SERVICES
from system.gateway import create_app as gateway_app
from tests.integration import test_gateway_forwarding as forwarding
from tests.servers import free_port
from tests.system import in_background

pytestmark = pytest.mark.timeout(120)

TOKEN = "Zt0k3n-read-from-elsewhere"
send = forwarding.send


def activation_email(to: str = "fleur.f@example.fr") -> EmailMessage:
    message = EmailMessage()
    message["To"], message["From"], message["Subject"] = to, "p@portail.test", "Activez votre compte"
    message.set_content(f"Lien : http://127.0.0.1:8000/activate/activations/{TOKEN}")
    return message


def mailbox_urls(name: str) -> list[str]:
    return [
        "/notify/mailbox",
        "/notify/api/mailbox",
        f"/notify/mailbox/{name}",
        f"/notify/api/mailbox/{name}",
    ]


class Portal:
    """The gateway in front of notify, both real; a saved activation email in the mail folder."""

    def __init__(self, gateway: Flask, port: int, name: str) -> None:
        self.gateway, self.port, self.name = gateway, port, name


@pytest.fixture
def portal(settings, redis_client) -> Iterator[Callable[[bool], Portal]]:
    servers: list[BaseWSGIServer] = []

    def start(mailbox_enabled: bool) -> Portal:
        notify_settings = replace(settings, mailbox_enabled=mailbox_enabled)
        name = mailfiles.save(notify_settings.mail_dir, activation_email().as_bytes(), datetime.now(UTC))
        servers.append(forwarding.serve(notify_app(notify_settings, client=redis_client)))
        notify_url = f"http://127.0.0.1:{servers[-1].server_port}"
        gateway = gateway_app(settings, targets=dict.fromkeys(SERVICES, notify_url), client=redis_client)
        servers.append(forwarding.serve(gateway))
        return Portal(gateway, servers[-1].server_port, name)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_developer_reads_the_links_through_the_gateway(portal):
    """What the attacks below must not get, and what `make run` must keep giving."""
    running = portal(True)
    for host in (f"127.0.0.1:{running.port}", f"localhost:{running.port}"):
        listing = send(running.port, "GET", "/notify/api/mailbox", {"Host": host})
        assert listing.status == 200 and listing.json()[0]["name"] == running.name
        message = send(running.port, "GET", f"/notify/mailbox/{running.name}", {"Host": host})
        assert message.status == 200 and TOKEN.encode() in message.body


def test_without_the_mail_catcher_there_is_no_mailbox(portal):
    """SMTP configured (production, compose): the mailbox is not registered at all, even for
    this machine; the saved files are not served."""
    running = portal(False)
    for url in mailbox_urls(running.name):
        answer = send(running.port, "GET", url, {"Host": f"127.0.0.1:{running.port}"})
        assert answer.status == 404, url
        assert TOKEN.encode() not in answer.body and running.name.encode() not in answer.body
    paths = send(running.port, "GET", "/notify/openapi.json").json()["paths"]
    assert not [path for path in paths if "mailbox" in path]


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "rebound.example:{port}"},
        {"Host": "rebound.example"},
        # The client's own X-Forwarded-Host is overwritten by the gateway with its Host.
        {"Host": "rebound.example:{port}", "X-Forwarded-Host": "127.0.0.1:{port}"},
    ],
    ids=["with-port", "without-port", "forged-forwarded-host"],
)
def test_dns_rebinding_cannot_read_the_links(portal, headers):
    """A page of rebound.example, whose name the attacker re-points at 127.0.0.1, reads the
    mailbox from the developer's browser: from 127.0.0.1, but asking for its own name."""
    running = portal(True)
    headers = {key: value.format(port=running.port) for key, value in headers.items()}
    for url in mailbox_urls(running.name):
        answer = send(running.port, "GET", url, headers)
        assert answer.status == 403, url
        assert TOKEN.encode() not in answer.body and running.name.encode() not in answer.body


@pytest.mark.parametrize("peer", ["192.0.2.7", "2001:db8::7"])
@pytest.mark.parametrize("forged", [{}, {"X-Forwarded-For": "127.0.0.1"}], ids=["plain", "forged-for"])
def test_a_client_of_another_machine_cannot_read_the_links(portal, peer, forged):
    """The gateway listening on the network (with the mailbox forced on): a client elsewhere
    names this machine in Host and claims to be 127.0.0.1 in X-Forwarded-For; the gateway tells
    notify its real address."""
    running = portal(True)
    client = running.gateway.test_client()
    for url in mailbox_urls(running.name):
        answer = client.get(
            url, headers={"Host": "127.0.0.1:8000", **forged}, environ_base={"REMOTE_ADDR": peer}
        )
        assert answer.status_code == 403, url
        assert TOKEN not in answer.get_data(as_text=True)
    here = client.get("/notify/api/mailbox", headers={"Host": "127.0.0.1:8000"})
    assert here.status_code == 200  # the same request from this machine


# --- `make run` ---------------------------------------------------------------------------------


@pytest.mark.e2e
def test_make_run_shows_the_links_here_and_refuses_a_rebound_name(redis_server, tmp_path):
    """`make run` without SMTP: the mail catcher gets a real email; the mailbox shows it at
    127.0.0.1 and refuses the same request under another site's name."""
    port, smtp_port = free_port(), free_port()
    env = {
        **{key: value for key, value in os.environ.items() if key not in ("SMTP_HOST", "BIND_HOST")},
        "REDIS_URL": redis_server.url,
        "PORT": str(port),
        "SMTP_PORT": str(smtp_port),
        "VAR_DIR": str(tmp_path / "var"),
        "MAILBOX_ENABLED": "0",  # the launcher decides, not the environment
        "SECRET_KEY": "test-secret-key",
    }
    with in_background(env, tmp_path / "system.log") as running:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.send_message(activation_email())
        (saved,) = (tmp_path / "var" / "mail").glob("*.eml")
        page = send(port, "GET", f"/notify/mailbox/{saved.name}", {"Host": f"127.0.0.1:{port}"})
        assert page.status == 200 and TOKEN.encode() in page.body
        with urllib.request.urlopen(f"{running.base_url}/notify/mailbox", timeout=10) as answer:
            assert saved.name in answer.read().decode()
        rebound = send(port, "GET", f"/notify/mailbox/{saved.name}", {"Host": f"rebound.example:{port}"})
        assert rebound.status == 403 and TOKEN.encode() not in rebound.body
    log = (tmp_path / "system.log").read_text()
    assert f"(mailbox: http://127.0.0.1:{port}/notify/mailbox)" in log
