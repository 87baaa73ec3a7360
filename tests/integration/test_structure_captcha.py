"""The bot challenge of step 2 switched on, against a real Redis: its image, its audio, its page."""

from __future__ import annotations

import base64
import re
from dataclasses import replace

import pytest

from services.structure.app import create_app
from services.structure.bootstrap import bootstrap
from services.structure.captcha import DRAWS_PER_CHALLENGE, KEPT_PER_REGISTRATION, CaptchaMaker, random_text
from shared.testing import events_on
from tests.captcha_drawing import RecordingDrawer
from tests.clock import Clock
from tests.integration.test_structure_support import deliver, snapshot, started, step2
from tests.unit.test_structure_captcha import RecordingVoices

WRONG = "Les caractères saisis ne correspondent pas à l'image."
PNG = b"\x89PNG\r\n\x1a\n"
EXPIRED = "Ce code a expiré : demandez-en un nouveau."
# What a challenge may keep in Redis (MEMORY USAGE of its hash): its answer's hash, expiry,
# sealed text and drawing count take about 300 bytes; the PNG it used to keep took 10 to 20 KB.
MAX_BYTES_PER_CHALLENGE = 1024


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
def drawer() -> RecordingDrawer:
    return RecordingDrawer()


@pytest.fixture
def voices() -> RecordingVoices:
    return RecordingVoices()


@pytest.fixture
def clock() -> Clock:
    return Clock(1_700_000_000.0)


@pytest.fixture
def make_client(settings, redis_client, answers, drawer, voices, clock):
    def make(text=answers, **overrides):
        wiring = bootstrap(
            replace(settings, captcha_enabled=True, **overrides), client=redis_client, clock=clock
        )
        wiring = replace(wiring, captchas=CaptchaMaker(text=text, drawer=drawer, speaker=voices))
        return create_app(wiring=wiring).test_client()

    return make


@pytest.fixture
def client(make_client):
    return make_client()


def new_registration(redis_client, settings) -> str:
    event = started()
    deliver(redis_client, settings, event)
    return f"/structure/api/registrations/{event.subject}"


def new_captcha(client, registration_id: str | None = None) -> str:
    query = {"registration_id": registration_id} if registration_id else None
    issued = client.post("/structure/api/captchas", query_string=query)
    assert issued.status_code == 201, issued.json
    return issued.json["captcha_id"]


def captcha_keys(redis_client) -> list[str]:
    return sorted(redis_client.scan_iter("structure:captcha:*"))


def test_challenge_has_an_image_and_the_form_asks_for_it(client, redis_client, settings, answers, drawer):
    issued = client.post("/structure/api/captchas").json
    prefix = "data:image/png;base64,"
    assert issued["image"].startswith(prefix)
    png = base64.b64decode(issued["image"][len(prefix) :])
    assert png.startswith(PNG)
    page_image = client.get(issued["image_url"])
    assert page_image.status_code == 200 and page_image.mimetype == "image/png"
    assert page_image.data.startswith(PNG) and page_image.headers["Cache-Control"] == "no-store"
    assert drawer.drawn == [answers.drawn[-1]] * 2  # the URL's image: the same text, drawn again
    key = f"structure:captcha:{issued['captcha_id']}"
    stored = redis_client.hgetall(key)
    assert answers.drawn[-1] not in str(stored)
    assert sorted(stored) == ["answer_hash", "draws", "expires_at", "sealed_text"]  # no image kept
    assert redis_client.memory_usage(key) <= MAX_BYTES_PER_CHALLENGE
    assert 0 < redis_client.ttl(key) <= 600
    assert client.get(new_registration(redis_client, settings)).json["captcha_required"] is True
    assert client.get("/structure/api/captchas/unknown.png").status_code == 404


def test_the_same_challenge_is_said_in_french(client, answers, voices):
    issued = client.post("/structure/api/captchas").json
    assert issued["audio_url"] == f"/structure/api/captchas/{issued['captcha_id']}.wav"
    heard = client.get(issued["audio_url"])
    assert heard.status_code == 200 and heard.mimetype == "audio/wav"
    assert heard.headers["Cache-Control"] == "no-store"
    assert heard.data[:4] == b"RIFF" and heard.data[8:12] == b"WAVE"
    assert voices.said == [answers.drawn[-1]]  # the text of the challenge, from its sealed copy
    assert client.get("/structure/api/captchas/unknown.wav").json["message"] == EXPIRED


def test_a_challenge_is_rendered_a_bounded_number_of_times_image_and_audio_together(
    client, redis_client, settings, drawer, voices
):
    """Loading the image or audio URL again and again neither burns CPU nor gives a machine
    many renderings of the same text to compare."""
    issued = client.post("/structure/api/captchas").json  # its image: the first rendering
    urls = [issued["audio_url"], issued["image_url"]] * 3
    answers = [client.get(url).status_code for url in urls]
    assert answers == [200] * (DRAWS_PER_CHALLENGE - 1) + [404] * (7 - DRAWS_PER_CHALLENGE)
    assert len(drawer.drawn) + len(voices.said) == DRAWS_PER_CHALLENGE
    for url in (issued["audio_url"], issued["image_url"]):
        gone = client.get(url)
        assert gone.status_code == 404 and gone.json["message"] == EXPIRED

    registration_id = new_registration(redis_client, settings).rsplit("/", 1)[1]
    page = client.get(f"/structure/registrations/{registration_id}").get_data(as_text=True)
    audio_url = re.search(r'<audio controls preload="none" src="([^"]+)"', page).group(1)
    said = len(voices.said)
    answers = [client.get(audio_url).status_code for _ in range(5)]
    assert answers == [200] * DRAWS_PER_CHALLENGE + [404] * (5 - DRAWS_PER_CHALLENGE)
    assert len(voices.said) - said == DRAWS_PER_CHALLENGE


def test_an_expired_challenge_has_no_image_nor_audio(client, clock, voices):
    issued = client.post("/structure/api/captchas").json
    clock.now += 601
    assert client.get(issued["image_url"]).status_code == 404
    assert client.get(issued["audio_url"]).status_code == 404 and voices.said == []


def test_a_challenge_no_voice_can_say_is_expired_not_an_error(make_client):
    """Made before the alphabet lost K and N (alive for 10 minutes across a deployment)."""
    client = make_client(text=lambda: "HK7RNA")
    issued = client.post("/structure/api/captchas").json
    heard = client.get(issued["audio_url"])
    assert heard.status_code == 404 and heard.json["message"] == EXPIRED


def test_the_page_offers_the_audio_and_a_new_challenge_for_its_registration(
    client, redis_client, settings, answers, voices
):
    """The page's player says the page's challenge; its « Nouveau code » script asks the API
    for another one for the same registration, whose image comes with it and whose audio
    answers, and whose answer confirms the form."""
    path = new_registration(redis_client, settings)
    registration_id = path.rsplit("/", 1)[1]
    page = client.get(f"/structure/registrations/{registration_id}").get_data(as_text=True)
    captcha_id = re.search(r'name="captcha_id" value="([^"]+)"', page).group(1)
    assert f'<audio controls preload="none" src="/structure/api/captchas/{captcha_id}.wav"' in page
    assert page.index('id="captcha-audio-aide"') < page.index("<img") < page.index("<audio")
    assert 'aria-describedby="captcha-aide captcha-audio-aide"' in page
    assert '<script src="/structure/static/captcha.js" defer>' in page
    assert client.get("/structure/static/captcha.js").status_code == 200
    new_url = re.search(r'data-new-captcha-url="([^"]+)"', page).group(1)
    assert new_url == f"/structure/api/captchas?registration_id={registration_id}"

    renewed = client.post(new_url)
    assert renewed.status_code == 201 and renewed.json["captcha_id"] != captcha_id
    assert renewed.json["image"].startswith("data:image/png;base64,")
    assert client.get(renewed.json["audio_url"]).status_code == 200
    assert voices.said == [answers.drawn[-1]]
    issued_for = redis_client.hgetall(f"structure:registration-captchas:{registration_id}")
    assert set(issued_for) == {captcha_id, renewed.json["captcha_id"]}
    solved = {"captcha_id": renewed.json["captcha_id"], "answer": answers.drawn[-1]}
    assert client.post(path, json={**step2(), "captcha": solved}).status_code == 201


def test_the_audio_route_is_in_the_openapi_document(client):
    document = client.get("/structure/openapi.json").json
    audio = document["paths"]["/structure/api/captchas/{captcha_id}.wav"]["get"]
    assert "WAV" in audio["responses"]["200"]["description"]
    assert "audio_url" in document["components"]["schemas"]["Captcha"]["properties"]


def test_a_registration_keeps_only_its_latest_challenges(make_client, redis_client, settings, answers, clock):
    """A flood of challenges for one registration, from the API and the page alike, leaves
    KEPT_PER_REGISTRATION of them in Redis: each new one spends the oldest (whatever the rate
    limits let through). The clock moves between them, as it does (the oldest is the one that
    expires first)."""
    client = make_client(rate_limits_enabled=False)
    path = new_registration(redis_client, settings)
    registration_id = path.rsplit("/", 1)[1]
    first = new_captcha(client, registration_id)
    first_answer = answers.drawn[-1]
    for _ in range(6):
        clock.advance(1)
        new_captcha(client, registration_id)
        clock.advance(1)
        assert client.get(f"/structure/registrations/{registration_id}").status_code == 200
    unbound = new_captcha(client)
    keys = captcha_keys(redis_client)
    assert len(keys) == KEPT_PER_REGISTRATION + 1 and f"structure:captcha:{unbound}" in keys
    issued_for = redis_client.hgetall(f"structure:registration-captchas:{registration_id}")
    assert sorted(f"structure:captcha:{captcha_id}" for captcha_id in issued_for) == sorted(
        set(keys) - {f"structure:captcha:{unbound}"}
    )
    spent = client.post(path, json={**step2(), "captcha": {"captcha_id": first, "answer": first_answer}})
    assert spent.status_code == 422 and spent.json["errors"] == {"captcha": [WRONG]}
    latest = client.post(
        path, json={**step2(), "captcha": {"captcha_id": new_captcha(client), "answer": answers.drawn[-1]}}
    )
    assert latest.status_code == 201, latest.json


def test_a_challenge_for_an_unknown_registration_is_refused(client, redis_client):
    answer = client.post("/structure/api/captchas", query_string={"registration_id": "nobody"})
    assert answer.status_code == 404
    assert captcha_keys(redis_client) == []
    for refused in ("", "x" * 65):
        answer = client.post("/structure/api/captchas", query_string={"registration_id": refused})
        assert answer.status_code == 422 and "registration_id" in answer.json["errors"]
    ignored = client.post("/structure/api/captchas", query_string={"t": "1"})  # as before
    assert ignored.status_code == 201


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
