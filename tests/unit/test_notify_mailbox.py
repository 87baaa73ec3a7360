"""The mail catcher's folder and the mailbox pages, without servers."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from services.notify import handlers, mailfiles, pages
from services.notify.app import create_app
from shared.errors import NotFound
from shared.settings import Settings


class NoRedis:
    def ping(self):
        raise AssertionError("not used here")


def message_bytes(to="a@example.fr", subject="Objet", text="Bonjour", html=None) -> bytes:
    message = EmailMessage()
    message["To"], message["From"], message["Subject"] = to, "p@portail.test", subject
    message["Date"] = "Wed, 12 Mar 2025 14:05:00 +0000"
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message.as_bytes()


@pytest.fixture
def client(tmp_path):
    app = create_app(Settings(mail_dir=str(tmp_path / "mail"), mailbox_enabled=True), client=NoRedis())
    return app.test_client()


def test_linkify_escapes_then_links():
    html = pages.linkify('Voir <b>http://p.test/a?x=1&y="2"</b>, puis https://q.test/t.')
    assert "<b>" not in html
    assert '<a href="http://p.test/a?x=1&amp;y=" rel="noopener noreferrer" target="_blank">' in html
    assert (
        '<a href="https://q.test/t" rel="noopener noreferrer" target="_blank">https://q.test/t</a>.' in html
    )


@pytest.mark.parametrize(
    "name", ["../x.eml", "..", "a/b.eml", ".hidden.eml", "x.txt", "x.eml/..", "", "..eml"]
)
def test_only_plain_eml_names_are_messages(name):
    assert not mailfiles.is_message_name(name)


def test_save_is_atomic_and_named_by_time(tmp_path):
    name = mailfiles.save(tmp_path, b"Subject: x\r\n\r\nbody", datetime(2025, 3, 12, 14, 5, 1, 2, tzinfo=UTC))
    assert name.startswith("20250312T140501000002Z-") and name.endswith(".eml")
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_empty_mailbox_page(client):
    answer = client.get("/notify/mailbox")
    assert answer.status_code == 200
    assert "Aucun message pour l'instant." in answer.get_data(as_text=True)
    assert client.get("/notify/api/mailbox").json == []


def test_mailbox_lists_newest_first_and_shows_a_message(client, tmp_path):
    folder = tmp_path / "mail"
    old = mailfiles.save(folder, message_bytes(subject="Ancien"), datetime(2025, 1, 1, tzinfo=UTC))
    new = mailfiles.save(
        folder,
        message_bytes(
            to="b@example.fr",
            subject="<i>Nouveau</i>",
            text="Lien : http://portal.test/activate/activations/abc",
            html="<p onclick=x>Bonjour <script>alert(1)</script></p>",
        ),
        datetime(2025, 2, 1, tzinfo=UTC),
    )
    listing = client.get("/notify/mailbox").get_data(as_text=True)
    assert listing.index(new) < listing.index(old)
    assert "&lt;i&gt;Nouveau&lt;/i&gt;" in listing and "<i>Nouveau" not in listing
    assert [m["name"] for m in client.get("/notify/api/mailbox").json] == [new, old]
    assert client.get("/notify/api/mailbox").json[0]["date"] == "2025-03-12T14:05:00+00:00"

    page = client.get(f"/notify/mailbox/{new}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert (
        '<a href="http://portal.test/activate/activations/abc" rel="noopener noreferrer" target="_blank">'
        in body
    )
    assert (
        '<iframe title="Version HTML du message" sandbox="allow-popups allow-popups-to-escape-sandbox"'
        in body
    )
    assert "<script>alert" not in body and "&lt;script&gt;alert(1)" in body
    assert "script-src 'none'" in page.headers["Content-Security-Policy"]
    assert client.get(f"/notify/api/mailbox/{new}").json["text"].startswith("Lien : http://portal.test/")


@pytest.mark.parametrize(
    "path",
    ["..%2F..%2Fetc%2Fpasswd", "..%2Fsecret.eml", "nope.eml", "x.txt", ".incoming-x.tmp", "%2Fetc%2Fpasswd"],
)
def test_names_outside_the_folder_are_not_found(client, tmp_path, path):
    (tmp_path / "secret.eml").write_bytes(message_bytes())
    assert client.get(f"/notify/mailbox/{path}").status_code == 404
    assert client.get(f"/notify/api/mailbox/{path}").status_code == 404


def test_a_symlink_out_of_the_folder_is_not_a_message(client, tmp_path):
    (tmp_path / "secret.eml").write_bytes(message_bytes())
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "link.eml").symlink_to(tmp_path / "secret.eml")
    assert client.get("/notify/mailbox/link.eml").status_code == 404
    assert "link.eml" not in client.get("/notify/mailbox").get_data(as_text=True)


def test_the_mailbox_queries_read_the_folder_and_say_what_is_missing(tmp_path):
    folder = tmp_path / "mail"
    assert handlers.mailbox(str(folder)) == []
    name = mailfiles.save(folder, message_bytes(subject="Objet"), datetime(2025, 1, 1, tzinfo=UTC))
    assert [m.name for m in handlers.mailbox(str(folder))] == [name]
    assert handlers.mailbox_message(str(folder), name).summary.subject == "Objet"
    with pytest.raises(NotFound):
        handlers.mailbox_message(str(folder), "missing.eml")
