"""Widget and web-form channel accounts by public token, cached for a couple of seconds."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from hilo.channels.base import ChannelAccountView
from hilo.channels.models import ChannelAccount
from hilo.errors import ActionError, NotFound
from hilo.i18n import N_
from hilo.runtime import Runtime

CACHE_SECONDS = 2.0
KINDS = ("widget", "webform")


class Directory:
    """Public tokens -> channel accounts; one query reloads every widget and form at once.

    Entries live CACHE_SECONDS; an unknown token reloads at once (a channel just created),
    and the widget hub clears the cache when a channel is updated on any process.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._by_token: dict[str, tuple[ChannelAccountView, bool]] = {}
        self._loaded_at = -CACHE_SECONDS
        self._lock = threading.Lock()

    def _reload(self) -> None:
        with self.runtime.db.read() as session:
            rows = session.execute(select(ChannelAccount).where(ChannelAccount.kind.in_(KINDS))).scalars().all()
            by_token = {
                str(row.config.get("public_token")): (row.view(), row.enabled)
                for row in rows
                if (row.config or {}).get("public_token")
            }
        self._by_token = by_token

    def get(self, token: str, kind: str) -> ChannelAccountView:
        """The enabled channel account of `kind` with this public token (blocking: call from a thread)."""
        with self._lock:
            if time.monotonic() - self._loaded_at > CACHE_SECONDS or token not in self._by_token:
                self._reload()
                self._loaded_at = time.monotonic()
            hit = self._by_token.get(token)
        if hit is None or hit[0].kind != kind:
            raise NotFound("channel_not_found", N_("Channel not found."))
        account, enabled = hit
        if not enabled:
            raise ActionError("channel_disabled", N_("This channel is disabled by an administrator."), 503)
        return account

    def clear(self) -> None:
        with self._lock:
            self._loaded_at = -CACHE_SECONDS
