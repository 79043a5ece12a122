"""Access to an agent's own workspace rows: saved views belong to the agent who saved them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hilo.agents.access import Principal
from hilo.errors import NotFound
from hilo.i18n import N_
from hilo.web.models import SavedView


def access_saved_view(session: Session, principal: Principal, view_id: int) -> SavedView:
    """Fetch one of the caller's saved views; 404 for anyone else's (existence is not leaked)."""
    view = session.get(SavedView, view_id)
    if view is None or view.agent_id != principal.id:
        raise NotFound("view_not_found", N_("This inbox view does not exist."))
    return view
