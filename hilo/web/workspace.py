"""What routing, SLAs and automation add to the agent workspace: SLA badges and workspace.js's strings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from babel.dates import format_timedelta
from sqlalchemy import select
from sqlalchemy.orm import Session

from hilo.conversations.models import ConversationSla
from hilo.i18n import N_, gettext
from hilo.web.rendering import env

SLA_KIND_LABELS = {
    "first_response": N_("First response"),
    "next_response": N_("Next response"),
    "resolution": N_("Resolution"),
}
# Statuses with something to show: a met target needs no badge.
SLA_SHOWN = ("on_track", "warning", "breached", "paused")

# Strings workspace.js shows; the inbox page carries their translation (config.workspace_strings).
WORKSPACE_STRINGS = (
    *SLA_KIND_LABELS.values(),
    N_("{kind} due {relative}"),
    N_("{kind} was due {relative}"),
    N_("SLA paused while pending"),
    N_("SLA breached"),
    N_("{kind} due soon"),
    N_("{kind} target missed"),
    N_("A scheduled reply could not be sent"),
    N_("No macros yet."),
    N_("Macro {name} applied."),
    N_("Macro {name} applied; some steps were skipped: {steps}."),
    N_("Write the reply first."),
    N_("Choose a time in the future."),
    N_("Reply scheduled for {time}."),
    N_("Scheduled for {time}"),
    N_("Scheduled replies"),
    N_("Cancel"),
    N_("Cancel the reply scheduled for {time}"),
    N_("Cancel this scheduled reply?"),
    N_("Scheduled reply cancelled."),
    N_("You are away: no new conversations are assigned to you."),
    N_("You are available again."),
)


def workspace_strings(locale: str) -> dict[str, str]:
    return {msgid: gettext(msgid, locale) for msgid in WORKSPACE_STRINGS}


def sla_summaries(session: Session, conversation_ids: Iterable[int]) -> dict[int, ConversationSla]:
    """The SLA status and nearest due time of a page of conversations, in one query."""
    ids = list(conversation_ids)
    if not ids:
        return {}
    rows = session.execute(select(ConversationSla).where(ConversationSla.conversation_id.in_(ids))).scalars()
    return {row.conversation_id: row for row in rows if row.status in SLA_SHOWN}


def sla_relative(summary: Any, now: datetime, locale: str) -> str:
    """The due time relative to now, short: "in 12 min", "5 min ago"."""
    if summary.due_at is None:
        return ""
    return format_timedelta(summary.due_at - now, add_direction=True, format="short", locale=locale)


def sla_text(summary: Any, now: datetime, locale: str) -> str:
    """The badge's text before the browser rewrites it: "First response due in 12 min"."""
    if summary.status == "paused":
        return gettext("SLA paused while pending", locale)
    if summary.due_at is None:
        return gettext("SLA breached", locale) if summary.status == "breached" else ""
    kind = gettext(SLA_KIND_LABELS.get(summary.due_kind or "", N_("Resolution")), locale)
    relative = sla_relative(summary, now, locale)
    if summary.due_at < now:
        return gettext("{kind} was due {relative}", locale, kind=kind, relative=relative)
    return gettext("{kind} due {relative}", locale, kind=kind, relative=relative)


env.globals.update(sla_text=sla_text, sla_relative=sla_relative, SLA_KIND_LABELS=SLA_KIND_LABELS)
