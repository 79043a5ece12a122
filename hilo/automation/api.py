"""Automation endpoints: rules (with dry run), macros, canned responses, scheduled messages
and settings; `install(app)` puts the rule engine on the shared background engine."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query
from sqlalchemy.orm import Session

from hilo.agents.access import Principal
from hilo.automation import actions as automation
from hilo.automation import queries
from hilo.automation.models import AutomationRule, CannedResponse, Macro, ScheduledMessage
from hilo.automation.schemas import (
    CannedIn,
    CannedOut,
    DryRunIn,
    DryRunOut,
    MacroIn,
    MacroOut,
    MacroRunIn,
    MacroRunOut,
    RuleEvent,
    RuleIn,
    RuleOut,
    RunOut,
    ScheduledIn,
    ScheduledOut,
    SettingsIn,
    SettingsOut,
)
from hilo.conversations.access import access_conversation
from hilo.errors import ActionError, NotFound
from hilo.http.deps import CurrentAgent, RuntimeDep
from hilo.http.schemas import ERRORS, serialize_conversations
from hilo.i18n import N_
from hilo.routing.access import require_supervisor
from hilo.runtime import Runtime, Tx

router = APIRouter(prefix="/api/v1", tags=["automation"], responses=ERRORS)


# Rules -------------------------------------------------------------------------------


def access_rule(session: Session, rule_id: int) -> AutomationRule:
    rule = session.get(AutomationRule, rule_id)
    if rule is None:
        raise NotFound("rule_not_found", N_("Automation rule not found."))
    return rule


@router.get("/automation/rules", response_model=list[RuleOut])
def list_rules(principal: CurrentAgent, runtime: RuntimeDep, event: RuleEvent | None = None) -> list[RuleOut]:
    """Rules in the order they run for each event."""
    with runtime.db.read() as session:
        return queries.list_rules(session, principal, event)


@router.post("/automation/rules", response_model=RuleOut, status_code=201)
def create_rule(body: RuleIn, principal: CurrentAgent, runtime: RuntimeDep) -> RuleOut:
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        return queries.rule_out(automation.save_rule(tx, None, body.model_dump()))


@router.get("/automation/rules/{rule_id}", response_model=RuleOut)
def get_rule(rule_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> RuleOut:
    require_supervisor(principal)
    with runtime.db.read() as session:
        return queries.rule_out(access_rule(session, rule_id))


@router.put("/automation/rules/{rule_id}", response_model=RuleOut)
def update_rule(rule_id: int, body: RuleIn, principal: CurrentAgent, runtime: RuntimeDep) -> RuleOut:
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        return queries.rule_out(automation.save_rule(tx, access_rule(tx.session, rule_id), body.model_dump()))


@router.delete("/automation/rules/{rule_id}", status_code=204)
def delete_rule(rule_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> None:
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        automation.delete_rule(tx, access_rule(tx.session, rule_id))


def _dry_run(runtime: Runtime, principal: Principal, body: DryRunIn, scan: int, limit: int) -> DryRunOut:
    # A read session that is rolled back: a dry run never writes.
    with runtime.db.read() as session:
        tx = Tx(session=session, runtime=runtime, actor_agent_id=principal.id)
        try:
            result = automation.dry_run(
                tx,
                event=body.event,
                conditions=body.conditions,
                actions=body.actions,
                idle_hours=body.idle_hours,
                scan=scan,
                limit=limit,
            )
        finally:
            session.rollback()
    return DryRunOut(**result)


@router.post("/automation/rules/dry-run", response_model=DryRunOut)
def dry_run(
    body: DryRunIn,
    principal: CurrentAgent,
    runtime: RuntimeDep,
    scan: Annotated[int, Query(ge=1, le=1000)] = 200,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DryRunOut:
    """Show what a rule (saved or not) would do to the most recently active unresolved
    conversations, without doing it."""
    require_supervisor(principal)
    return _dry_run(runtime, principal, body, scan, limit)


@router.post("/automation/rules/{rule_id}/dry-run", response_model=DryRunOut)
def dry_run_saved(
    rule_id: int,
    principal: CurrentAgent,
    runtime: RuntimeDep,
    scan: Annotated[int, Query(ge=1, le=1000)] = 200,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DryRunOut:
    require_supervisor(principal)
    with runtime.db.read() as session:
        rule = access_rule(session, rule_id)
        body = DryRunIn(event=rule.event, conditions=rule.conditions, actions=rule.actions, idle_hours=rule.idle_hours)  # type: ignore[arg-type]
    return _dry_run(runtime, principal, body, scan, limit)


@router.get("/automation/runs", response_model=list[RunOut])
def list_runs(
    principal: CurrentAgent,
    runtime: RuntimeDep,
    rule_id: int | None = None,
    conversation_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[RunOut]:
    """What rules did (and where loop protection stopped them), newest first."""
    with runtime.db.read() as session:
        return queries.list_runs(session, principal, rule_id=rule_id, conversation_id=conversation_id, limit=limit)


@router.get("/automation/settings", response_model=SettingsOut)
def get_settings(principal: CurrentAgent, runtime: RuntimeDep) -> SettingsOut:
    with runtime.db.read() as session:
        return queries.get_settings(session, principal)


@router.put("/automation/settings", response_model=SettingsOut)
def put_settings(body: SettingsIn, principal: CurrentAgent, runtime: RuntimeDep) -> SettingsOut:
    """Auto-resolve: after how many idle hours a conversation nobody waits on is resolved,
    and the goodbye sent first (per language)."""
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        row = automation.save_settings(
            tx,
            auto_resolve_after_hours=body.auto_resolve_after_hours,
            auto_resolve_message={str(k): v for k, v in body.auto_resolve_message.items()}
            if body.auto_resolve_message
            else None,
        )
        return SettingsOut(
            auto_resolve_after_hours=row.auto_resolve_after_hours,
            auto_resolve_message=row.auto_resolve_message,  # type: ignore[arg-type]
        )


# Macros ------------------------------------------------------------------------------


def access_macro(session: Session, principal: Principal, macro_id: int, *, change: bool = False) -> Macro:
    """A macro the caller may use (shared or their own) or, with `change`, edit."""
    macro = session.get(Macro, macro_id)
    if macro is None or not (macro.shared or macro.owner_agent_id == principal.id):
        raise NotFound("macro_not_found", N_("Macro not found."))
    if change and macro.owner_agent_id != principal.id:
        require_supervisor(principal)
    return macro


@router.get("/macros", response_model=list[MacroOut])
def list_macros(principal: CurrentAgent, runtime: RuntimeDep) -> list[MacroOut]:
    """Shared macros and your own."""
    with runtime.db.read() as session:
        return queries.list_macros(session, principal)


@router.post("/macros", response_model=MacroOut, status_code=201)
def create_macro(body: MacroIn, principal: CurrentAgent, runtime: RuntimeDep) -> MacroOut:
    with runtime.transaction(principal.id) as tx:
        return queries.macro_out(automation.save_macro(tx, None, principal, body.model_dump()))


@router.put("/macros/{macro_id}", response_model=MacroOut)
def update_macro(macro_id: int, body: MacroIn, principal: CurrentAgent, runtime: RuntimeDep) -> MacroOut:
    with runtime.transaction(principal.id) as tx:
        macro = access_macro(tx.session, principal, macro_id, change=True)
        return queries.macro_out(automation.save_macro(tx, macro, principal, body.model_dump()))


@router.delete("/macros/{macro_id}", status_code=204)
def delete_macro(macro_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> None:
    with runtime.transaction(principal.id) as tx:
        automation.delete_macro(tx, access_macro(tx.session, principal, macro_id, change=True))


@router.post("/macros/{macro_id}/run", response_model=MacroRunOut)
def run_macro(macro_id: int, body: MacroRunIn, principal: CurrentAgent, runtime: RuntimeDep) -> MacroRunOut:
    """Apply a macro to a conversation: its actions run in order, as you."""
    with runtime.transaction(principal.id) as tx:
        macro = access_macro(tx.session, principal, macro_id)
        conversation = access_conversation(tx.session, principal, body.conversation_id)
        outcomes = automation.run_macro(tx, macro, conversation)
        tx.session.refresh(conversation)
        return MacroRunOut(conversation=serialize_conversations(tx.session, [conversation])[0], actions=outcomes)


# Canned responses --------------------------------------------------------------------


def access_canned(session: Session, canned_id: int) -> CannedResponse:
    canned = session.get(CannedResponse, canned_id)
    if canned is None:
        raise NotFound("canned_response_not_found", N_("Canned response not found."))
    return canned


@router.get("/canned-responses", response_model=list[CannedOut])
def list_canned(
    principal: CurrentAgent,
    runtime: RuntimeDep,
    q: Annotated[str | None, Query(max_length=100, description="text after '/' in the composer")] = None,
    conversation_id: Annotated[int | None, Query(description="fill the variables for this conversation")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[CannedOut]:
    """Canned responses whose shortcut starts with `q` (then those whose title contains it);
    with `conversation_id`, each comes `rendered` in the contact's language."""
    with runtime.transaction(principal.id) as tx:
        conversation = access_conversation(tx.session, principal, conversation_id) if conversation_id else None
        out = []
        for canned in queries.find_canned(tx.session, q or "", limit):
            item = CannedOut.model_validate(canned, from_attributes=True)
            if conversation is not None:
                item.rendered = automation.render_canned(tx, canned, conversation, principal.id)
            out.append(item)
        return out


@router.post("/canned-responses", response_model=CannedOut, status_code=201)
def create_canned(body: CannedIn, principal: CurrentAgent, runtime: RuntimeDep) -> CannedOut:
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        return CannedOut.model_validate(automation.save_canned(tx, None, body.model_dump()), from_attributes=True)


@router.put("/canned-responses/{canned_id}", response_model=CannedOut)
def update_canned(canned_id: int, body: CannedIn, principal: CurrentAgent, runtime: RuntimeDep) -> CannedOut:
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        canned = automation.save_canned(tx, access_canned(tx.session, canned_id), body.model_dump())
        return CannedOut.model_validate(canned, from_attributes=True)


@router.delete("/canned-responses/{canned_id}", status_code=204)
def delete_canned(canned_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> None:
    require_supervisor(principal)
    with runtime.transaction(principal.id) as tx:
        automation.delete_canned(tx, access_canned(tx.session, canned_id))


# Scheduled messages ------------------------------------------------------------------


def access_scheduled(session: Session, principal: Principal, item_id: int) -> ScheduledMessage:
    """A scheduled message of a conversation the caller may see."""
    item = session.get(ScheduledMessage, item_id)
    if item is None:
        raise NotFound("scheduled_message_not_found", N_("Scheduled message not found."))
    access_conversation(session, principal, item.conversation_id)
    return item


@router.get("/scheduled-messages", response_model=list[ScheduledOut])
def list_scheduled(
    principal: CurrentAgent,
    runtime: RuntimeDep,
    conversation_id: int,
    state: Literal["pending", "sent", "failed", "cancelled"] | None = None,
) -> list[ScheduledOut]:
    with runtime.db.read() as session:
        access_conversation(session, principal, conversation_id)
        return queries.list_scheduled(session, conversation_id, state)


@router.post("/scheduled-messages", response_model=ScheduledOut, status_code=201)
def create_scheduled(body: ScheduledIn, principal: CurrentAgent, runtime: RuntimeDep) -> ScheduledOut:
    """Write a reply now, send it at `send_at` (channel rules are checked when it goes out)."""
    if body.send_at.tzinfo is None:
        raise ActionError(
            "timezone_required", N_("Give times with a time zone offset, e.g. 2026-03-02T09:00:00Z."), 422
        )
    with runtime.transaction(principal.id) as tx:
        conversation = access_conversation(tx.session, principal, body.conversation_id)
        item = automation.schedule(tx, conversation, body.body, body.send_at, body.channel_account_id)
        return ScheduledOut.model_validate(item, from_attributes=True)


@router.delete("/scheduled-messages/{item_id}", response_model=ScheduledOut)
def cancel_scheduled(item_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> ScheduledOut:
    with runtime.transaction(principal.id) as tx:
        item = access_scheduled(tx.session, principal, item_id)
        automation.cancel_scheduled(tx, item)
        return ScheduledOut.model_validate(item, from_attributes=True)


def install(app: FastAPI) -> None:
    app.include_router(router)
