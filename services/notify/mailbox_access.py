"""Who may read the mailbox: a client on this machine, asking for it by a loopback name.

The mailbox shows every activation link the portal sent. It exists only with MAILBOX_ENABLED,
which `make run` sets when it runs the mail catcher behind a gateway listening on a loopback
address (`system.launcher`). Each of its requests is checked as well, before any message is read:

- the client's address, the TCP peer the gateway saw (it overwrites X-Forwarded-For, read
  through ProxyFix), must be a loopback one: this holds even where the setting was turned on
  by hand behind a gateway listening on the network, since a remote client cannot forge it;
- the host the client asked for (the gateway passes it on as X-Forwarded-Host) must be a
  loopback name: a page of another site whose name is re-pointed at 127.0.0.1 (DNS rebinding)
  does run in the developer's browser, from 127.0.0.1, but asks for its own name.
"""

from __future__ import annotations

from flask import request

from shared.http_api import error_response
from shared.loopback import is_loopback

REFUSED = (
    "La boîte de réception locale ne s'ouvre que depuis cette machine, "
    "à l'adresse http://127.0.0.1 ou http://localhost."
)


def from_this_machine_only():
    """A blueprint's `before_request`: None (go on) for a client of this machine asking by a
    loopback name, else a 403."""
    if is_loopback(request.remote_addr or "") and is_loopback(request.host):
        return None
    return error_response(403, REFUSED)
