"""Tokens, argon2id hashing and log redaction: the secrets of activate, without servers."""

from __future__ import annotations

import hashlib
import logging

from argon2 import Type, extract_parameters

from services.activate import passwords, tokens
from shared import redaction


def test_tokens_are_256_bit_urlsafe_and_distinct():
    made = {tokens.new_token() for _ in range(200)}
    assert len(made) == 200
    for token in made:
        assert len(token) == 43  # 32 bytes in unpadded base64url
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_token_hash_is_sha256_hex():
    assert tokens.token_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert tokens.token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert tokens.token_hash("\udcff") != tokens.token_hash("x")  # lone surrogates do not crash


def test_same_hash_compares_exactly():
    h = tokens.token_hash("abc")
    assert tokens.same_hash(h, tokens.token_hash("abc"))
    assert not tokens.same_hash(h, tokens.token_hash("abd"))
    assert not tokens.same_hash(h, h[:-1])


def test_plausible_tokens():
    assert tokens.plausible(tokens.new_token())
    assert not tokens.plausible("")
    assert not tokens.plausible("x" * 129)


def test_hasher_is_argon2id_at_owasp_parameters():
    hasher = passwords.make_hasher()
    stored = passwords.hash_secret(hasher, "Motdepasse1")
    params = extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert (params.type, params.time_cost, params.memory_cost, params.parallelism) == (Type.ID, 2, 19456, 1)
    assert passwords.verify(hasher, stored, "Motdepasse1")
    assert not passwords.verify(hasher, stored, "motdepasse1")
    assert not passwords.verify(hasher, "not a hash", "Motdepasse1")


def test_same_password_hashes_differently_each_time():
    hasher = passwords.make_hasher()
    assert passwords.hash_secret(hasher, "Motdepasse1") != passwords.hash_secret(hasher, "Motdepasse1")


def _formatted(record: logging.LogRecord) -> str:
    redaction.TokenRedactor().filter(record)
    return record.getMessage()


def test_request_lines_lose_their_token():
    token = tokens.new_token()
    record = logging.LogRecord(
        "werkzeug",
        logging.INFO,
        "",
        0,
        '"%s" %s %s',
        (f"GET /activate/api/activations/{token} HTTP/1.1", 200, 5),
        None,
    )
    line = _formatted(record)
    assert token not in line and "/activate/api/activations/[masqué] HTTP/1.1" in line


def test_gunicorn_atoms_lose_their_token():
    token = tokens.new_token()
    record = logging.LogRecord("gunicorn.access", logging.INFO, "", 0, "%(r)s %(U)s", None, None)
    record.args = {
        "r": f"POST /activate/activations/{token}?x=1 HTTP/1.1",
        "U": f"/activate/activations/{token}",
    }
    line = _formatted(record)
    assert token not in line and line.count("[masqué]") == 2


def test_gunicorn_safe_atoms_keep_working():
    from gunicorn.glogging import SafeAtoms

    token = tokens.new_token()
    atoms = SafeAtoms({"r": f"GET /activate/api/activations/{token} HTTP/1.1", "{x-request-id}i": "-"})
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, "", 0, "%(r)s %({X-Request-Id}i)s", (atoms,), None
    )
    line = _formatted(record)
    assert token not in line and line.endswith("[masqué] HTTP/1.1 -")


def test_redaction_is_installed_once():
    redaction.install()
    redaction.install()
    filters = logging.getLogger("werkzeug").filters
    assert sum(isinstance(f, redaction.TokenRedactor) for f in filters) == 1
