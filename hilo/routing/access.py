"""Who may configure routing, SLAs and automation: administrators and supervisors."""

from __future__ import annotations

from hilo.agents.access import Principal
from hilo.errors import ActionError
from hilo.i18n import N_


def require_supervisor(principal: Principal) -> None:
    if principal.role not in ("admin", "supervisor"):
        raise ActionError("forbidden", N_("Only administrators and supervisors can do this."), 403)
