"""Emails: the activation email rendered from Jinja templates and sent by Celery over SMTP; a mail
catcher and its mailbox pages for running the system without a real SMTP server."""
