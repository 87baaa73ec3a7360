"""JSON log lines and the registration id that every line of a unit of work carries."""

from __future__ import annotations

import io
import json
import logging
import threading
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from shared import logs

TOKEN = "tOk3n_SECRET-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture
def restore_logging():
    """configure() and gunicorn's logger change process-wide loggers: put them back."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    gunicorn = {
        name: list(logging.getLogger(name).handlers) for name in ("gunicorn.error", "gunicorn.access")
    }
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, handlers in gunicorn.items():
        logging.getLogger(name).handlers[:] = handlers


def capture(service: str = "identify", fmt: str = "json") -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logger = logging.getLogger(f"test.logs.{service}.{fmt}")
    logger.handlers[:] = [logs.make_handler(service, stream, fmt)]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_has_the_fields_and_nothing_else():
    logger, stream = capture("structure-consumer")
    # Celery attaches the task's arguments (personal data) as `data`: it must not be written.
    logger.info("étape %s franchie", 2, extra={"data": {"kwargs": {"login_email": "fleur@example.fr"}}})
    (line,) = lines(stream)
    assert set(line) == {"timestamp", "level", "service", "pid", "logger", "message"}
    assert line["level"] == "INFO" and line["service"] == "structure-consumer"
    assert line["logger"] == "test.logs.structure-consumer.json"
    assert line["message"] == "étape 2 franchie"
    assert line["timestamp"].endswith("+00:00") and "T" in line["timestamp"]
    assert "fleur@example.fr" not in stream.getvalue()
    assert "étape" in stream.getvalue(), "written as UTF-8, not escaped"


def test_every_line_inside_a_unit_of_work_names_its_registration():
    logger, stream = capture()
    logger.info("before")
    with logs.registration("reg-1"):
        logger.info("inside")
        with logs.registration("reg-2"):
            logger.warning("nested")
        logger.info("inside again")
    logger.info("after")
    assert [line.get("registration_id") for line in lines(stream)] == [None, "reg-1", "reg-2", "reg-1", None]
    assert logs.current_registration_id() is None


def test_an_explicit_registration_id_wins_over_the_context():
    logger, stream = capture()
    with logs.registration("reg-context"):
        logger.info("x", extra={"registration_id": "reg-explicit"})
    assert lines(stream)[0]["registration_id"] == "reg-explicit"


def test_threads_do_not_see_each_others_registration():
    seen: dict[str, str | None] = {}
    ready, done = threading.Event(), threading.Event()

    def worker() -> None:
        ready.wait(5)
        seen["other thread"] = logs.current_registration_id()
        done.set()

    thread = threading.Thread(target=worker)
    thread.start()
    with logs.registration("reg-main"):
        ready.set()
        done.wait(5)
    thread.join(5)
    assert seen == {"other thread": None}


def test_tracebacks_are_kept_and_tokens_masked():
    logger, stream = capture()
    try:
        raise ValueError(f"bad /activate/activations/{TOKEN}")
    except ValueError:
        logger.exception("GET /activate/api/activations/%s failed", TOKEN)
    (line,) = lines(stream)
    assert line["level"] == "ERROR"
    assert "ValueError" in line["exc_info"]
    assert TOKEN not in stream.getvalue()
    assert line["message"] == "GET /activate/api/activations/[masqué] failed"


def test_text_lines_for_a_person_name_the_registration_too():
    logger, stream = capture("identify", "text")
    with logs.registration("reg-9"):
        logger.info("GET /activate/activations/%s", TOKEN)
    text = stream.getvalue()
    assert " INFO identify test.logs.identify.text [reg-9]: GET /activate/activations/[masqué]" in text
    assert TOKEN not in text


@pytest.mark.parametrize(
    ("env", "expected"), [({}, "json"), ({"LOG_FORMAT": "text"}, "text"), ({"LOG_FORMAT": " JSON "}, "json")]
)
def test_log_format_comes_from_the_environment(env, expected):
    assert logs.log_format(env) == expected


def test_an_unknown_log_format_is_refused_at_start():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logs.log_format({"LOG_FORMAT": "xml"})


def test_configure_replaces_its_own_handler_and_keeps_the_others(restore_logging):
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)
    logs.configure("identify-consumer", fmt="json")
    logs.configure("identify-consumer", fmt="json")
    ours = [h for h in root.handlers if getattr(h, "_portal", False)]
    assert len(ours) == 1 and other in root.handlers
    assert isinstance(ours[0].formatter, logs.JsonFormatter)


@pytest.mark.parametrize(
    ("proc_name", "service"),
    [
        ("identify", "identify"),
        ("services.activate.app:create_app()", "activate"),
        ("system.gateway:create_app()", "gateway"),
    ],
)
def test_gunicorn_processes_are_named_after_their_service(proc_name, service):
    assert logs.service_of(proc_name) == service


def test_gunicorn_access_line_is_json_masked_and_names_the_registration(restore_logging, capsys):
    cfg = Config()
    cfg.set("proc_name", "activate")
    cfg.set("accesslog", "-")
    logger = logs.GunicornLogger(cfg)
    request = SimpleNamespace(
        method="GET",
        path=f"/activate/activations/{TOKEN}",
        query="",
        uri=f"/activate/activations/{TOKEN}",
        version=(1, 1),
        headers=[("REFERER", f"http://portal.test/activate/activations/{TOKEN}")],
    )
    response = SimpleNamespace(status="200 OK", response_length=12, sent=12, headers=[])
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/activate/activations/{TOKEN}",
        "PATH_INFO": f"/activate/activations/{TOKEN}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": f"http://portal.test/activate/activations/{TOKEN}",
        logs.ENVIRON_KEY: "reg-42",
    }
    logger.access(response, request, environ, SimpleNamespace(seconds=0, microseconds=1500))
    out = capsys.readouterr().out
    (line,) = [json.loads(text) for text in out.splitlines()]
    assert line["service"] == "activate" and line["logger"] == "gunicorn.access"
    assert line["registration_id"] == "reg-42"
    assert TOKEN not in out and "[masqué]" in line["message"]
    assert logs.current_registration_id() is None
