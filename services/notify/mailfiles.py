"""The mail catcher's folder (MAIL_DIR): one `.eml` file per message, written atomically.

Names are `<UTC timestamp>-<uuid>.eml`, so they sort by arrival. Reading accepts only a plain
`*.eml` file name directly in the folder: nothing else can be read through the mailbox pages.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.eml$")
LIST_LIMIT = 500


@dataclass(frozen=True)
class MessageSummary:
    name: str
    to: str
    subject: str
    sender: str
    date: datetime


@dataclass(frozen=True)
class StoredMessage:
    summary: MessageSummary
    headers: list[tuple[str, str]]
    text: str | None
    html: str | None


def new_name(now: datetime) -> str:
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.eml"


def save(mail_dir: str | Path, content: bytes, now: datetime) -> str:
    """Write `content` as a new message file: a temporary file renamed into place."""
    folder = Path(mail_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = new_name(now)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, folder / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return name


def is_message_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name)) and ".." not in name


def _path(mail_dir: str | Path, name: str) -> Path | None:
    """The file of message `name`, or None if the name is not one of the folder's messages."""
    if not is_message_name(name):
        return None
    folder = Path(mail_dir).resolve()
    path = folder / name
    if path.is_symlink() or not path.is_file() or path.resolve().parent != folder:
        return None
    return path


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError):  # a malformed header: show nothing rather than fail
        return ""
    return str(value) if value is not None else ""


def _date(message: EmailMessage, path: Path) -> datetime:
    try:
        value = message.get("Date")
        parsed = getattr(value, "datetime", None)
    except (ValueError, TypeError, IndexError):
        parsed = None
    if parsed is None:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _summary(name: str, path: Path, message: EmailMessage) -> MessageSummary:
    return MessageSummary(
        name=name,
        to=_header(message, "To"),
        subject=_header(message, "Subject"),
        sender=_header(message, "From"),
        date=_date(message, path),
    )


def list_messages(mail_dir: str | Path, limit: int = LIST_LIMIT) -> list[MessageSummary]:
    """The newest `limit` messages, newest first (by arrival)."""
    folder = Path(mail_dir)
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False) and is_message_name(entry.name):
            found.append((entry.stat().st_mtime, entry.name))
    found.sort(reverse=True)
    parser = BytesParser(policy=policy.default)
    summaries = []
    for _, name in found[:limit]:
        path = folder / name
        try:
            with path.open("rb") as fp:
                headers = parser.parse(fp, headersonly=True)
        except FileNotFoundError:  # removed meanwhile
            continue
        summaries.append(_summary(name, path, headers))
    return summaries


def _part(message: EmailMessage, subtype: str) -> str | None:
    try:
        body = message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else None
    except (LookupError, ValueError, KeyError):  # unknown charset or broken encoding
        return None


def read(mail_dir: str | Path, name: str) -> StoredMessage | None:
    path = _path(mail_dir, name)
    if path is None:
        return None
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    return StoredMessage(
        summary=_summary(name, path, message),
        headers=[(key, _header(message, key)) for key in dict.fromkeys(message.keys())],
        text=_part(message, "plain"),
        html=_part(message, "html"),
    )
