"""Smaller points of the security review, each attack tried and seen to fail: the secret-key
file, SECRET_KEY rotation, forged text log lines, and the rate-limit keys (one login email
however spelled, one IPv6 client per /64; these two count in the real Redis of tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask

from services.identify.app import create_app as identify_app
from shared import limits, logs
from shared.sealing import InvalidToken, seal, unseal
from shared.settings import Settings
from system.launcher import secret_key

ROOT = Path(__file__).resolve().parents[2]
SIRET = "73282932000074"


# --- 1. the secret-key file ------------------------------------------------------------------------


@pytest.fixture
def open_umask():
    """The most permissive umask: only the mode given at creation protects a new file."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_secret_key_file_is_owner_only(tmp_path, open_umask):
    key = secret_key(tmp_path)
    assert len(key) >= 64
    assert mode(tmp_path / "secret-key") == 0o600
    assert secret_key(tmp_path) == key  # the next start reads the same key


def test_the_secret_key_file_is_owner_only_from_its_creation(tmp_path):
    """A start whose write fails (no space, here a file size limit of 0) shows the mode the file
    was created with: a file created readable by all and chmod-ed afterwards stays 0666."""
    program = (
        "import os, sys; from pathlib import Path; from system.launcher import secret_key; "
        "os.umask(0); secret_key(Path(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0)),
        timeout=60,
    )
    assert done.returncode != 0  # nothing could be written
    assert mode(tmp_path / "secret-key") == 0o600
    with pytest.raises(SystemExit, match="empty"):  # and the next start does not run keyless
        secret_key(tmp_path)


def test_an_existing_secret_key_is_never_replaced(tmp_path):
    path = tmp_path / "secret-key"
    path.write_text("the-key-activation-links-were-sealed-with\n")
    path.chmod(0o600)
    assert secret_key(tmp_path) == "the-key-activation-links-were-sealed-with"
    assert path.read_text() == "the-key-activation-links-were-sealed-with\n"


# --- 2. rotating SECRET_KEY ------------------------------------------------------------------------


def test_a_token_sealed_before_a_rotation_still_opens():
    sealed = seal("activation-token", "old-key")
    settings = Settings.from_env({"SECRET_KEY": "new-key", "SECRET_KEY_PREVIOUS": "old-key"})
    assert (settings.secret_key, settings.secret_key_previous) == ("new-key", "old-key")
    assert unseal(sealed, settings.require_secret_key(), settings.secret_key_previous) == "activation-token"
    # After the rotation, sealing uses the new key only.
    assert unseal(seal("next-token", settings.require_secret_key()), "new-key") == "next-token"
    with pytest.raises(InvalidToken):
        unseal(seal("next-token", "new-key"), "old-key")


def test_a_token_sealed_with_an_unknown_key_does_not_open():
    forged = seal("activation-token", "a-key-nobody-configured")
    with pytest.raises(InvalidToken):
        unseal(forged, "new-key", "old-key")
    with pytest.raises(InvalidToken):  # nor with the previous key once it is dropped
        unseal(seal("activation-token", "old-key"), "new-key")


def test_secret_key_alone_works_as_before():
    settings = Settings.from_env({"SECRET_KEY": "a,key-with-a-comma"})
    assert settings.secret_key == "a,key-with-a-comma"
    assert settings.secret_key_previous is None
    assert unseal(seal("t", "a,key-with-a-comma"), settings.require_secret_key(), None) == "t"


# --- 3. forged text log lines ----------------------------------------------------------------------


@pytest.mark.parametrize("through", ["context", "extra"])
def test_a_registration_id_cannot_forge_a_text_log_line(through):
    stream = io.StringIO()
    logger = logging.getLogger(f"test.security.forged.{through}")
    logger.handlers[:] = [logs.make_handler("structure", stream, "text")]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    forged = "r1\n2025-01-01 00:00:00,000 INFO structure admin [r2]: password reset\r\x1b[2K"
    if through == "context":
        with logs.registration(forged):
            logger.info("step two read")
    else:
        logger.info("step two read", extra={"registration_id": forged})
    written = stream.getvalue()
    assert written.count("\n") == 1 and "\r" not in written and "\x1b" not in written
    assert "[r1\\n2025-01-01 00:00:00,000 INFO structure admin [r2]: password reset\\r\\x1b[2K]" in written
    assert written.rstrip("\n").endswith(": step two read")


def test_a_backslash_in_a_registration_id_cannot_pass_for_an_escape():
    assert logs.printable("r1\\nr2") == "r1\\\\nr2"
    assert logs.printable("r1\nr2") == "r1\\nr2"
    assert logs.printable("reg-1_é") == "reg-1_é"


# --- 4. one login email, however its domain is spelled ---------------------------------------------


def test_an_email_key_is_the_login_whatever_the_spelling_of_its_domain():
    app = Flask(__name__)
    key = limits.email_field("login_email")
    keys = set()
    for spelling in ("x@exämple.com", "x@xn--exmple-cua.com", " X@EXÄMPLE.com", "x@XN--EXMPLE-CUA.COM"):
        with app.test_request_context(json={"login_email": spelling}):
            keys.add(key())
    assert keys == {limits.digest("x@xn--exmple-cua.com")}


def register(client, email: str, ip: str):
    return client.post(
        "/identify/api/registrations",
        json={"login_email": email, "identifier": SIRET},
        headers={"X-Forwarded-For": ip},
    )


def test_an_idn_domain_and_its_ascii_form_count_against_one_limit(settings, redis_client):
    s = dataclasses.replace(
        settings, event_wait_seconds=0.05, rate_limit_registration_per_email="1 per minute"
    )
    client = identify_app(s, client=redis_client).test_client()
    assert register(client, "x@exämple.com", "198.51.100.1").status_code == 201
    assert register(client, "x@xn--exmple-cua.com", "198.51.100.2").status_code == 429
    assert register(client, "y@exämple.com", "198.51.100.3").status_code == 201  # another login


# --- 5. one IPv6 client per /64 --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::5", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::5", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4 seen through a dual-stack socket: as IPv4
        ("unknown", "unknown"),
    ],
)
def test_an_address_key(address, key):
    assert limits.address_key(address) == key


def test_addresses_in_one_ipv6_64_share_a_limit_and_others_do_not(settings, redis_client):
    s = dataclasses.replace(settings, event_wait_seconds=0.05, rate_limit_registration_per_ip="1 per minute")
    client = identify_app(s, client=redis_client).test_client()
    assert register(client, "a@example.fr", "2001:db8:1:2::1").status_code == 201
    assert register(client, "b@example.fr", "2001:db8:1:2:dead:beef:0:2").status_code == 429  # same /64
    assert register(client, "c@example.fr", "2001:db8:1:3::1").status_code == 201  # another /64
    assert register(client, "d@example.fr", "203.0.113.1").status_code == 201  # IPv4 as before
    assert register(client, "e@example.fr", "203.0.113.2").status_code == 201
