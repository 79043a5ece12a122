"""The error every action raises for a request it refuses."""

from __future__ import annotations

from typing import Any

from hilo.i18n import N_


class ActionError(Exception):
    """A refused action: a stable `code`, a catalog msgid `reason`, and an HTTP status."""

    def __init__(self, code: str, reason: str, status: int = 400, **values: Any) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.status = status
        self.values = values


class NotFound(ActionError):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code, reason, status=404)


class TooManyAttempts(ActionError):
    """Refused for now: the client should retry after `retry_after` seconds (sent as Retry-After)."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__("rate_limited", reason, status=429, seconds=retry_after)
        self.headers = {"Retry-After": str(retry_after)}


def secrets_unreadable() -> ActionError:
    """Stored secrets that none of the configured keys decrypts (hilo.db.encryption)."""
    return ActionError(
        "secrets_unreadable",
        N_(
            "Stored secrets cannot be decrypted with the configured keys. "
            "Add the key they were encrypted with to HILO_SECRET_KEYS."
        ),
        500,
    )
