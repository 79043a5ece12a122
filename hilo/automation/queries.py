"""Automation's reads shared by its REST routes and the pages: rules, their runs, settings and macros."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hilo.agents.access import Principal
from hilo.automation import actions as automation
from hilo.automation.models import (
    AutomationRule,
    AutomationRun,
    AutomationSettings,
    CannedResponse,
    Macro,
    ScheduledMessage,
)
from hilo.automation.schemas import MacroOut, RuleEvent, RuleOut, RunOut, ScheduledOut, SettingsOut
from hilo.routing.access import require_supervisor

# Rules -------------------------------------------------------------------------------


def list_rules(session: Session, principal: Principal, event: RuleEvent | None = None) -> list[RuleOut]:
    """Rules in the order they run for each event."""
    require_supervisor(principal)
    query = select(AutomationRule).order_by(AutomationRule.event, AutomationRule.position, AutomationRule.id)
    if event is not None:
        query = query.where(AutomationRule.event == event)
    return [rule_out(r) for r in session.execute(query).scalars()]


def rule_out(rule: AutomationRule) -> RuleOut:
    out = RuleOut.model_validate(rule, from_attributes=True)
    out.actions = automation.redacted(out.actions)
    return out


def list_runs(
    session: Session,
    principal: Principal,
    rule_id: int | None = None,
    conversation_id: int | None = None,
    limit: int = 100,
) -> list[RunOut]:
    """What rules did (and where loop protection stopped them), newest first."""
    require_supervisor(principal)
    query = select(AutomationRun).order_by(AutomationRun.id.desc()).limit(limit)
    if rule_id is not None:
        query = query.where(AutomationRun.rule_id == rule_id)
    if conversation_id is not None:
        query = query.where(AutomationRun.conversation_id == conversation_id)
    return [RunOut.model_validate(r, from_attributes=True) for r in session.execute(query).scalars()]


# Settings ----------------------------------------------------------------------------


def get_settings(session: Session, principal: Principal) -> SettingsOut:
    """Auto-resolve: the idle hours and the goodbye (both None while it is off)."""
    require_supervisor(principal)
    row = session.get(AutomationSettings, 1)
    return SettingsOut(
        auto_resolve_after_hours=row.auto_resolve_after_hours if row else None,
        auto_resolve_message=row.auto_resolve_message if row else None,  # type: ignore[arg-type]
    )


# Macros ------------------------------------------------------------------------------


def list_macros(session: Session, principal: Principal) -> list[MacroOut]:
    """Shared macros and the caller's own."""
    rows = session.execute(
        select(Macro)
        .where(or_(Macro.shared.is_(True), Macro.owner_agent_id == principal.id))
        .order_by(Macro.name, Macro.id)
    ).scalars()
    return [macro_out(m) for m in rows]


def macro_out(macro: Macro) -> MacroOut:
    return MacroOut.model_validate(macro, from_attributes=True)


def find_canned(session: Session, typed: str, limit: int) -> list[CannedResponse]:
    """Canned responses whose shortcut starts with what the agent typed after '/', then those
    whose title contains it."""
    query = select(CannedResponse)
    term = typed.strip().lstrip("/").lower()
    if term:
        pattern = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(
            or_(
                CannedResponse.shortcut.like(f"{pattern}%", escape="\\"),
                func.lower(CannedResponse.title).like(f"%{pattern}%", escape="\\"),
            )
        )
    rows = list(session.execute(query.order_by(CannedResponse.shortcut).limit(limit)).scalars())
    if term:
        rows.sort(key=lambda c: (not c.shortcut.startswith(term), c.shortcut))
    return rows


def list_scheduled(session: Session, conversation_id: int, state: str | None = None) -> list[ScheduledOut]:
    """A conversation's scheduled messages, soonest first."""
    query = select(ScheduledMessage).where(ScheduledMessage.conversation_id == conversation_id)
    if state is not None:
        query = query.where(ScheduledMessage.state == state)
    rows = session.execute(query.order_by(ScheduledMessage.send_at, ScheduledMessage.id)).scalars()
    return [ScheduledOut.model_validate(r, from_attributes=True) for r in rows]
