"""Run automation on the engine: rules on committed events, time-based rules, out-of-office
replies, auto-resolve and scheduled messages.

Loop protection: every event carries the depth of the automation chain that caused it
(hilo.consumers.engine); a rule does not run past MAX_DEPTH, and at most RATE_LIMIT rule
runs per conversation happen in RATE_WINDOW (a bot answering our auto-reply with its own
is a loop no depth shows). Either stop is recorded as `automation.loop_stopped`.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select

from hilo.automation import actions as automation
from hilo.automation import conditions as cond
from hilo.automation import steps, webhooks
from hilo.automation.facts import contact_locale, facts_for, load_trigger_messages, trigger_message, variables
from hilo.automation.models import AutomationRule, AutomationSettings
from hilo.consumers.engine import Engine
from hilo.conversations.models import Conversation, Message
from hilo.runtime import Runtime, Tx

AUTOMATION_ORDER = 20
MAX_DEPTH = 5
RATE_LIMIT = 20
RATE_WINDOW = timedelta(minutes=10)
SCAN_BATCH = 200
IDLE_STATUSES = ("open", "pending", "snoozed")

# Committed event -> the rule event it fires.
TRIGGERS = {
    "conversation.created": "conversation.created",
    "conversation.status_changed": "conversation.status_changed",
    "conversation.assigned": "conversation.assigned",
    "conversation.reopened": "conversation.reopened",
    "sla.warning": "sla.warning",
    "sla.breached": "sla.breached",
}

# Built once: the engine reads the rules for every batch of events.
SELECT_RULES = (
    select(AutomationRule)
    .where(AutomationRule.event == bindparam("event"), AutomationRule.active.is_(True))
    .order_by(AutomationRule.position, AutomationRule.id)
)


def trigger_of(event: dict[str, Any]) -> str | None:
    kind = str(event.get("type"))
    if kind == "message.created":
        return "message.received" if event.get("direction") == "inbound" else None
    return TRIGGERS.get(kind)


def rules_for(tx: Tx, event: str) -> list[AutomationRule]:
    """The active rules for `event`, in order (read once per transaction or engine batch)."""
    return tx.cached_setting(
        ("automation_rules", event), lambda: list(tx.session.execute(SELECT_RULES, {"event": event}).scalars())
    )


def apply_rules(
    tx: Tx,
    conversation: Conversation,
    rules: list[AutomationRule],
    event: str,
    depth: int,
    message: Message | None,
    raw_event: dict[str, Any] | None,
) -> list[steps.PendingWebhook]:
    """Run the matching rules in order; return the webhooks to call after the commit."""
    facts = facts_for(tx, conversation, message, raw_event)
    ctx = steps.RunContext(
        language=functools.partial(contact_locale, facts),
        variables=variables(tx, conversation, None),
        trigger_auto_generated=bool(facts["message.auto_generated"]),
        event=event,
    )
    for rule in rules:
        if not cond.evaluate(rule.conditions or {}, facts):
            continue
        if depth > MAX_DEPTH:
            automation.record_run(tx, rule, conversation, event, depth, "loop_stopped", {"reason": "depth"})
            break
        if automation.recent_runs(tx, conversation.id, RATE_WINDOW) >= RATE_LIMIT:
            automation.record_run(tx, rule, conversation, event, depth, "loop_stopped", {"reason": "rate"})
            break
        before = len(ctx.webhooks)
        outcomes = steps.run(tx, conversation, steps.stored(rule.actions), ctx)
        ctx.webhooks[before:] = webhooks.tagged(ctx.webhooks[before:], rule.id)
        automation.record_run(tx, rule, conversation, event, depth, "applied", {"actions": outcomes})
        if rule.stop_processing:
            break
    return ctx.webhooks


class AutomationHandlers:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.runtime: Runtime = engine.runtime

    def install(self) -> None:
        self.engine.before_batch(AUTOMATION_ORDER, self.prepare)
        self.engine.on_event(AUTOMATION_ORDER, self.on_event)
        self.engine.every_tick(5, self.scheduled_pass)
        self.engine.every_tick(30, self.idle_pass)
        self.engine.every_tick(40, self.auto_resolve_pass)

    def prepare(self, tx: Tx, events: list[dict[str, Any]]) -> None:
        """For a batch whose events fire rules: read in one query each the conversations' recent
        rule runs (the rate limit) and the inbound messages the rules look at."""
        fired = {
            int(event["conversation_id"])
            for event in events
            if event.get("conversation_id") is not None
            and (trigger := trigger_of(event)) is not None
            and rules_for(tx, trigger)
        }
        if not fired:
            return
        automation.count_recent_runs(tx, fired, RATE_WINDOW)
        latest: dict[int, int] = {}
        for event in events:
            conversation_id, message_id = int(event.get("conversation_id") or 0), event.get("message_id")
            if (
                conversation_id in fired
                and message_id is not None
                and event.get("type") == "message.created"
                and event.get("direction") == "inbound"
            ):
                latest[conversation_id] = max(int(message_id), latest.get(conversation_id, 0))
        load_trigger_messages(tx, latest)

    def on_event(self, event: dict[str, Any], depth: int) -> None:
        trigger = trigger_of(event)
        conversation_id = event.get("conversation_id")
        if trigger is None or conversation_id is None:
            return
        with self.runtime.transaction() as tx:
            rules = rules_for(tx, trigger)
            answer_closed = trigger == "message.received" and depth <= MAX_DEPTH and automation.out_of_office_set(tx)
            if not rules and not answer_closed:
                return  # nothing configured for this event: not even the conversation is read
            conversation = tx.session.get(Conversation, conversation_id)
            if conversation is None or conversation.merged_into_id is not None:
                return
            message = trigger_message(tx, conversation, event.get("message_id"))
            if rules:
                self.call_webhooks_after(tx, apply_rules(tx, conversation, rules, trigger, depth, message, event))
            if answer_closed and message is not None:
                automation.out_of_office(tx, conversation, message)

    def call_webhooks_after(self, tx: Tx, hooks: list[steps.PendingWebhook]) -> None:
        """Queue the rules' webhooks in `tx`: they are called once it (or its batch) has committed."""
        webhooks.queue(tx, hooks)

    def scheduled_pass(self) -> None:
        """Send the scheduled messages that are due, one per transaction (a failure spoils only its own)."""
        for _ in range(SCAN_BATCH):
            with self.runtime.transaction() as tx:
                if not automation.send_due_scheduled(tx):
                    return

    def idle_pass(self) -> None:
        with self.runtime.db.read() as session:
            rules = list(
                session.execute(
                    select(AutomationRule.id, AutomationRule.idle_hours, AutomationRule.idle_scanned_until).where(
                        AutomationRule.event == "conversation.idle", AutomationRule.active.is_(True)
                    )
                ).tuples()
            )
        for rule_id, idle_hours, scanned_until in rules:
            for conversation_id in self._claim(
                AutomationRule, rule_id, "idle_scanned_until", idle_hours, scanned_until
            ):
                self._run_idle_rule(rule_id, conversation_id)

    def _claim(self, model: Any, key: int, column: str, hours: float | None, after: Any) -> list[int]:
        """Take the next window of conversations that went idle for `hours` (one process wins)."""
        if not hours:
            return []
        with self.runtime.transaction() as tx:
            cutoff = tx.now - timedelta(hours=hours)
            found = automation.idle_candidates(tx, cutoff=cutoff, after=after, statuses=IDLE_STATUSES, limit=SCAN_BATCH)
            mark = cutoff
            if len(found) == SCAN_BATCH:
                last_id, mark = found[-1]
                # The watermark is a time and the next window starts after it: take every
                # conversation of that last instant now, or those beyond the batch are lost.
                found += automation.idle_ties(tx, at=mark, after_id=last_id, statuses=IDLE_STATUSES)
            if after is not None and mark <= after:
                return []
            if not automation.claim_window(tx, model, key, column, after, mark):
                return []
        return [conversation_id for conversation_id, _at in found]

    def _run_idle_rule(self, rule_id: int, conversation_id: int) -> None:
        with self.runtime.transaction() as tx:
            rule = tx.session.get(AutomationRule, rule_id)
            conversation = tx.session.get(Conversation, conversation_id)
            if rule is None or conversation is None or conversation.status not in IDLE_STATUSES:
                return
            if tx.now - conversation.last_message_at < timedelta(hours=rule.idle_hours or 0):
                return
            message = trigger_message(tx, conversation, None)
            self.call_webhooks_after(tx, apply_rules(tx, conversation, [rule], "conversation.idle", 0, message, None))

    def auto_resolve_pass(self) -> None:
        with self.runtime.db.read() as session:
            row = session.get(AutomationSettings, 1)
            if row is None or not row.auto_resolve_after_hours:
                return
            hours, message, after = (
                row.auto_resolve_after_hours,
                row.auto_resolve_message,
                row.auto_resolve_scanned_until,
            )
        for conversation_id in self._claim(AutomationSettings, 1, "auto_resolve_scanned_until", hours, after):
            with self.runtime.transaction() as tx:
                automation.auto_resolve(tx, conversation_id, hours, message)
