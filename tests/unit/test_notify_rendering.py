"""The activation email's words, link and parts; names cannot inject headers or markup."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from services.notify import domain, emails, mailer

EXPIRES = datetime(2025, 3, 12, 14, 5, tzinfo=UTC)


def email(**overrides) -> domain.ActivationEmail:
    facts = {
        "to": "fleur.f@example.fr",
        "first_name": "Fleur",
        "last_name": "Fontaine",
        "token": "Tok3n_-abc",
        "public_base_url": "http://portal.test/",
        "ttl_seconds": 3600,
        "expires_at": EXPIRES,
        "reason": "created",
        **overrides,
    }
    return domain.activation_email(**facts)


def sent_bytes(rendered: emails.RenderedEmail, to: str = "fleur.f@example.fr") -> bytes:
    message = mailer.build_message(
        rendered, to=to, mail_from="Portail <ne-pas-repondre@portail.test>", now=EXPIRES
    )
    return message.as_bytes()


@pytest.mark.parametrize(
    ("ttl", "words"),
    [
        (3600, "60 minutes"),
        (1800, "30 minutes"),
        (60, "1 minute"),
        (90, "1 minute"),
        (45, "45 secondes"),
        (1, "1 seconde"),
        (7200, "2 heures"),
        (3660, "1 heure et 1 minute"),
        (5400, "1 heure et 30 minutes"),
        (86400, "24 heures"),
        (2 * 86400, "2 jours"),
        (3 * 86400 + 3 * 3600, "3 jours et 3 heures"),
    ],
)
def test_validity_in_words(ttl, words):
    assert domain.validity_in_words(ttl) == words


def test_deadline_in_words_is_in_paris_time():
    assert domain.deadline_in_words(EXPIRES) == "12 mars 2025 à 15 h 05 (heure de Paris)"
    assert domain.deadline_in_words(datetime(2025, 7, 1, 8, 0, tzinfo=UTC)).startswith(
        "1er juillet 2025 à 10 h 00"
    )


def test_link_is_built_from_the_public_base_url():
    assert email().link == "http://portal.test/activate/activations/Tok3n_-abc"
    assert domain.activation_link("http://p", "a/b?c") == "http://p/activate/activations/a%2Fb%3Fc"


def test_text_part_says_it_all_in_french():
    text = emails.render(email()).text
    assert text.startswith("Bonjour Fleur Fontaine,")
    assert "Votre compte utilisateur fleur.f@example.fr a été créé" in text
    assert "\nhttp://portal.test/activate/activations/Tok3n_-abc\n" in text
    assert "valable 60 minutes, jusqu'au 12 mars 2025 à 15 h 05" in text
    assert "demander un nouveau lien" in text
    assert "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message" in text


def test_html_part_has_the_same_facts():
    html = emails.render(email(ttl_seconds=7200)).html
    assert '<html lang="fr">' in html
    assert "Bonjour Fleur Fontaine," in html
    assert 'href="http://portal.test/activate/activations/Tok3n_-abc"' in html
    assert "<strong>2 heures</strong>" in html
    assert "ignorez ce message" in html


def test_a_resent_link_says_the_old_one_no_longer_works():
    text = emails.render(email(reason="resent")).text
    assert "nouveau lien" in text and "Le lien envoyé précédemment ne fonctionne plus." in text
    assert "a été créé" not in text


def test_html_in_a_name_is_escaped_in_the_html_part():
    rendered = emails.render(email(first_name="<script>alert(1)</script>", last_name='"><b>x'))
    assert "<script>" not in rendered.html and "<b>x" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "&#34;&gt;&lt;b&gt;x" in rendered.html


def test_crlf_in_a_name_adds_no_header_and_no_line():
    rendered = emails.render(
        email(first_name="Fleur\r\nBcc: victim@example.org", last_name="X\r\n\r\nInjected body")
    )
    assert rendered.text.startswith("Bonjour Fleur Bcc: victim@example.org X Injected body,\n")
    parsed = message_from_bytes(sent_bytes(rendered), policy=policy.default)
    assert parsed["Bcc"] is None
    assert sorted(parsed.keys()) == sorted(
        ["Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type"]
    )


def test_message_has_text_and_html_alternatives_and_standard_headers():
    parsed = message_from_bytes(sent_bytes(emails.render(email())), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["To"] == "fleur.f@example.fr"
    assert parsed["Subject"] == "Activez votre compte sur le portail de facturation"
    assert parsed["Date"].datetime == EXPIRES
    assert parsed["Message-ID"].endswith("@portail.test>")
    assert "Bonjour Fleur Fontaine" in parsed.get_body(("plain",)).get_content()
    assert "Bonjour Fleur Fontaine" in parsed.get_body(("html",)).get_content()


def test_an_address_with_crlf_cannot_become_a_header():
    with pytest.raises(ValueError):
        sent_bytes(emails.render(email()), to="a@example.fr\r\nBcc: b@example.org")
