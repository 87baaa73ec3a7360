"""notify's JSON API: the messages the local mail catcher saved (MAIL_DIR)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from services.notify import mailfiles
from services.notify.schemas import MessageSchema, MessageSummarySchema
from shared.errors import NotFound

blp = Blueprint(
    "mailbox", __name__, url_prefix="/notify/api", description="Messages saved by the local mail catcher"
)


def _mail_dir() -> str:
    return current_app.extensions["notify"].settings.mail_dir


@blp.route("/mailbox")
class Mailbox(MethodView):
    @blp.response(200, MessageSummarySchema(many=True))
    def get(self):
        """The saved messages, newest first."""
        return mailfiles.list_messages(_mail_dir())


@blp.route("/mailbox/<name>")
class MailboxMessage(MethodView):
    @blp.response(200, MessageSchema)
    def get(self, name):
        """One saved message: its headers, plain text and HTML."""
        stored = mailfiles.read(_mail_dir(), name)
        if stored is None:
            raise NotFound("Message introuvable.")
        summary = stored.summary
        return {
            "name": summary.name,
            "to": summary.to,
            "subject": summary.subject,
            "date": summary.date,
            "sender": summary.sender,
            "headers": [{"name": k, "value": v} for k, v in stored.headers],
            "text": stored.text,
            "html": stored.html,
        }
