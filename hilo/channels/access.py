"""The one place a channel account is fetched by id for a caller (404 when there is none)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hilo.agents.access import Principal
from hilo.channels.models import ChannelAccount
from hilo.errors import NotFound
from hilo.i18n import N_


def access_channel(session: Session, principal: Principal, account_id: int) -> ChannelAccount:
    """The channel account; callers check the role the route needs (channel settings are for admins)."""
    account = session.get(ChannelAccount, account_id)
    if account is None:
        raise NotFound("channel_not_found", N_("Channel not found."))
    return account
