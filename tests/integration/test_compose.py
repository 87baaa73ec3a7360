"""docker-compose.yml, the Dockerfile and the gateway's nginx.conf, checked without a Docker engine.

The compose file is validated against the Compose specification, then read (ruamel.yaml, which
check-jsonschema brings) and compared with the project itself: every command names a real entry
point, every healthcheck a real route, the gateway the contract's prefixes. The gateway config is
also run by Debian's nginx (`make test` installs it), in front of a recording backend.
"""

from __future__ import annotations

import http.client
import importlib
import importlib.util
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from celery import Celery
from flask import Flask
from gunicorn.glogging import Logger as GunicornLogger
from ruamel.yaml import YAML

from shared.settings import Settings
from tests.servers import free_port, required_tool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
NGINX_TLS_CONF = ROOT / "deploy" / "nginx-tls.conf"
DOCKERFILE = ROOT / "Dockerfile"
SERVICES = ("identify", "structure", "activate", "notify")
GATEWAY_ROUTES = {"/identify/", "/structure/", "/activate/", "/notify/", "= /healthz"}
IMAGE = "portail-comptes:latest"
# What an operator must provide; the rest has defaults.
REQUIRED_ENV = {"SECRET_KEY": "compose-test-secret"}


# --- reading the files ---------------------------------------------------------------------


def load_compose() -> dict:
    return YAML(typ="safe").load(COMPOSE.read_text())


_INNERMOST = re.compile(r"\$\{([^${}]*)\}")
_OPERATOR = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?$", re.S)


class MissingVariable(Exception):
    pass


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, nested, `$$`."""

    def one(match: re.Match) -> str:
        parsed = _OPERATOR.match(match.group(1))
        assert parsed, f"unsupported interpolation {match.group(0)!r}"
        name, operator, operand = parsed.groups()
        present = name in env and (env[name] != "" or not (operator or "").startswith(":"))
        if present:
            return env[name]
        if operator in (":?", "?"):
            raise MissingVariable(f"{name}: {operand}")
        return operand if operator in (":-", "-") else ""

    value = value.replace("$$", "\0")
    while True:
        replaced = _INNERMOST.sub(one, value)
        if replaced == value:
            break
        value = replaced
    assert not re.search(r"\$[A-Za-z_{]", value), f"unresolved variable in {value!r}"
    return value.replace("\0", "$")


def resolved(data, env: Mapping[str, str]):
    if isinstance(data, str):
        return interpolate(data, env)
    if isinstance(data, list):
        return [resolved(item, env) for item in data]
    if isinstance(data, dict):
        return {key: resolved(item, env) for key, item in data.items()}
    return data


def command_of(service: dict) -> list[str]:
    command = service["command"]
    assert isinstance(command, list), "commands are lists (exec form, no shell in between)"
    return resolved(command, REQUIRED_ENV)


def python_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") == IMAGE}


def gunicorn_services(compose: dict) -> dict[str, dict]:
    return {n: s for n, s in python_services(compose).items() if command_of(s)[0] == "gunicorn"}


def option(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def container_env(service: dict, env: Mapping[str, str] = REQUIRED_ENV) -> dict[str, str]:
    environment = service["environment"]
    assert isinstance(environment, dict)
    return {key: str(resolved(value, env)) for key, value in environment.items()}


def nginx_tokens(text: str) -> Iterator[str]:
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char == "#":
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        elif char in "{};":
            yield char
            i += 1
        elif char in "'\"":
            end = text.index(char, i + 1)
            yield text[i + 1 : end]
            i = end + 1
        else:
            match = re.compile(r"[^\s{};]+").match(text, i)
            assert match
            yield match.group(0)
            i = match.end()


def nginx_tree(text: str) -> list[tuple[str, list[str], list | None]]:
    """[(directive, args, children or None)] — enough of nginx's syntax for this config."""
    stack: list[list] = [[]]
    words: list[str] = []
    for token in nginx_tokens(text):
        if token == ";":
            stack[-1].append((words[0], words[1:], None))
            words = []
        elif token == "{":
            block: list = []
            stack[-1].append((words[0], words[1:], block))
            stack.append(block)
            words = []
        elif token == "}":
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced nginx.conf"
    return stack[0]


def walk(tree: list) -> Iterator[tuple[str, list[str], list | None]]:
    for directive in tree:
        yield directive
        if directive[2] is not None:
            yield from walk(directive[2])


def directives(tree: list, name: str) -> list[tuple[str, list[str], list | None]]:
    return [d for d in walk(tree) if d[0] == name]


def routes(tree: list) -> dict[str, str]:
    """location → the URL it proxies to, with the `set $var` of that location substituted."""
    found = {}
    for _, args, block in directives(tree, "location"):
        assert block is not None
        variables = {f"${a[0].lstrip('$')}": a[1] for d, a, _ in block if d == "set"}
        for directive, proxy_args, _ in block:
            if directive == "proxy_pass":
                target = proxy_args[0]
                for variable, value in variables.items():
                    target = target.replace(variable, value)
                found[" ".join(args)] = target
    return found


def pcre_to_python(pattern: str) -> re.Pattern:
    flags = re.I if pattern.startswith("~*") else 0
    return re.compile(re.sub(r"\(\?<(\w+)>", r"(?P<\1>", pattern.lstrip("~*")), flags)


def apply_map(tree: list, variable: str, value: str) -> str:
    """Evaluate the `map` that defines `variable` the way nginx does (regexes in order)."""
    (block,) = [b for _, a, b in directives(tree, "map") if a[1] == variable]
    default = ""
    for key, args, _ in block:
        if key == "default":
            default = value if args[0].startswith("$") else args[0]  # the map's own source, here
    for key, args, _ in block:
        match = pcre_to_python(key).search(value) if key.startswith("~") else None
        if match:
            return expand(args[0], match.groupdict())
    return default


def expand(template: str, captures: dict[str, str | None]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: captures.get(m.group(1)) or "", template)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def nginx() -> list:
    return nginx_tree(NGINX_CONF.read_text())


# --- the compose file ----------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification():
    binary = Path(sys.executable).parent / "check-jsonschema"
    command = [str(binary)] if binary.exists() else [shutil.which("check-jsonschema") or "check-jsonschema"]
    result = subprocess.run(
        [*command, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_system_has_its_real_parts(compose):
    services = compose["services"]
    assert services["redis"]["image"] == "redis:7"
    assert services["mailpit"]["image"].split(":")[0] == "axllent/mailpit"
    assert any(str(port).endswith(":8025") for port in services["mailpit"]["ports"])
    assert services["gateway"]["image"] == "nginx:1.27-alpine"
    expected = {
        *SERVICES,
        *(f"{name}-consumer" for name in SERVICES),
        "notify-worker",
        "beat",
        "sirene-import",
    }
    assert set(python_services(compose)) == expected


def test_the_sirene_store_is_imported_before_its_readers_start(compose):
    """structure, its consumer and the worker (structure's verification sweep) read the store
    that `sirene-import` writes on a shared volume, and start once the import has succeeded."""
    services = compose["services"]
    importer = services["sirene-import"]
    assert command_of(importer)[:3] == ["python", "-m", "services.structure.sirene.stock_import"]
    assert importer["restart"] == "no"
    store = Settings.from_env(container_env(importer)).sirene_db
    for name in ("sirene-import", "structure", "structure-consumer", "notify-worker"):
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in services[name]["volumes"]}
        assert mounts.get(str(Path(store).parent)) == "sirene-data", name
        if name != "sirene-import":
            needs = services[name]["depends_on"]
            assert needs["sirene-import"]["condition"] == "service_completed_successfully", name
    assert compose["volumes"].keys() >= {"sirene-data"}


def test_one_image_built_once_from_the_dockerfile_runs_every_python_process(compose):
    for name, service in python_services(compose).items():
        build = service.get("build")
        context = build if isinstance(build, str) else (build or {}).get("context")
        assert context == ".", f"{name} is built from the Dockerfile at the root"
        assert service.get("user") in (None, "10001"), f"{name} keeps the image's non-root user"
    dockerfile = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert stages and stages[-1] == "python:3.11-slim"
    assert re.search(r"^RUN pip install \.$", dockerfile, re.M)
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", "var", "test-artifacts", ".git", "**/__pycache__", ".pytest_cache"} <= ignored
    for copied in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.M):
        assert (ROOT / copied).exists(), f"the Dockerfile copies {copied}, which does not exist"
        assert copied.rstrip("/") not in ignored


def test_every_command_starts_a_real_entry_point_of_the_project(compose):
    bin_dir = Path(sys.executable).parent
    for name, service in python_services(compose).items():
        command = command_of(service)
        assert (bin_dir / command[0]).exists(), f"{name}: {command[0]} is not installed by the project"
        if command[0] == "gunicorn":
            module, _, factory = command[-1].partition(":")
            assert factory == "create_app()", f"{name}: gunicorn calls the app factory"
            assert callable(importlib.import_module(module).create_app)
            assert option(command, "--bind") == "0.0.0.0:8000"
            int(option(command, "--workers")), int(option(command, "--threads"))
        elif command[0] == "python":
            assert command[1] == "-m"
            assert importlib.util.find_spec(command[2]) is not None, f"{name}: no module {command[2]}"
        elif command[0] == "celery":
            app = importlib.import_module(option(command, "--app")).app
            assert isinstance(app, Celery)
            if "worker" in command:
                queues = set(option(command, "--queues").split(","))
                assert queues == {queue.name for queue in app.conf.task_queues}
        else:
            pytest.fail(f"{name}: unexpected command {command}")


def test_logs_are_json_and_each_service_counts_its_metrics_in_one_directory(compose):
    uid = re.findall(r"--uid\s+(\d+)", DOCKERFILE.read_text())[-1]
    for name, service in python_services(compose).items():
        env = container_env(service)
        assert env["LOG_FORMAT"] == "json", name
        directory = env["PROMETHEUS_MULTIPROC_DIR"]
        command = command_of(service)
        if command[0] == "gunicorn":
            assert option(command, "--name") == name
            module, _, attribute = option(command, "--logger-class").rpartition(".")
            assert issubclass(getattr(importlib.import_module(module), attribute), GunicornLogger)
        if name in ("beat", "sirene-import"):  # count nothing they show, but need somewhere to write
            assert service["tmpfs"] == [directory]
            continue
        owner = "notify" if name == "notify-worker" else name.removesuffix("-consumer")
        volumes = [v for v in service["volumes"] if not v.startswith("sirene-data:")]
        assert volumes == [f"{owner}-metrics:{directory}"], f"{name} shares {owner}'s directory"
        options = compose["volumes"][f"{owner}-metrics"]["driver_opts"]
        assert options["type"] == "tmpfs" and f"uid={uid}" in options["o"], (
            "in memory, writable by the image's user"
        )


def test_http_services_probe_their_own_health_route(compose, monkeypatch):
    services = gunicorn_services(compose)
    assert set(services) == set(SERVICES)
    for name, service in services.items():
        for key, value in container_env(service).items():
            monkeypatch.setenv(key, value)
        # As gunicorn does it: the factory of the command, with the container's environment.
        module = importlib.import_module(command_of(service)[-1].partition(":")[0])
        app: Flask = module.create_app()
        rules = {rule.rule for rule in app.url_map.iter_rules()}
        probe = " ".join(service["healthcheck"]["test"])
        (url,) = re.findall(r"http://[^'\" ]+", probe)
        assert urlsplit(url).port == 8000
        assert urlsplit(url).path == f"/{name}/healthz"
        assert f"/{name}/healthz" in rules
        assert f"/{name}/openapi.json" in rules, f"{name} answers under /{name}/"


def test_python_services_reach_redis_and_start_after_it(compose):
    services = compose["services"]
    for name, service in python_services(compose).items():
        env = container_env(service)
        assert urlsplit(env["REDIS_URL"]).hostname == "redis", name
        assert "redis" in services
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name
        settings = Settings.from_env(env)  # the container's configuration is accepted
        assert settings.smtp_host == "mailpit" and settings.smtp_port == 1025
        assert settings.secret_key == REQUIRED_ENV["SECRET_KEY"]
        assert settings.public_base_url == "http://127.0.0.1:8000"
    gateway_needs = compose["services"]["gateway"]["depends_on"]
    assert {n: d["condition"] for n, d in gateway_needs.items()} == dict.fromkeys(SERVICES, "service_healthy")


def test_secret_key_is_required_and_settings_can_be_changed(compose):
    service = compose["services"]["notify-worker"]
    with pytest.raises(MissingVariable, match="SECRET_KEY"):
        container_env(service, {})
    env = container_env(
        service,
        {**REQUIRED_ENV, "PORT": "9000", "CAPTCHA_ENABLED": "0", "ACTIVATION_TTL_SECONDS": "600"},
    )
    settings = Settings.from_env(env)
    assert settings.public_base_url == "http://127.0.0.1:9000"
    assert (settings.captcha_enabled, settings.activation_ttl_seconds) == (False, 600)
    for variable in ("REGISTRATION_TTL_SECONDS", "EXPIRY_SWEEP_SECONDS", "PUBLIC_BASE_URL"):
        assert variable in env
    ports = compose["services"]["gateway"]["ports"]
    assert [resolved(port, {"PORT": "9000"}) for port in ports] == ["9000:80"]


def test_redis_keeps_its_data_and_never_evicts(compose):
    redis_service = compose["services"]["redis"]
    command = " ".join(redis_service["command"])
    for setting in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert setting in command
    (volume,) = redis_service["volumes"]
    name, _, target = volume.partition(":")
    assert target == "/data" and name in compose["volumes"]
    assert redis_service["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_the_ha_profile_adds_a_replica_and_three_sentinels_every_process_can_follow(compose):
    """`--profile ha`: a replica of `redis` and three Sentinels (quorum 2) monitoring it as the
    primary the settings name; with REDIS_SENTINELS set, every Python process finds it through them."""
    services = compose["services"]
    ha = {name for name, service in services.items() if "ha" in service.get("profiles", [])}
    assert ha == {"redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}
    replica = " ".join(services["redis-replica"]["command"])
    for setting in ("--replicaof redis 6379", "--appendonly yes", "--maxmemory-policy noeviction"):
        assert setting in replica
    for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
        script = services[name]["command"][-1]
        assert "sentinel monitor portal redis 6379 2" in script and script.endswith("--sentinel")
    default = Settings.from_env(container_env(services["activate"]))
    assert (default.redis_sentinels, default.redis_min_replicas) == ((), 0)
    sentinels = "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379"
    for name, service in python_services(compose).items():
        env = container_env(
            service, {**REQUIRED_ENV, "REDIS_SENTINELS": sentinels, "REDIS_MIN_REPLICAS": "1"}
        )
        settings = Settings.from_env(env)
        assert settings.redis_sentinels == (
            ("sentinel-1", 26379),
            ("sentinel-2", 26379),
            ("sentinel-3", 26379),
        ), name
        assert (settings.redis_master_name, settings.redis_min_replicas) == ("portal", 1), name


def test_email_workers_scale_and_beat_runs_once(compose):
    worker = compose["services"]["notify-worker"]
    assert "container_name" not in worker and "ports" not in worker
    command = command_of(worker)
    assert option(command, "--prefetch-multiplier") == "1"
    assert "%h" in option(command, "--hostname"), "each copy needs its own worker name"
    beats = [n for n, s in python_services(compose).items() if "beat" in command_of(s)]
    assert beats == ["beat"]
    assert compose["services"]["beat"].get("deploy", {}).get("replicas", 1) == 1
    assert option(command_of(compose["services"]["beat"]), "--schedule").startswith("/tmp/")
    for name in (*SERVICES, *(f"{s}-consumer" for s in SERVICES)):
        assert "container_name" not in compose["services"][name], f"{name} must stay scalable"


# --- the gateway ---------------------------------------------------------------------------


def test_gateway_mounts_this_config_and_publishes_port(compose):
    gateway = compose["services"]["gateway"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in gateway["volumes"]
    assert [resolved(port, {}) for port in gateway["ports"]] == ["8000:80"]
    (listen,) = directives(nginx_tree(NGINX_CONF.read_text()), "listen")
    assert listen[1][0] == "80"


def test_gateway_routes_the_contract_prefixes_to_the_services(compose, nginx):
    found = routes(nginx)
    assert set(found) == GATEWAY_ROUTES
    http_services = gunicorn_services(compose)
    for location, target in found.items():
        url = urlsplit(target)
        assert url.hostname in http_services, f"{location} → {target}: no such compose service"
        bind_port = option(command_of(http_services[url.hostname]), "--bind").rpartition(":")[2]
        assert str(url.port) == bind_port
        if location != "= /healthz":
            assert url.hostname == location.strip("/"), f"{location} goes to its own service"
            assert url.path == "", f"{location}: the path is forwarded unchanged (no URI in proxy_pass)"
    assert urlsplit(found["= /healthz"]).path == f"/{urlsplit(found['= /healthz']).hostname}/healthz"


def test_gateway_tells_the_services_who_the_client_is(nginx):
    headers = {args[0].lower(): args[1] for _, args, _ in directives(nginx, "proxy_set_header")}
    assert headers["x-forwarded-for"] == "$remote_addr", "overwritten, never appended to"
    assert headers["x-forwarded-proto"] == "$scheme"
    assert headers["x-forwarded-host"] in ("$host", "$http_host")
    (timeout,) = directives(nginx, "proxy_read_timeout")
    assert int(timeout[1][0].rstrip("s")) >= 30


def test_access_log_never_holds_an_activation_token(nginx):
    formats = {args[0]: " ".join(args[1:]) for _, args, _ in directives(nginx, "log_format")}
    logs = directives(nginx, "access_log")
    assert logs and all(args[0] == "off" or args[-1] in formats for _, args, _ in logs)
    for _, args, _ in logs:
        if args[0] != "off":
            used = formats[args[-1]]
            assert not re.search(r"\$(request|request_uri|uri|http_referer)\b", used), used
            assert "$masked_path" in used and "$masked_referer" in used
            assert not re.search(r"\$(args|query_string|is_args)\b", used), "the query comes from a map"
    token = "tok3n_SECRET-abcdefghijklmnopqrstuvwxyz0123456789"
    for path in (
        f"/activate/activations/{token}",
        f"/activate/api/activations/{token}",
        f"/activate/api/activations/{token}/extra",
    ):
        masked = apply_map(nginx, "$masked_path", path)
        assert token not in masked and "[masked]" in masked
        assert masked.startswith(path.partition(token)[0])
    referer = apply_map(nginx, "$masked_referer", f"https://portail.example/activate/activations/{token}?a=1")
    assert token not in referer and referer.endswith("[masked]?a=1")
    assert (
        apply_map(nginx, "$masked_path", "/identify/api/registrations/r1") == "/identify/api/registrations/r1"
    )
    assert apply_map(nginx, "$logged_query", f"/activate/api/activations/{token}?lang=fr") == "?lang=fr"
    assert apply_map(nginx, "$logged_query", "/healthz") == ""


# --- the gateway config, run -------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, dict[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _runnable_config(tmp_path: Path, port: int, backend_port: int, source: Path = NGINX_CONF) -> Path:
    text = source.read_text()
    text = text.replace("listen 80 default_server;", f"listen 127.0.0.1:{port} default_server;")
    text = re.sub(r"set \$upstream \w+:8000;", f"set $upstream 127.0.0.1:{backend_port};", text)
    text = text.replace("access_log /dev/stdout", f"access_log {tmp_path}/access.log")
    text = text.replace("error_log /dev/stderr", f"error_log {tmp_path}/error.log")
    temp_paths = "".join(
        f"    {kind}_temp_path {tmp_path}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {\n", "http {\n" + temp_paths, 1)
    config = tmp_path / "nginx.conf"
    config.write_text(f"pid {tmp_path}/nginx.pid;\ndaemon off;\n{text}")
    return config


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_gateway_config_forwards_unchanged_and_masks_tokens(tmp_path):
    backend = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    port = free_port()
    config = _runnable_config(tmp_path, port, backend.server_address[1])
    base = f"http://127.0.0.1:{port}"
    token = "SECRETtoken_0123456789abcdefghijklmnop"
    try:
        with _nginx_running(tmp_path, config, port):
            _Recorder.seen.clear()
            spoofed = {"X-Forwarded-For": "203.0.113.9", "Referer": f"{base}/activate/activations/{token}"}
            assert _get(f"{base}/activate/activations/{token}", spoofed) == (
                200,
                {"path": f"/activate/activations/{token}"},
            )
            assert _get(f"{base}/activate/api/activations/{token}?lang=fr")[0] == 200
            assert _get(f"{base}/activate/%61ctivations/{token}")[0] == 200
            assert _get(f"{base}/healthz") == (200, {"path": "/identify/healthz"})
            status, body = _get(f"{base}/nowhere")
            assert status == 404 and body["message"] == "Ressource introuvable."

            _, headers = _Recorder.seen[0]
            assert headers["x-forwarded-for"] == "127.0.0.1"
            assert headers["x-forwarded-proto"] == "http"
            assert headers["x-forwarded-host"] == f"127.0.0.1:{port}"

            backend.shutdown()
            backend.server_close()  # refused connections: nginx answers for the missing service
            status, body = _get(f"{base}/structure/api/captchas")
            assert status == 503 and "indisponible" in body["message"]
    finally:
        backend.server_close()
    log = (tmp_path / "access.log").read_text()
    assert len(log.splitlines()) == 6
    assert token not in log
    assert log.count("[masked]") == 4  # three paths and one Referer
    assert "/healthz" in log and "lang=fr" in log


# --- behind TLS, and the metrics kept for the scraper ---------------------------------------------


def _server_blocks(tree: list) -> list[list]:
    (http,) = [block for name, _, block in tree if name == "http"]
    return [block for name, _, block in http if name == "server"]


def _without_servers(tree: list) -> list:
    """The http block's own directives (maps, log format, geo…), servers left out."""
    (http,) = [block for name, _, block in tree if name == "http"]
    return [directive for directive in http if directive[0] not in ("server", "set_real_ip_from")]


def test_tls_config_is_the_gateway_on_443_with_the_client_address_from_the_load_balancer(nginx):
    tls = nginx_tree(NGINX_TLS_CONF.read_text())
    (plain,) = _server_blocks(nginx)
    redirect, secure = _server_blocks(tls)
    assert [args for _, args, _ in directives(redirect, "listen")] == [["80", "default_server"]]
    assert [args for _, args, _ in directives(redirect, "return")] == [["301", "https://$host$request_uri"]]
    assert [args for _, args, _ in directives(secure, "listen")] == [
        ["443", "ssl", "http2", "default_server"]
    ]
    # Same routes, headers, metrics rule and masked logs as nginx.conf.
    assert routes(secure) == routes(plain)

    def hsts(directive: tuple) -> bool:
        return directive[0] == "add_header" and directive[1][0] == "Strict-Transport-Security"

    assert [d for d in plain if d[0] != "listen"] == [
        (name, args, [d for d in block if not hsts(d)] if block is not None else None)
        for name, args, block in secure
        if name != "listen" and not name.startswith("ssl_") and not hsts((name, args))
    ]
    plain_http = [d for d in _without_servers(nginx) if d[0] not in ("real_ip_header", "real_ip_recursive")]
    tls_http = [d for d in _without_servers(tls) if d[0] not in ("real_ip_header", "real_ip_recursive")]
    assert tls_http == plain_http
    assert [a for _, a, _ in directives(tls, "real_ip_header")] == [["X-Forwarded-For"]]
    assert [a for _, a, _ in directives(tls, "real_ip_recursive")] == [["on"]]
    assert directives(tls, "set_real_ip_from"), "which load balancer to trust is set"
    protocols = {a for _, args, _ in directives(secure, "ssl_protocols") for a in args}
    assert protocols == {"TLSv1.2", "TLSv1.3"}
    hsts = [a for _, a, _ in directives(secure, "add_header") if a[0] == "Strict-Transport-Security"]
    assert len(hsts) == 2 and all(a[-1] == "always" for a in hsts), "on the server and on @unavailable"


def test_metrics_are_refused_to_all_but_the_scraper(nginx):
    (geo,) = directives(nginx, "geo")
    assert geo[1] == ["$metrics_reader"]
    readers = {key: args[0] for key, args, _ in geo[2]}
    assert readers.pop("default") == "0" and readers and set(readers.values()) == {"1"}
    for path in ("/metrics", "/identify/metrics", "/notify/metrics", "/anything/metrics"):
        assert apply_map(nginx, "$metrics_path", path) == "1", path
    for path in ("/identify/", "/identify/metrics/x", "/identify/api/metrics/1"):
        assert apply_map(nginx, "$metrics_path", path) == "0", path
    (block,) = [b for _, a, b in directives(nginx, "map") if a[1] == "$metrics_refused"]
    assert [(key, args) for key, args, _ in block] == [("1:0", ["1"]), ("default", ["0"])]
    (server,) = _server_blocks(nginx)
    (check,) = [(args, block) for name, args, block in server if name == "if"]
    assert check[0] == ["($metrics_refused)"]
    ((directive, args, _),) = check[1]
    assert (directive, args[0]) == ("return", "403")


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    certificate, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return certificate, key


@contextmanager
def _nginx_running(tmp_path: Path, config: Path, port: int) -> Iterator[None]:
    process = subprocess.Popen(
        [required_tool("nginx"), "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "startup.log")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def _recording_backend() -> Iterator[int]:
    backend = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    _Recorder.seen.clear()
    try:
        yield backend.server_address[1]
    finally:
        backend.shutdown()
        backend.server_close()


def test_both_configs_pass_nginx_t(tmp_path):
    binary = required_tool("nginx")
    certificate, key = _self_signed(tmp_path)
    for source in (NGINX_CONF, NGINX_TLS_CONF):
        config = _runnable_config(tmp_path, free_port(), 9, source)
        text = config.read_text().replace("/etc/nginx/tls/fullchain.pem", str(certificate))
        text = text.replace("/etc/nginx/tls/privkey.pem", str(key))
        text = text.replace("listen 443 ssl", f"listen 127.0.0.1:{free_port()} ssl")
        config.write_text(text)
        result = subprocess.run(
            [binary, "-t", "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "test.log")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, f"{source.name}: {result.stdout}{result.stderr}"


def test_gateway_config_refuses_metrics_from_outside(tmp_path):
    port = free_port()
    with _recording_backend() as backend_port:
        config = _runnable_config(tmp_path, port, backend_port)
        base = f"http://127.0.0.1:{port}"
        with _nginx_running(tmp_path, config, port):  # 127.0.0.1 is the scraper here
            assert _get(f"{base}/identify/metrics") == (200, {"path": "/identify/metrics"})
        text = config.read_text()
        assert "        127.0.0.1 1;\n" in text
        config.write_text(text.replace("        127.0.0.1 1;\n", "        192.0.2.1 1;\n"))
        _Recorder.seen.clear()
        with _nginx_running(tmp_path, config, port):  # now 127.0.0.1 is anyone
            for path in (
                "/identify/metrics",
                "/activate/metrics",
                "/metrics",
                "/identify//metrics",
                "/identify/%6detrics",
                "/identify/metrics?x=1",
            ):
                status, body = _get(f"{base}{path}")
                assert status == 403 and body["code"] == 403, path
            assert _get(f"{base}/identify/") == (200, {"path": "/identify/"})
        assert [path for path, _ in _Recorder.seen] == ["/identify/"]


def test_tls_config_serves_https_and_takes_the_client_address_from_the_balancer(tmp_path):
    certificate, key = _self_signed(tmp_path)
    port, tls_port = free_port(), free_port()
    with _recording_backend() as backend_port:
        config = _runnable_config(tmp_path, port, backend_port, NGINX_TLS_CONF)
        text = config.read_text().replace("/etc/nginx/tls/fullchain.pem", str(certificate))
        text = text.replace("/etc/nginx/tls/privkey.pem", str(key))
        text = text.replace("listen 443 ssl", f"listen 127.0.0.1:{tls_port} ssl")
        # The test's load balancer is this host.
        text = text.replace("set_real_ip_from 10.0.0.0/8;", "set_real_ip_from 127.0.0.1;")
        config.write_text(text)
        with _nginx_running(tmp_path, config, tls_port):
            context = ssl.create_default_context(cafile=str(certificate))
            context.check_hostname = False
            request = urllib.request.Request(
                f"https://127.0.0.1:{tls_port}/identify/", headers={"X-Forwarded-For": "198.51.100.4"}
            )
            with urllib.request.urlopen(request, timeout=5, context=context) as answer:
                assert answer.status == 200
                assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("POST", "/identify/", headers={"Host": "portail.example"})
            redirect = connection.getresponse()
            assert redirect.status == 301
            assert redirect.headers["Location"] == "https://portail.example/identify/"
    ((path, headers),) = _Recorder.seen
    assert path == "/identify/"
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-for"] == "198.51.100.4", "the address the balancer saw"
