"""Schemathesis against each service's own OpenAPI document: no 5xx, no answer outside the schema.

Each service's Flask app is loaded in-process (WSGI, no server: `schemathesis.openapi.from_wsgi`)
against the real Redis of the tests, with the bot challenge and the rate limits off (they would
only answer 429 after a few examples). Every operation of the document gets requests that fit it
(positive) and requests that do not (negative), each checked with `not_a_server_error` and the
answer's conformance to what the document says of its status (`response_schema_conformance`).

Random path parameters only ever find 404s, so each operation is also run with its path
parameters fixed to things that exist: a started registration, a pending account, a live
activation link, a saved message. The number of examples per operation is bounded so that the
whole file stays well under a minute and a half.

(schemathesis' own pytest integration, `schemathesis.pytest.from_fixture`, fails under pytest 9
— it sets `request.node._nodeid` — so the operations are driven with Hypothesis directly.)
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from types import ModuleType

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from services.activate import bootstrap as activate_bootstrap
from services.activate import consumer as activate_consumer
from services.activate.app import create_app as activate_app
from services.identify.app import create_app as identify_app
from services.notify import mailfiles
from services.notify.app import create_app as notify_app
from services.structure import bootstrap as structure_bootstrap
from services.structure import consumer as structure_consumer
from services.structure.app import create_app as structure_app
from shared.settings import Settings
from shared.testing import events_on, publish_now
from tests.integration.test_activate_flow import GOOD, structure_confirmed, token_of

pytestmark = pytest.mark.timeout(120)

APPS = {"identify": identify_app, "structure": structure_app, "activate": activate_app, "notify": notify_app}
CHECKS = [not_a_server_error, response_schema_conformance]
EXAMPLES = hypothesis_settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure can be replayed
    suppress_health_check=list(HealthCheck),
    database=None,
)
NEGATIVE = GenerationMode.NEGATIVE
MODES = [GenerationMode.POSITIVE, NEGATIVE]


def failures(schema, mode: GenerationMode, existing: dict[str, list[str]]) -> tuple[list[str], int]:
    """Each operation's failures (Hypothesis' shrunk example and the check): with random path
    parameters, then with each value of `existing` for its path parameter; and how many
    requests were sent in all (so that a run that generated nothing cannot pass)."""
    found, sent = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        runs: list[dict[str, str]] = [{}]
        for parameter in operation.path_parameters:
            runs += [{parameter.name: value} for value in existing.get(parameter.name, [])]
        for fixed in runs:

            @EXAMPLES
            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None))
            def run(case):
                nonlocal sent
                sent += 1
                case.call_and_validate(checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                continue  # nothing of this operation can be made not to fit (a path string alone)
            except Exception as exc:  # noqa: BLE001 (every failure is listed, then the test fails)
                found.append(f"{operation.label} {fixed}: {exc}")
    return found, sent


def _consume(service: ModuleType, bootstrap: ModuleType, settings: Settings, client: redis.Redis) -> None:
    """What the consumer of `service` (its module) has to handle, handled once."""
    wiring = bootstrap.bootstrap(settings, client=client)
    service.build(wiring, name="schemathesis", block_ms=20).run_once()


def existing_things(service: str, settings: Settings, client: redis.Redis) -> dict[str, list[str]]:
    """Path parameters that name something real in `service`, in each of its states."""
    if service in ("identify", "structure"):
        answer = (
            identify_app(settings, client=client)
            .test_client()
            .post(
                "/identify/api/registrations",
                json={"login_email": "francoise.fleur@example.fr", "identifier": "81880244900038"},
            )
        )
        _consume(structure_consumer, structure_bootstrap, settings, client)
        return {"registration_id": [answer.json["registration_id"]]}
    if service == "activate":
        return _accounts_and_links(settings, client)
    message = EmailMessage()
    message["To"], message["Subject"] = "fleur@example.fr", "Activez votre compte"
    message.set_content("Bonjour")
    return {"name": [mailfiles.save(settings.mail_dir, message.as_bytes(), datetime.now(UTC))]}


def _accounts_and_links(settings: Settings, client: redis.Redis) -> dict[str, list[str]]:
    """Accounts pending, awaiting activation and active; links live, replaced (410) and used
    (410). The live link's account is left out of the registration ids: no resend voids it."""
    accounts = ("pending", "awaiting", "active", "live")
    for registration_id in accounts:
        publish_now(client, structure_confirmed(registration_id, f"{registration_id}@example.fr"))
    _consume(activate_consumer, activate_bootstrap, settings, client)
    app = activate_app(settings, client=client).test_client()
    for registration_id in accounts[1:]:
        assert (
            app.post(f"/activate/api/registrations/{registration_id}/workspaces", json={}).status_code == 201
        )
    assert app.post("/activate/api/registrations/awaiting/activation-email").status_code == 202
    links = {
        r: [token_of(e, settings) for e in events_on(client, "ActivationLinkIssued") if e.subject == r]
        for r in accounts
    }
    (replaced, _), (used,), (live,) = links["awaiting"], links["active"], links["live"]
    assert app.post(f"/activate/api/activations/{used}", json=GOOD).status_code == 200
    return {"registration_id": list(accounts[:3]), "token": [live, replaced, used]}


# notify's API takes nothing but path strings: no request of it can be made not to fit.
FUZZED = [(service, mode) for service in APPS for mode in MODES if (service, mode) != ("notify", NEGATIVE)]


@pytest.mark.parametrize(("service", "mode"), FUZZED, ids=[f"{s}-{m}" for s, m in FUZZED])
def test_no_server_error_and_every_answer_as_documented(service, mode, settings, redis_client):
    quiet = replace(
        settings,
        captcha_enabled=False,
        rate_limits_enabled=False,
        event_wait_seconds=0,
        mailbox_enabled=True,  # notify's one API, served as under `make run` with the mail catcher
    )
    existing = existing_things(service, quiet, redis_client)
    schema = schemathesis.openapi.from_wsgi(
        f"/{service}/openapi.json", APPS[service](quiet, client=redis_client)
    )
    found, sent = failures(schema, mode, existing)
    assert found == []
    assert sent > 0, "no request was generated"


# --- size limits, read from the same documents ----------------------------------------------------


def _documents(settings: Settings, client: redis.Redis) -> dict[str, dict]:
    return {
        service: make(settings, client=client).test_client().get(f"/{service}/openapi.json").json
        for service, make in APPS.items()
    }


def _request_strings(document: dict) -> list[tuple[str, dict]]:
    """Every string and array of every request body, with where it is (`POST /path: a.b`)."""
    components = document.get("components", {}).get("schemas", {})
    found: list[tuple[str, dict]] = []

    def walk(schema: dict, where: str) -> None:
        if "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[1]]
        if schema.get("type") in ("string", "array"):
            found.append((where, schema))
        for name, sub in schema.get("properties", {}).items():
            walk(sub, f"{where}.{name}")
        if "items" in schema:
            walk(schema["items"], f"{where}[]")
        for sub in schema.get("allOf", []) + schema.get("anyOf", []) + schema.get("oneOf", []):
            walk(sub, where)  # a nullable nested schema, for one

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":  # the path's parameters, not an operation
                continue
            for content in operation.get("requestBody", {}).get("content", {}).values():
                walk(content["schema"], f"{method.upper()} {path}:")
    return found


def test_every_field_of_every_request_has_a_size_limit(settings, redis_client):
    seen = []
    for service, document in _documents(settings, redis_client).items():
        for where, schema in _request_strings(document):
            seen.append(where)
            limit = schema.get("maxLength" if schema["type"] == "string" else "maxItems")
            assert limit is not None and limit <= 1024, f"{service} {where} has no size limit"
    # Every field of the bodies: steps 1 to 4 and a new link by email (25 fields); « mot de passe
    # oublié » (4); « Mon compte » (10); sign-in (4); the authenticator app (2); the attachment
    # request (6), a decision (2) and a detachment (1).
    assert len(seen) == 54


def _posts(settings: Settings, client: redis.Redis) -> list[tuple[str, str, bool]]:
    """Each service's POST operations (service, path with dummy ids, whether it takes a body)."""
    return [
        (service, re.sub(r"\{[^}]+\}", "x", path), "requestBody" in operations["post"])
        for service, document in _documents(settings, client).items()
        for path, operations in document["paths"].items()
        if "post" in operations
    ]


def test_a_100_kib_body_is_refused_with_413_in_french(settings, redis_client):
    quiet = replace(settings, captcha_enabled=False, rate_limits_enabled=False, event_wait_seconds=0)
    body = json.dumps({"login_email": "a" * 100 * 1024})
    posts = _posts(quiet, redis_client)
    assert len([p for p in posts if p[2]]) == 17
    for service, path, takes_a_body in posts:
        if not takes_a_body:
            continue
        answer = (
            APPS[service](quiet, client=redis_client)
            .test_client()
            .post(path, data=body, content_type="application/json")
        )
        assert answer.status_code == 413, (service, path, answer.status_code)
        assert answer.json == {
            "code": 413,
            "status": "Request Entity Too Large",
            "message": "La requête est trop volumineuse.",
        }


def test_a_100_kib_body_is_refused_even_where_no_body_is_expected(settings, redis_client):
    quiet = replace(settings, captcha_enabled=False, rate_limits_enabled=False, event_wait_seconds=0)
    body = json.dumps({"x": "a" * 100 * 1024})
    posts = [
        (service, path) for service, path, takes_a_body in _posts(quiet, redis_client) if not takes_a_body
    ]
    assert posts == [
        ("structure", "/structure/api/captchas"),
        ("activate", "/activate/api/registrations/x/activation-email"),
        ("activate", "/activate/api/contact-emails/x"),
        ("activate", "/activate/api/sign-out"),
        ("activate", "/activate/api/me/second-factor"),
    ]
    for service, path in posts:
        answer = (
            APPS[service](quiet, client=redis_client)
            .test_client()
            .post(path, data=body, content_type="application/json")
        )
        assert answer.status_code == 413, (service, path, answer.status_code)
