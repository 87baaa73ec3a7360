"""`python -m services.notify.mailcatcher`: a local SMTP server that keeps every message.

`make run` starts it when no SMTP_HOST is set: it listens on 127.0.0.1:SMTP_PORT (default
1025) and saves each message under MAIL_DIR, where `/notify/mailbox` shows them
(registered only when `make run` runs this catcher on a loopback gateway: `MAILBOX_ENABLED`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller

from services.notify import mailfiles
from shared import logs
from shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

DEFAULT_PORT = 1025


class MailDirHandler:
    """aiosmtpd handler saving each accepted message as a `.eml` file."""

    def __init__(self, mail_dir: str | Path) -> None:
        self.mail_dir = Path(mail_dir)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        try:
            name = await asyncio.to_thread(mailfiles.save, self.mail_dir, content, datetime.now(UTC))
        except OSError as exc:
            log.error("could not save a message under %s: %s", self.mail_dir, exc)
            return "451 Requested action aborted: local error in processing"
        log.info("message saved as %s", name)
        return "250 Message accepted for delivery"


def start(mail_dir: str | Path, port: int, hostname: str = "127.0.0.1") -> Controller:
    Path(mail_dir).mkdir(parents=True, exist_ok=True)
    controller = Controller(MailDirHandler(mail_dir), hostname=hostname, port=port, enable_SMTPUTF8=True)
    controller.start()
    return controller


def port_from_env(env=os.environ) -> int:
    raw = (env.get("SMTP_PORT") or "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"SMTP_PORT must be a port number, got {raw!r}")
    return int(raw)


def main() -> None:
    logs.configure("mailcatcher")
    settings = Settings.from_env()
    port = port_from_env()
    controller = start(settings.mail_dir, port)
    log.info("mail catcher on 127.0.0.1:%d, saving to %s", port, settings.mail_dir)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
