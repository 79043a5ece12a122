"""Who may configure routing, SLAs and automation: administrators and supervisors."""

from __future__ import annotations

from hilo.agents.access import Principal
from hilo.errors import ActionError
from hilo.i18n import N_


def is_supervisor(principal: Principal) -> bool:
    """Whether the caller may read and change these settings (the API's check and the pages' gate)."""
    return principal.role in ("admin", "supervisor")


def require_supervisor(principal: Principal) -> None:
    if not is_supervisor(principal):
        raise ActionError("forbidden", N_("Only administrators and supervisors can do this."), 403)
