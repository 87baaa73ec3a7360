"""Errors the rules raise; `shared.http_api` turns each into one JSON answer with its status."""

from __future__ import annotations


class DomainError(Exception):
    status = 422
    default_message = "Certaines informations sont invalides."
    headers: dict[str, str] = {}  # read-only here; Busy gives its own

    def __init__(self, message: str | None = None, errors: dict[str, list[str]] | None = None) -> None:
        self.errors = errors or {}
        messages = [m for ms in self.errors.values() for m in ms]
        # A lone field error is also the answer's summary; several get the general one.
        self.message = message or (messages[0] if len(messages) == 1 else self.default_message)
        super().__init__(self.message)

    @classmethod
    def on(cls, field: str, message: str) -> DomainError:
        """The error of one field, with the message also shown as the answer's summary."""
        return cls(message, {field: [message]})


class Invalid(DomainError):
    status = 422


class Unauthorized(DomainError):
    """No session, or one that ended: sign in again."""

    status = 401
    default_message = "Connectez-vous pour continuer."


class Forbidden(DomainError):
    status = 403
    default_message = "Cette action ne vous est pas permise."


class TooManyAttempts(DomainError):
    """Too many failures: wait `retry_after` seconds (429 with Retry-After)."""

    status = 429
    default_message = "Trop de tentatives. Réessayez plus tard."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, int(retry_after)))}


class NotFound(DomainError):
    status = 404
    default_message = "Inscription introuvable."


class Conflict(DomainError):
    status = 409
    default_message = "Cette action n'est plus possible dans l'état actuel de l'inscription."


class Gone(DomainError):
    status = 410
    default_message = "Ce lien d'activation n'est plus valable."


class Busy(DomainError):
    """Too many requests of this process are waiting already: come back in a moment."""

    status = 503
    default_message = "Le service est très sollicité. Réessayez dans quelques secondes."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.headers = {"Retry-After": str(retry_after)}


def gather(*checks):
    """Run every check (a callable); return their results, or raise one Invalid naming every
    faulty field, so that a person sees all their mistakes at once."""
    results, errors = [], {}
    for check in checks:
        try:
            results.append(check())
        except Invalid as exc:
            for field, messages in exc.errors.items():
                errors.setdefault(field, []).extend(messages)
            results.append(None)
    if errors:
        raise Invalid(errors=errors)
    return results
