"""Rule webhooks: queued as jobs in the rule's own transaction, delivered by the job runner.

A rule that calls a webhook queues an `automation.webhook` job beside its other effects, so
the call is made once the rule's changes have committed, survives a restart, and never holds
up routing, SLAs or other rules. The job keeps the rule's id, not its secret: each attempt
signs the body with the rule's current secret (Hilo's `X-Hilo-Signature` scheme) and sends
the same `X-Hilo-Delivery` id, so the receiver can tell a retry from a new call. A network
error, a 429 or a 5xx answer is tried again after RETRY_DELAYS; the outcome, delivered or
not, is recorded as an `automation.webhook` event on the conversation.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from typing import Any

import httpx
import orjson

from hilo import outbound
from hilo.automation.models import AutomationRule
from hilo.automation.steps import PendingWebhook, Webhook, stored
from hilo.channels import signing
from hilo.jobs import Claimed, Outcome, enqueue
from hilo.runtime import Runtime, Tx

log = logging.getLogger(__name__)

KIND = "automation.webhook"
TIMEOUT_SECONDS = 5.0
# Seconds to wait before the second, third and fourth attempt.
RETRY_DELAYS: tuple[float, ...] = (5.0, 30.0, 120.0)
DELIVERY_HEADER = "X-Hilo-Delivery"


def tagged(hooks: list[PendingWebhook], rule_id: int) -> list[PendingWebhook]:
    return [replace(hook, rule_id=rule_id) for hook in hooks]


def queue(tx: Tx, hooks: list[PendingWebhook]) -> None:
    """Queue the rules' webhooks in `tx`: they are called once it has committed."""
    for hook in hooks:
        enqueue(
            tx,
            KIND,
            {"rule_id": hook.rule_id, "url": hook.url, "payload": hook.payload, "delivery_id": uuid.uuid4().hex},
        )


def _secret(runtime: Runtime, rule_id: int | None, url: str) -> str | None:
    """The secret the rule's webhook step for `url` has now (None once the rule or step is gone)."""
    if rule_id is None:
        return None
    with runtime.db.read() as session:
        rule = session.get(AutomationRule, rule_id)
        if rule is None:
            return None
        for step in stored(rule.actions or []):
            if isinstance(step, Webhook) and step.url == url:
                return step.secret
    return None


async def deliver(runtime: Runtime, job: Claimed) -> Outcome:
    """One attempt at a rule webhook; records the outcome once it is final."""
    url = str(job.payload["url"])
    outcome: dict[str, Any] = {"url": url, "attempts": job.attempts}
    secret = await asyncio.to_thread(_secret, runtime, job.payload.get("rule_id"), url)
    if secret is None:
        outcome |= {"delivered": False, "error": "rule_changed"}
        await asyncio.to_thread(_record, runtime, job, outcome)
        return Outcome(done=False, error="rule_changed")
    body = orjson.dumps({**job.payload["payload"], "sent_at": runtime.clock.now().isoformat()})
    headers = {
        "content-type": "application/json",
        signing.HEADER: signing.sign(secret, body),
        DELIVERY_HEADER: str(job.payload["delivery_id"]),
    }
    retryable = False
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, transport=outbound.AsyncTransport()) as client:
            response = await client.post(url, content=body, headers=headers)
    except outbound.AddressRefused:
        outcome |= {"delivered": False, "error": outbound.CODE_REFUSED, "reason": outbound.REASON_REFUSED}
    except httpx.HTTPError as exc:
        outcome |= {"delivered": False, "error": type(exc).__name__}
        retryable = True
    else:
        status = response.status_code
        outcome |= {"delivered": 200 <= status < 300, "status": status}
        retryable = not outcome["delivered"] and (status == 429 or status >= 500)
    if retryable and job.attempts <= len(RETRY_DELAYS):
        log.info("webhook %s failed (%s); retrying", url, outcome)
        return Outcome(done=False, retry_in=RETRY_DELAYS[job.attempts - 1], error=str(outcome.get("error", "")))
    if not outcome["delivered"]:
        log.warning("webhook %s not delivered: %s", url, outcome)
    await asyncio.to_thread(_record, runtime, job, outcome)
    return Outcome(done=bool(outcome["delivered"]), error=None if outcome["delivered"] else "not_delivered")


def _record(runtime: Runtime, job: Claimed, outcome: dict[str, Any]) -> None:
    payload = job.payload.get("payload") or {}
    with runtime.transaction() as tx:
        tx.record(
            KIND,
            conversation_id=payload.get("conversation_id"),
            contact_id=payload.get("contact_id"),
            data=outcome,
        )
