"""Ingest's entry points: one message, one webhook delivery, or a batch of deliveries, in the caller's transaction."""

from __future__ import annotations

import logging

# The batch insert casts every column it writes. A foreign-key column takes its type from
# the column it points at, known only once that table is loaded: load the tables they point at.
import hilo.agents.models  # noqa: F401
import hilo.channels.models  # noqa: F401
from hilo.channels.base import (
    ChannelAccountView,
    InboundMessage,
    WebhookResult,
)
from hilo.ingest.alone import apply_edit, is_edit, store_unless_repeat
from hilo.ingest.batch import Batch
from hilo.ingest.statements import STATUS_PREDECESSORS, DeliveryResult, IngestResult
from hilo.ingest.statuses import apply_opt_changes, apply_status
from hilo.messaging import actions as messaging_actions
from hilo.runtime import Tx

log = logging.getLogger(__name__)


def ingest_message(tx: Tx, account: ChannelAccountView, inbound: InboundMessage) -> IngestResult:
    """Store one inbound message on its contact's thread; a repeat is recognised, not stored."""
    if is_edit(inbound):
        return apply_edit(tx, account, inbound)
    return _dedupe_or_store(tx, account, inbound)


def _dedupe_or_store(tx: Tx, account: ChannelAccountView, inbound: InboundMessage) -> IngestResult:
    batch = Batch(tx)
    simple = batch.simple(account, inbound)
    if simple is not None:
        # The common case in five statements: see `Batch`.
        batch.prefetch([simple])
        result = batch.message(account, inbound, simple)
        batch.flush()
        return result
    return store_unless_repeat(tx, account, inbound)


def ingest_delivery(tx: Tx, account: ChannelAccountView, result: WebhookResult) -> DeliveryResult:
    """Store everything one webhook delivery carried, in the caller's transaction."""
    outcome = DeliveryResult()
    for inbound in result.messages:
        outcome.messages.append(ingest_message(tx, account, inbound))
    if result.opt_changes:
        apply_opt_changes(tx, account, result.opt_changes)
    for status in result.statuses:
        if apply_status(tx, account, status):
            outcome.statuses_applied += 1
        else:
            outcome.statuses_ignored += 1
    if result.watermarks or result.account_errors:
        for mark in result.watermarks:
            allowed = STATUS_PREDECESSORS.get(mark.status, ())
            outcome.statuses_applied += messaging_actions.apply_watermark(
                tx, account, mark.recipient, mark.status, mark.at, allowed
            )
        if result.account_errors:
            messaging_actions.record_account_errors(tx, account, result.account_errors)
    return outcome


def ingest_batch(tx: Tx, deliveries: list[tuple[ChannelAccountView, WebhookResult]]) -> list[DeliveryResult]:
    """Store many webhook deliveries in the caller's transaction, in order (see `Batch`)."""
    batch = Batch(tx)
    plans = []
    for account, result in deliveries:
        plain = result.carries_messages_only()
        plans.append(
            [batch.simple(account, inbound) if plain and not is_edit(inbound) else None for inbound in result.messages]
        )
    batch.prefetch([simple for plan in plans for simple in plan if simple is not None])
    outcomes = []
    for (account, result), plan in zip(deliveries, plans, strict=True):
        if not result.carries_messages_only():
            batch.flush()
            outcome = ingest_delivery(tx, account, result)
            batch.stored_alone(account, result.messages, outcome.messages)
            outcomes.append(outcome)
            continue
        outcome = DeliveryResult()
        for inbound, simple in zip(result.messages, plan, strict=True):
            outcome.messages.append(batch.message(account, inbound, simple))
        outcomes.append(outcome)
    batch.flush()
    return outcomes
