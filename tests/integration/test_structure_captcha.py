"""The bot challenge of step 2 switched on, against a real Redis."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from services.structure.app import create_app
from services.structure.captcha import random_text
from shared.testing import events_on
from tests.clock import Clock
from tests.integration.test_structure_support import deliver, snapshot, started, step2

WRONG = "Les caractères saisis ne correspondent pas à l'image."


class Answers:
    """The challenge's text generator: random as in production, remembered for the test."""

    def __init__(self) -> None:
        self.drawn: list[str] = []

    def __call__(self) -> str:
        self.drawn.append(random_text())
        return self.drawn[-1]



@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def clock() -> Clock:
    return Clock(1_700_000_000.0)


@pytest.fixture
def client(settings, redis_client, answers, clock):
    app = create_app(
        replace(settings, captcha_enabled=True), client=redis_client, captcha_text=answers, clock=clock
    )
    return app.test_client()


def new_registration(redis_client, settings) -> str:
    event = started()
    deliver(redis_client, settings, event)
    return f"/structure/api/registrations/{event.subject}"


def new_captcha(client) -> str:
    issued = client.post("/structure/api/captchas")
    assert issued.status_code == 201
    return issued.json["captcha_id"]


def test_challenge_has_an_image_and_the_form_asks_for_it(client, redis_client, settings, answers):
    issued = client.post("/structure/api/captchas").json
    prefix = "data:image/png;base64,"
    assert issued["image"].startswith(prefix)
    png = base64.b64decode(issued["image"][len(prefix) :])
    assert png.startswith(b"\x89PNG")
    page_image = client.get(issued["image_url"])
    assert page_image.status_code == 200 and page_image.mimetype == "image/png"
    assert page_image.data == png
    stored = redis_client.hgetall(f"structure:captcha:{issued['captcha_id']}")
    assert answers.drawn[-1] not in str(stored)
    assert 0 < redis_client.ttl(f"structure:captcha:{issued['captcha_id']}") <= 600
    assert client.get(new_registration(redis_client, settings)).json["captcha_required"] is True
    assert client.get("/structure/api/captchas/unknown.png").status_code == 404


def test_missing_or_wrong_answer_is_refused(client, redis_client, settings, answers):
    path = new_registration(redis_client, settings)
    before = snapshot(redis_client)
    missing = client.post(path, json=step2())
    assert missing.status_code == 422 and missing.json["errors"] == {"captcha": [WRONG]}
    assert snapshot(redis_client) == before

    captcha_id = new_captcha(client)
    wrong = client.post(path, json={**step2(), "captcha": {"captcha_id": captcha_id, "answer": "AAAAAA"}})
    assert wrong.status_code == 422 and wrong.json["errors"] == {"captcha": [WRONG]}
    # The wrong guess used the challenge up: its right answer no longer helps.
    late = client.post(
        path, json={**step2(), "captcha": {"captcha_id": captcha_id, "answer": answers.drawn[-1]}}
    )
    assert late.status_code == 422
    assert events_on(redis_client, "StructureConfirmed") == []


def test_right_answer_passes_once(client, redis_client, settings, answers):
    path = new_registration(redis_client, settings)
    captcha_id = new_captcha(client)
    solved = {"captcha_id": captcha_id, "answer": answers.drawn[-1].lower()}
    answer = client.post(path, json={**step2(), "captcha": solved})
    assert answer.status_code == 201, answer.json
    other = new_registration(redis_client, settings)
    reused = client.post(other, json={**step2(), "captcha": solved})
    assert reused.status_code == 422 and "captcha" in reused.json["errors"]


def test_field_errors_and_captcha_error_come_together(client, redis_client, settings):
    path = new_registration(redis_client, settings)
    answer = client.post(
        path, json={**step2(user={"last_name": ""}), "captcha": {"captcha_id": "x", "answer": "y"}}
    )
    assert answer.status_code == 422
    assert set(answer.json["errors"]) == {"user.last_name", "captcha"}


def test_expired_challenge_is_refused(client, redis_client, settings, answers, clock):
    path = new_registration(redis_client, settings)
    captcha_id = new_captcha(client)
    clock.now += 601
    answer = client.post(
        path, json={**step2(), "captcha": {"captcha_id": captcha_id, "answer": answers.drawn[-1]}}
    )
    assert answer.status_code == 422 and "captcha" in answer.json["errors"]
