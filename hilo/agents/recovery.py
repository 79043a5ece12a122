"""Password reset by e-mail: a single-use link, valid for an hour, to choose a new password."""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import select, update

from hilo.agents.actions import revoke_sessions, set_password
from hilo.agents.mail import queue_mail
from hilo.agents.models import Agent, PasswordReset
from hilo.agents.passwords import token_hash
from hilo.errors import ActionError
from hilo.i18n import N_, gettext
from hilo.normalize import InvalidIdentity, normalize_email
from hilo.runtime import Tx

RESET_LIFETIME = timedelta(hours=1)
SUBJECT = N_("Choose a new password for Hilo")
BODY = N_(
    "Hello {name},\n\n"
    "Someone, we hope you, asked to reset the password of your Hilo account ({email}). "
    "To choose a new password, open this link within the next hour:\n\n{link}\n\n"
    "The link works once. If you did not ask for it, ignore this e-mail: your password stays as it is.\n"
)


def request_password_reset(tx: Tx, email: str, *, ip: str) -> None:
    """E-mail a link to choose a new password to the active agent with this address, if any.

    The caller answers the same whether or not there is one, so that the form does not tell
    who has an account. A new link replaces the agent's earlier ones.
    """
    try:
        address = normalize_email(email)
    except InvalidIdentity:
        return
    agent = tx.session.execute(select(Agent).where(Agent.email == address, Agent.active.is_(True))).scalar()
    if agent is None:
        return
    tx.session.execute(
        update(PasswordReset)
        .where(PasswordReset.agent_id == agent.id, PasswordReset.used_at.is_(None))
        .values(used_at=tx.now)
    )
    token = secrets.token_urlsafe(32)
    tx.session.add(
        PasswordReset(
            agent_id=agent.id, token_hash=token_hash(token), created_at=tx.now, expires_at=tx.now + RESET_LIFETIME
        )
    )
    link = f"{tx.runtime.settings.base_url}/reset-password?{urlencode({'token': token})}"
    queue_mail(
        tx,
        to=agent.email,
        subject=gettext(SUBJECT, agent.locale),
        text=gettext(BODY, agent.locale, name=agent.name, email=agent.email, link=link),
    )
    tx.record("auth.password_reset_requested", data={"agent_id": agent.id, "ip": ip})


def confirm_password_reset(tx: Tx, token: str, password: str) -> Agent:
    """Set the password a reset link was sent for; every session of the agent ends."""
    row = tx.session.execute(
        select(PasswordReset).where(PasswordReset.token_hash == token_hash(token)).with_for_update()
    ).scalar_one_or_none()
    agent = tx.session.get(Agent, row.agent_id) if row is not None else None
    if row is None or agent is None or not agent.active:
        raise ActionError("reset_token_invalid", N_("This password reset link is not valid; ask for a new one."), 400)
    if row.used_at is not None:
        raise ActionError(
            "reset_token_used",
            N_("This password reset link was already used or replaced by a newer one; ask for a new one."),
            400,
        )
    if row.expires_at <= tx.now:
        raise ActionError("reset_token_expired", N_("This password reset link has expired; ask for a new one."), 400)
    set_password(tx, agent, password)
    row.used_at = tx.now
    agent.updated_at = tx.now
    revoke_sessions(tx, agent.id, reason="password_reset")
    tx.record("auth.password_reset", data={"agent_id": agent.id})
    tx.deferred.append(tx.runtime.forget_principals)
    return agent
