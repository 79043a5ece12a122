"""Invitations: an admin invites someone by e-mail; they choose their password and become an agent."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hilo.agents.actions import create_agent
from hilo.agents.mail import queue_mail
from hilo.agents.models import ROLES, Agent, Invitation
from hilo.agents.passwords import token_hash
from hilo.errors import ActionError
from hilo.i18n import LOCALES, N_, gettext
from hilo.normalize import InvalidIdentity, normalize_email
from hilo.runtime import Tx

INVITATION_LIFETIME = timedelta(days=7)
SUBJECT = N_("{inviter} invited you to Hilo")
BODY = N_(
    "Hello {name},\n\n"
    "{inviter} invited you to answer customers with them in Hilo. To choose your password and sign in, "
    "open this link within 7 days:\n\n{link}\n\n"
    "You will sign in with this e-mail address ({email}). The link works once; if you were not expecting it, "
    "ignore this e-mail.\n"
)


@dataclass(frozen=True)
class Invited:
    """A new invitation and its link (shown to the admin only when no e-mail could carry it)."""

    invitation: Invitation
    link: str
    mailed: bool


def invitation_link(tx: Tx, token: str) -> str:
    return f"{tx.runtime.settings.base_url}/accept-invitation?{urlencode({'token': token})}"


def invite_agent(tx: Tx, inviter: Agent, *, email: str, name: str, role: str = "agent", locale: str = "en") -> Invited:
    """Invite someone to become an agent; an earlier invitation to the same address stops working."""
    try:
        address = normalize_email(email)
    except InvalidIdentity as exc:
        raise ActionError(exc.code, exc.reason, 422) from exc
    if role not in ROLES:
        raise ActionError("role_invalid", N_("Unknown role."), 422)
    if locale not in LOCALES:
        raise ActionError("locale_invalid", N_("Unknown language."), 422)
    if tx.session.execute(select(Agent.id).where(Agent.email == address)).scalar() is not None:
        raise ActionError("agent_exists", N_("An agent with this e-mail address already exists."), 409)
    tx.session.execute(
        update(Invitation)
        .where(Invitation.email == address, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .values(revoked_at=tx.now)
    )
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        email=address,
        name=name.strip() or address,
        role=role,
        locale=locale,
        token_hash=token_hash(token),
        invited_by_id=inviter.id,
        created_at=tx.now,
        expires_at=tx.now + INVITATION_LIFETIME,
    )
    tx.session.add(invitation)
    tx.session.flush()
    link = invitation_link(tx, token)
    mailed = tx.runtime.settings.mail_configured
    if mailed:
        queue_mail(
            tx,
            to=address,
            subject=gettext(SUBJECT, locale, inviter=inviter.name),
            text=gettext(BODY, locale, name=invitation.name, inviter=inviter.name, link=link, email=address),
        )
    tx.record("agent.invited", data={"invitation_id": invitation.id, "email": address, "role": role, "mailed": mailed})
    return Invited(invitation, link, mailed)


def pending_invitations(session: Session, now: datetime) -> list[Invitation]:
    """Invitations not yet accepted, withdrawn or expired, newest first."""
    return list(
        session.execute(
            select(Invitation)
            .where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > now)
            .order_by(Invitation.id.desc())
        ).scalars()
    )


def revoke_invitation(tx: Tx, invitation_id: int) -> Invitation:
    """Withdraw a pending invitation: its link stops working."""
    row = tx.session.get(Invitation, invitation_id)
    if row is None or row.accepted_at is not None or row.revoked_at is not None:
        raise ActionError("invitation_not_found", N_("No such pending invitation."), 404)
    row.revoked_at = tx.now
    tx.record("agent.invitation_revoked", data={"invitation_id": row.id, "email": row.email})
    return row


def invitation_for(session: Session, token: str, now: datetime, *, lock: bool = False) -> Invitation:
    """The pending invitation a link's token names, or the error that says why it does not work."""
    query = select(Invitation).where(Invitation.token_hash == token_hash(token))
    row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None:
        raise ActionError("invitation_invalid", N_("This invitation link is not valid; ask for a new one."), 400)
    if row.accepted_at is not None:
        raise ActionError(
            "invitation_used", N_("This invitation was already accepted; sign in with your password."), 400
        )
    if row.revoked_at is not None:
        raise ActionError(
            "invitation_revoked", N_("This invitation was withdrawn or replaced; ask for a new one."), 400
        )
    if row.expires_at <= now:
        raise ActionError("invitation_expired", N_("This invitation has expired; ask for a new one."), 400)
    return row


def accept_invitation(tx: Tx, token: str, *, password: str, name: str | None = None) -> Agent:
    """Create the invited agent with the password they chose."""
    row = invitation_for(tx.session, token, tx.now, lock=True)
    agent = create_agent(
        tx,
        email=row.email,
        name=(name or "").strip() or row.name,
        password=password,
        role=row.role,
        locale=row.locale,
    )
    row.accepted_at = tx.now
    row.agent_id = agent.id
    tx.record("agent.invitation_accepted", data={"invitation_id": row.id, "agent_id": agent.id})
    return agent
