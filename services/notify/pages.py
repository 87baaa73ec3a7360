"""The mailbox pages: what the local mail catcher received, for `make run` without SMTP.

Registered only with MAILBOX_ENABLED, and answered only to a client of this machine asking by a
loopback name (`mailbox_access`)."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, render_template
from markupsafe import Markup, escape

from services.notify import handlers, mailbox_access
from shared.bootstrap import wiring_of
from shared.errors import NotFound

bp = Blueprint("notify_pages", __name__, url_prefix="/notify", template_folder="templates")
bp.before_request(mailbox_access.from_this_machine_only)

_URL = re.compile(r"https?://[^\s<>\"']+")
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_TRAILING = ".,;:!?)]}»"
# Scripts never run on these pages, not even in the message's HTML shown in its iframe.
_CSP = "script-src 'none'; object-src 'none'; form-action 'none'; frame-ancestors 'self'"


def linkify(text: str) -> Markup:
    """Plain text as HTML with its http(s) URLs made into links: every piece is escaped."""
    pieces: list[Markup] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        pieces.append(escape(text[position : match.start()]))
        pieces.append(Markup('<a href="{0}" rel="noopener noreferrer" target="_blank">{0}</a>').format(url))
        position = match.start() + len(url)
    pieces.append(escape(text[position:]))
    return Markup("").join(pieces)


def _links_open_outside(html: str) -> str:
    """The message's HTML with `<base target="_blank">`, kept a plain str: the template escapes
    it into the iframe's srcdoc attribute."""
    base = '<base target="_blank">'
    with_base, found = _HEAD.subn(lambda m: m.group(0) + base, html, count=1)
    return with_base if found else base + html


def local_time(value: datetime) -> str:
    try:
        value = value.astimezone(ZoneInfo("Europe/Paris"))
    except ZoneInfoNotFoundError:
        return value.strftime("%d/%m/%Y %H:%M:%S UTC")
    return value.strftime("%d/%m/%Y %H:%M:%S")


def _mail_dir() -> str:
    return wiring_of().settings.mail_dir


@bp.after_request
def _headers(response):
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


@bp.get("/mailbox")
def mailbox():
    messages = handlers.mailbox(_mail_dir())
    return render_template("mailbox.html", messages=messages, local_time=local_time)


@bp.get("/mailbox/<name>")
def message(name: str):
    try:
        stored = handlers.mailbox_message(_mail_dir(), name)
    except NotFound:
        return render_template("mailbox_missing.html"), 404
    html = _links_open_outside(stored.html) if stored.html is not None else None
    return render_template(
        "mailbox_message.html",
        message=stored,
        text=linkify(stored.text) if stored.text is not None else None,
        html=html,
        local_time=local_time,
    )
