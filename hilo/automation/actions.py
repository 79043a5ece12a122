"""Automation actions: rules, macros, canned responses, scheduled messages, settings, and
the automated replies and resolutions the engine performs."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from hilo import jobs
from hilo.agents.access import Principal
from hilo.automation import conditions as cond
from hilo.automation import steps
from hilo.automation.facts import contact_locale, facts_for, trigger_message, variables
from hilo.automation.models import (
    RULE_EVENTS,
    AutomationRule,
    AutomationRun,
    AutomationSettings,
    CannedResponse,
    Macro,
    ScheduledMessage,
)
from hilo.automation.variables import render
from hilo.channels.models import ChannelAccount
from hilo.conversations import actions as conv_actions
from hilo.conversations.models import Conversation, Message
from hilo.errors import ActionError
from hilo.events.models import Event
from hilo.hours.calendars import cached
from hilo.hours.models import BusinessHours
from hilo.i18n import N_, normalize_locale
from hilo.outbox import reply as reply_actions
from hilo.routing.queries import team_calendar_row
from hilo.runtime import Tx

SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_SCHEDULE_AHEAD = timedelta(days=365)


# Rules -------------------------------------------------------------------------------


def kept_secrets(rule: AutomationRule | None, actions: Any) -> Any:
    """Give a webhook step sent without its secret the secret the rule has for that URL.

    Secrets are never shown back (see `redacted`), so an edit that does not replace one keeps it.
    """
    if not isinstance(actions, list):
        return actions
    known = {
        a.get("url"): a.get("secret") for a in (rule.actions if rule else None) or [] if a.get("type") == "webhook"
    }
    out = []
    for action in actions:
        if isinstance(action, dict) and action.get("type") == "webhook":
            action = {k: v for k, v in action.items() if k != "secret_set"}
            if not action.get("secret") and known.get(action.get("url")):
                action["secret"] = known[action.get("url")]
        out.append(action)
    return out


def redacted(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rule's steps as shown to people: a webhook's secret only as "set"."""
    return [
        {**{k: v for k, v in a.items() if k != "secret"}, "secret_set": bool(a.get("secret"))}
        if a.get("type") == "webhook"
        else a
        for a in actions
    ]


def save_rule(tx: Tx, rule: AutomationRule | None, fields: dict[str, Any]) -> AutomationRule:
    tx.forget_settings()
    event = fields["event"]
    if event not in RULE_EVENTS:
        raise ActionError("rule_event_invalid", N_("Unknown rule event."), 422)
    idle_hours = fields.get("idle_hours")
    if event == "conversation.idle" and not idle_hours:
        raise ActionError("idle_hours_required", N_("Say after how many idle hours the rule runs."), 422)
    try:
        conditions = cond.validate(fields.get("conditions"))
    except cond.ConditionError as exc:
        raise ActionError(
            "conditions_invalid", N_("The conditions are not valid: {problem}"), 422, problem=str(exc)
        ) from exc
    actions = steps.dump(steps.parse(kept_secrets(rule, fields.get("actions"))))
    if rule is None:
        rule = AutomationRule(created_by=tx.actor_agent_id, created_at=tx.now)
        tx.session.add(rule)
    elif rule.idle_hours != idle_hours:
        rule.idle_scanned_until = None
    rule.name = fields["name"].strip()
    rule.event = event
    rule.conditions = conditions
    rule.actions = actions
    rule.position = fields.get("position", 0)
    rule.active = fields.get("active", True)
    rule.stop_processing = fields.get("stop_processing", False)
    rule.idle_hours = idle_hours if event == "conversation.idle" else None
    rule.updated_at = tx.now
    tx.session.flush()
    tx.record("automation.rule_saved", data={"rule_id": rule.id, "name": rule.name, "event": rule.event})
    return rule


def delete_rule(tx: Tx, rule: AutomationRule) -> None:
    tx.forget_settings()
    tx.session.execute(delete(AutomationRule).where(AutomationRule.id == rule.id))
    tx.record("automation.rule_deleted", data={"rule_id": rule.id, "name": rule.name})


# Rule runs applied within the rate window, per conversation, for an engine batch
# (`count_recent_runs`); runs the batch applies are added as they happen.
RECENT_RUNS = "automation_recent_runs"


def count_recent_runs(tx: Tx, conversation_ids: set[int], window: timedelta) -> None:
    """Count in one query the recent runs of the conversations a batch's rules may run on."""
    if not conversation_ids:
        return
    counted = dict.fromkeys(conversation_ids, 0)
    for conversation_id, count in tx.session.execute(
        select(AutomationRun.conversation_id, func.count())
        .where(
            AutomationRun.conversation_id.in_(sorted(conversation_ids)),
            AutomationRun.created_at > tx.now - window,
            AutomationRun.outcome == "applied",
        )
        .group_by(AutomationRun.conversation_id)
    ).tuples():
        counted[conversation_id] = count
    tx.cached(RECENT_RUNS, dict[int, int]).update(counted)


def recent_runs(tx: Tx, conversation_id: int, window: timedelta) -> int:
    counted = tx.cached(RECENT_RUNS, dict[int, int])
    if conversation_id in counted:
        return counted[conversation_id]
    return int(
        tx.session.execute(
            select(func.count())
            .select_from(AutomationRun)
            .where(
                AutomationRun.conversation_id == conversation_id,
                AutomationRun.created_at > tx.now - window,
                AutomationRun.outcome == "applied",
            )
        ).scalar_one()
    )


def record_run(
    tx: Tx,
    rule: AutomationRule,
    conversation: Conversation,
    event: str,
    depth: int,
    outcome: str,
    detail: dict[str, Any],
) -> None:
    counted = tx.cached(RECENT_RUNS, dict[int, int])
    if outcome == "applied" and conversation.id in counted:
        counted[conversation.id] += 1
    tx.session.add(
        AutomationRun(
            rule_id=rule.id,
            conversation_id=conversation.id,
            event=event,
            depth=depth,
            outcome=outcome,
            detail=detail,
            created_at=tx.now,
        )
    )
    kind = "automation.rule_applied" if outcome == "applied" else "automation.loop_stopped"
    tx.record(
        kind,
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        data={"rule_id": rule.id, "rule": rule.name, "event": event, "depth": depth, **detail},
    )


def dry_run(
    tx: Tx,
    *,
    event: str,
    conditions: dict[str, Any],
    actions: list[dict[str, Any]],
    idle_hours: float | None,
    scan: int,
    limit: int,
) -> dict[str, Any]:
    """What a rule would do to the most recently active unresolved conversations; writes nothing."""
    try:
        checked = cond.validate(conditions)
    except cond.ConditionError as exc:
        raise ActionError(
            "conditions_invalid", N_("The conditions are not valid: {problem}"), 422, problem=str(exc)
        ) from exc
    planned = steps.parse(actions)
    rows = tx.session.execute(
        select(Conversation)
        .where(Conversation.merged_into_id.is_(None), Conversation.status != "resolved")
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(scan)
    ).scalars()
    matched = []
    scanned = 0
    for conversation in rows:
        scanned += 1
        message = trigger_message(tx, conversation, None)
        facts = facts_for(tx, conversation, message)
        if event == "conversation.idle" and facts["conversation.idle_hours"] < (idle_hours or 0):
            continue
        if not cond.evaluate(checked, facts):
            continue
        ctx = steps.RunContext(
            language=functools.partial(contact_locale, facts),
            variables=variables(tx, conversation, None),
            trigger_auto_generated=bool(facts["message.auto_generated"]),
            dry_run=True,
            event=event,
        )
        matched.append(
            {
                "conversation_id": conversation.id,
                "contact_id": conversation.contact_id,
                "status": conversation.status,
                "actions": [steps.describe(tx, conversation, step, ctx) for step in planned],
            }
        )
        if len(matched) >= limit:
            break
    return {"scanned": scanned, "matched": matched}


# Macros ------------------------------------------------------------------------------


def save_macro(tx: Tx, macro: Macro | None, principal: Principal, fields: dict[str, Any]) -> Macro:
    if fields.get("shared") and principal.role not in ("admin", "supervisor"):
        raise ActionError("forbidden", N_("Only administrators and supervisors can share macros."), 403)
    actions = steps.dump(steps.parse(fields.get("actions"), allow_webhook=False))
    if macro is None:
        macro = Macro(owner_agent_id=principal.id, created_at=tx.now)
        tx.session.add(macro)
    macro.name = fields["name"].strip()
    macro.actions = actions
    macro.shared = bool(fields.get("shared"))
    macro.updated_at = tx.now
    tx.session.flush()
    tx.record("macro.saved", data={"macro_id": macro.id, "name": macro.name, "shared": macro.shared})
    return macro


def delete_macro(tx: Tx, macro: Macro) -> None:
    tx.session.execute(delete(Macro).where(Macro.id == macro.id))
    tx.record("macro.deleted", data={"macro_id": macro.id, "name": macro.name})


def run_macro(tx: Tx, macro: Macro, conversation: Conversation) -> list[dict[str, Any]]:
    """Apply a macro's actions as the agent who runs it."""
    message = trigger_message(tx, conversation, None)
    facts = facts_for(tx, conversation, message)
    ctx = steps.RunContext(
        language=functools.partial(contact_locale, facts),
        variables=variables(tx, conversation, tx.actor_agent_id),
        trigger_auto_generated=False,
        event="macro",
    )
    outcomes = steps.run(tx, conversation, steps.stored(macro.actions), ctx)
    tx.record(
        "macro.run",
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        data={"macro_id": macro.id, "name": macro.name, "actions": outcomes},
    )
    return outcomes


# Canned responses --------------------------------------------------------------------


def save_canned(tx: Tx, canned: CannedResponse | None, fields: dict[str, Any]) -> CannedResponse:
    shortcut = fields["shortcut"].strip().lstrip("/").lower()
    if not SHORTCUT.match(shortcut):
        raise ActionError("shortcut_invalid", N_("A shortcut is 1 to 64 lowercase letters, digits, - or _."), 422)
    clash = tx.session.execute(select(CannedResponse.id).where(CannedResponse.shortcut == shortcut)).scalar()
    if clash is not None and (canned is None or clash != canned.id):
        raise ActionError("shortcut_taken", N_("That shortcut is already in use."), 409)
    if canned is None:
        canned = CannedResponse(created_by=tx.actor_agent_id, created_at=tx.now)
        tx.session.add(canned)
    canned.shortcut = shortcut
    canned.title = fields["title"].strip()
    canned.body = fields["body"]
    canned.translations = {normalize_locale(k): v for k, v in (fields.get("translations") or {}).items()}
    canned.updated_at = tx.now
    tx.session.flush()
    tx.record("canned_response.saved", data={"canned_response_id": canned.id, "shortcut": canned.shortcut})
    return canned


def delete_canned(tx: Tx, canned: CannedResponse) -> None:
    tx.session.execute(delete(CannedResponse).where(CannedResponse.id == canned.id))
    tx.record("canned_response.deleted", data={"canned_response_id": canned.id, "shortcut": canned.shortcut})


def render_canned(tx: Tx, canned: CannedResponse, conversation: Conversation, agent_id: int) -> str:
    """The canned response in the contact's language with its variables filled."""
    message = trigger_message(tx, conversation, None)
    locale = contact_locale(facts_for(tx, conversation, message))
    text = (canned.translations or {}).get(locale) or canned.body
    return render(text, variables(tx, conversation, agent_id))


# Scheduled messages ------------------------------------------------------------------


def schedule(
    tx: Tx, conversation: Conversation, body: str, send_at: datetime, channel_account_id: int | None
) -> ScheduledMessage:
    if not body.strip():
        raise ActionError("body_required", N_("Write something first."), 422)
    if send_at <= tx.now or send_at - tx.now > MAX_SCHEDULE_AHEAD:
        raise ActionError("send_at_invalid", N_("Choose a time in the future, within a year."), 422)
    if channel_account_id is not None and tx.session.get(ChannelAccount, channel_account_id) is None:
        raise ActionError("channel_not_found", N_("Channel not found."), 404)
    if conversation.merged_into_id is not None:
        raise ActionError("conversation_merged", N_("This conversation was merged into another one."), 409)
    assert tx.actor_agent_id is not None
    item = ScheduledMessage(
        conversation_id=conversation.id,
        created_by=tx.actor_agent_id,
        body=body,
        channel_account_id=channel_account_id,
        send_at=send_at,
        state="pending",
        created_at=tx.now,
        updated_at=tx.now,
    )
    tx.session.add(item)
    tx.session.flush()
    tx.record(
        "scheduled_message.created",
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        data={"scheduled_message_id": item.id, "send_at": send_at.isoformat()},
        realtime=conv_actions.realtime_of(conversation, scheduled_message_id=item.id, send_at=send_at.isoformat()),
    )
    return item


def cancel_scheduled(tx: Tx, item: ScheduledMessage) -> None:
    if item.state != "pending":
        raise ActionError("not_pending", N_("Only a message that has not been sent yet can be cancelled."), 409)
    item.state = "cancelled"
    item.updated_at = tx.now
    tx.session.flush()
    tx.record(
        "scheduled_message.cancelled",
        conversation_id=item.conversation_id,
        data={"scheduled_message_id": item.id},
    )


def send_due_scheduled(tx: Tx) -> bool:
    """Send the next due scheduled message through the reply path, as its author; False if none is due.

    The message is taken with `jobs.lock_due`: any number of processes may run this side by
    side, and each message goes out once, in the transaction that marks it sent.
    """
    taken = jobs.lock_due(tx, ScheduledMessage, ScheduledMessage.send_at, limit=1)
    if not taken:
        return False
    item = taken[0]
    tx.actor_agent_id = item.created_by
    conversation = tx.session.get(Conversation, item.conversation_id)
    assert conversation is not None
    published = len(tx.published)
    try:
        with tx.session.begin_nested():
            message = reply_actions.reply(tx, conversation, item.body, channel_account_id=item.channel_account_id)
        item.state = "sent"
        item.message_id = message.id
        kind = "scheduled_message.sent"
    except ActionError as exc:
        del tx.published[published:]
        item.state = "failed"
        item.failure_code = exc.code
        kind = "scheduled_message.failed"
    item.updated_at = tx.now
    tx.session.flush()
    tx.record(
        kind,
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        data={"scheduled_message_id": item.id, "message_id": item.message_id, "code": item.failure_code},
        realtime=conv_actions.realtime_of(conversation, scheduled_message_id=item.id, only_agent_ids=[item.created_by])
        if kind.endswith("failed")
        else None,
    )
    return True


# Settings, auto-resolve, out-of-office -----------------------------------------------


def settings_row(tx: Tx) -> AutomationSettings:
    row = tx.session.get(AutomationSettings, 1)
    if row is None:
        row = AutomationSettings(id=1, updated_at=tx.now)
        tx.session.add(row)
        tx.session.flush()
    return row


def save_settings(
    tx: Tx, *, auto_resolve_after_hours: float | None, auto_resolve_message: dict[str, str] | None
) -> AutomationSettings:
    row = settings_row(tx)
    if row.auto_resolve_after_hours != auto_resolve_after_hours:
        row.auto_resolve_scanned_until = None
    row.auto_resolve_after_hours = auto_resolve_after_hours
    row.auto_resolve_message = auto_resolve_message or None
    row.updated_at = tx.now
    tx.session.flush()
    tx.record(
        "automation.settings_saved",
        data={"auto_resolve_after_hours": auto_resolve_after_hours, "auto_resolve_message": bool(auto_resolve_message)},
    )
    return row


def auto_resolve(tx: Tx, conversation_id: int, idle_hours: float, message: dict[str, str] | None) -> bool:
    """Resolve a conversation nobody waits on after `idle_hours` without messages."""
    conversation = tx.session.get(Conversation, conversation_id)
    if (
        conversation is None
        or conversation.status not in ("open", "pending")
        or conversation.waiting_since is not None
        or conversation.merged_into_id is not None
        or tx.now - conversation.last_message_at < timedelta(hours=idle_hours)
    ):
        return False
    sent = None
    if message:
        last = trigger_message(tx, conversation, None)
        if last is None or not last.auto_generated:
            facts = facts_for(tx, conversation, last)
            text = render(steps.localized(message, contact_locale(facts)), variables(tx, conversation, None))
            published = len(tx.published)
            try:
                with tx.session.begin_nested():
                    sent = reply_actions.reply(tx, conversation, text).id
            except ActionError:
                # The goodbye could not go out on this channel; resolve all the same.
                del tx.published[published:]
                tx.session.expire(conversation)
    conv_actions.set_status(tx, conversation, "resolved")
    tx.record(
        "automation.auto_resolved",
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        data={"idle_hours": idle_hours, "message_id": sent},
    )
    return True


def out_of_office_set(tx: Tx) -> bool:
    """Whether any calendar has an out-of-office answer (read once per transaction or batch)."""
    return tx.cached_setting(
        "out_of_office_set",
        lambda: any(tx.session.execute(select(BusinessHours.out_of_office_message)).scalars()),
    )


def out_of_office(tx: Tx, conversation: Conversation, message: Message) -> int | None:
    """Answer a customer who writes while closed, once per closed spell, in their language."""
    if message.auto_generated or message.direction != "inbound":
        return None
    row = team_calendar_row(tx.session, conversation.team_id)
    if row is None or not row.out_of_office_message:
        return None
    calendar = cached(row)
    if calendar.is_open(tx.now):
        return None
    last = tx.session.execute(
        select(func.max(Event.created_at)).where(
            Event.conversation_id == conversation.id, Event.kind == "automation.out_of_office"
        )
    ).scalar()
    if last is not None and calendar.next_open(last) > tx.now:
        return None
    facts = facts_for(tx, conversation, message)
    text = render(steps.localized(row.out_of_office_message, contact_locale(facts)), variables(tx, conversation, None))
    published = len(tx.published)
    try:
        with tx.session.begin_nested():
            sent = reply_actions.reply(tx, conversation, text)
    except ActionError as exc:
        del tx.published[published:]
        tx.record(
            "automation.out_of_office_failed",
            conversation_id=conversation.id,
            contact_id=conversation.contact_id,
            data={"code": exc.code},
        )
        return None
    tx.record(
        "automation.out_of_office",
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        message_id=sent.id,
        data={"business_hours_id": row.id, "next_open": calendar.next_open(tx.now).isoformat()},
    )
    return sent.id


def idle_candidates(
    tx: Tx, *, cutoff: datetime, after: datetime | None, statuses: tuple[str, ...], limit: int
) -> list[tuple[int, datetime]]:
    """Conversations whose last message falls in (after, cutoff], oldest first."""
    query = (
        select(Conversation.id, Conversation.last_message_at)
        .where(
            Conversation.status.in_(statuses),
            Conversation.merged_into_id.is_(None),
            Conversation.last_message_at <= cutoff,
        )
        .order_by(Conversation.last_message_at, Conversation.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Conversation.last_message_at > after)
    return [(row.id, row.last_message_at) for row in tx.session.execute(query)]


def idle_ties(tx: Tx, *, at: datetime, after_id: int, statuses: tuple[str, ...]) -> list[tuple[int, datetime]]:
    """Conversations whose last message is exactly at `at` with an id above `after_id`."""
    query = (
        select(Conversation.id, Conversation.last_message_at)
        .where(
            Conversation.status.in_(statuses),
            Conversation.merged_into_id.is_(None),
            Conversation.last_message_at == at,
            Conversation.id > after_id,
        )
        .order_by(Conversation.id)
    )
    return [(row.id, row.last_message_at) for row in tx.session.execute(query)]


def claim_window(tx: Tx, model: Any, key: int, column: str, old: datetime | None, new: datetime) -> bool:
    """Move a scan watermark from `old` to `new` unless another process already did."""
    field = getattr(model, column)
    unchanged = field.is_(None) if old is None else field == old
    result = tx.session.execute(update(model).where(model.id == key, unchanged).values({column: new}))
    return bool(getattr(result, "rowcount", 0))
