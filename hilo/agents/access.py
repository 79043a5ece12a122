"""Who is calling, and the role checks for agent, team and channel administration."""

from __future__ import annotations

from dataclasses import dataclass

from hilo.errors import ActionError
from hilo.i18n import N_


@dataclass(frozen=True)
class Principal:
    """The signed-in agent as every access check sees it."""

    id: int
    email: str
    name: str
    role: str
    locale: str
    team_ids: frozenset[int]
    via_token: bool = False
    # The sign-in session (hash of the cookie's token) when signed in with the cookie.
    session_id: str | None = None
    # Signed in with the cookie while two-factor sign-in is required and not set up: only
    # the set-up page and the sign-in endpoints answer (hilo.http.deps, hilo.web.views).
    must_enrol: bool = False

    @property
    def sees_everything(self) -> bool:
        return self.role in ("admin", "supervisor")


def require_admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise ActionError("forbidden", N_("Only administrators can do this."), 403)
