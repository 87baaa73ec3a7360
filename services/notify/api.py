"""notify's JSON API: the messages the local mail catcher saved (MAIL_DIR).

Registered only with MAILBOX_ENABLED, and answered only to a client of this machine asking by a
loopback name (`mailbox_access`)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.notify import handlers, mailbox_access
from services.notify.schemas import MessageSchema, MessageSummarySchema
from shared.bootstrap import wiring_of

blp = Blueprint(
    "mailbox", __name__, url_prefix="/notify/api", description="Messages saved by the local mail catcher"
)
blp.before_request(mailbox_access.from_this_machine_only)


def _mail_dir() -> str:
    return wiring_of().settings.mail_dir


@blp.route("/mailbox")
class Mailbox(MethodView):
    @blp.response(200, MessageSummarySchema(many=True))
    def get(self):
        """The saved messages, newest first."""
        return handlers.mailbox(_mail_dir())


@blp.route("/mailbox/<name>")
class MailboxMessage(MethodView):
    @blp.response(200, MessageSchema)
    def get(self, name):
        """One saved message: its headers, plain text and HTML."""
        stored = handlers.mailbox_message(_mail_dir(), name)
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
