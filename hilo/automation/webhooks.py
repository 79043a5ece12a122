"""Rule webhooks, delivered off the engine thread with retries and backoff.

A rule's webhooks are handed over once its transaction has committed. Sender threads
(started when there is work, gone after a minute without any) post them; a slow or
failing endpoint therefore never holds up routing, SLAs or other rules. A delivery that
fails on a network error, a 429 or a 5xx answer is tried again after RETRY_DELAYS; the
outcome, delivered or not, is recorded as an `automation.webhook` event on the
conversation. The queue is in memory and bounded: what a process holds when it stops is
lost, and a webhook that finds the queue full is recorded as failed (`queue_full`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from hilo import outbound
from hilo.automation.steps import PendingWebhook
from hilo.channels import signing
from hilo.runtime import Runtime

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0
# Seconds to wait before the second, third and fourth attempt.
RETRY_DELAYS: tuple[float, ...] = (5.0, 30.0, 120.0)
# Webhooks waiting or being delivered, at most, per process.
QUEUE_LIMIT = 1000
SENDERS = 4
IDLE_SECONDS = 60.0
DELIVERY_HEADER = "X-Hilo-Delivery"


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    hook: PendingWebhook = field(compare=False)
    # Sent with every attempt, so the receiver can tell a retry from a new call.
    delivery_id: str = field(compare=False, default_factory=lambda: uuid.uuid4().hex)
    attempts: int = field(compare=False, default=0)


class WebhookSender:
    """Deliver rule webhooks on background threads; `submit` never waits for the network."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._cond = threading.Condition()
        self._due: list[_Delivery] = []
        self._in_flight = 0
        self._threads: list[threading.Thread] = []
        self._seq = itertools.count()
        self._client = httpx.Client(timeout=TIMEOUT_SECONDS, transport=outbound.Transport())

    def submit(self, hooks: list[PendingWebhook]) -> None:
        """Queue webhooks for delivery (call after the commit that caused them)."""
        refused = []
        with self._cond:
            for hook in hooks:
                if len(self._due) + self._in_flight >= QUEUE_LIMIT:
                    refused.append(hook)
                    continue
                heapq.heappush(self._due, _Delivery(time.monotonic(), next(self._seq), hook))
            self._start_senders()
            self._cond.notify_all()
        for hook in refused:
            log.warning("webhook queue full: %s not called", hook.url)
            self._record(hook, {"url": hook.url, "delivered": False, "attempts": 0, "error": "queue_full"})

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is waiting or being delivered; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._due and not self._in_flight, timeout)

    def _start_senders(self) -> None:
        wanted = min(SENDERS, len(self._due) + self._in_flight)
        while len(self._threads) < wanted:
            thread = threading.Thread(target=self._run, name="hilo-webhooks", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _next(self) -> _Delivery | None:
        """The next delivery that is due, waiting for it; None when idle long enough to stop."""
        idle_since = time.monotonic()
        with self._cond:
            while True:
                now = time.monotonic()
                if self._due and self._due[0].due <= now:
                    self._in_flight += 1
                    return heapq.heappop(self._due)
                if not self._due and now - idle_since >= IDLE_SECONDS:
                    # Decided under the lock, so `submit` starts a new sender if work comes now.
                    self._threads.remove(threading.current_thread())
                    return None
                self._cond.wait(self._due[0].due - now if self._due else IDLE_SECONDS)

    def _run(self) -> None:
        while (delivery := self._next()) is not None:
            outcome = self._attempt(delivery)
            if outcome.pop("retryable") and delivery.attempts <= len(RETRY_DELAYS):
                log.info("webhook %s failed (%s); retrying", delivery.hook.url, outcome)
                with self._cond:
                    self._in_flight -= 1
                    delivery.due = time.monotonic() + RETRY_DELAYS[delivery.attempts - 1]
                    heapq.heappush(self._due, delivery)
                    self._cond.notify_all()
                continue
            if not outcome["delivered"]:
                log.warning("webhook %s not delivered: %s", delivery.hook.url, outcome)
            self._record(delivery.hook, outcome)
            with self._cond:
                # In flight until recorded, so that `wait_idle` waits for the event too.
                self._in_flight -= 1
                self._cond.notify_all()

    def _attempt(self, delivery: _Delivery) -> dict[str, Any]:
        delivery.attempts += 1
        hook = delivery.hook
        body = orjson.dumps({**hook.payload, "sent_at": self.runtime.clock.now().isoformat()})
        headers = {
            "content-type": "application/json",
            signing.HEADER: signing.sign(hook.secret, body),
            DELIVERY_HEADER: delivery.delivery_id,
        }
        outcome: dict[str, Any] = {"url": hook.url, "attempts": delivery.attempts}
        try:
            response = self._client.post(hook.url, content=body, headers=headers)
        except outbound.AddressRefused:
            return {
                **outcome,
                "delivered": False,
                "error": outbound.CODE_REFUSED,
                "reason": outbound.REASON_REFUSED,
                "retryable": False,
            }
        except httpx.HTTPError as exc:
            return {**outcome, "delivered": False, "error": type(exc).__name__, "retryable": True}
        status = response.status_code
        delivered = 200 <= status < 300
        retryable = not delivered and (status == 429 or status >= 500)
        return {**outcome, "delivered": delivered, "status": status, "retryable": retryable}

    def _record(self, hook: PendingWebhook, outcome: dict[str, Any]) -> None:
        try:
            with self.runtime.transaction() as tx:
                tx.record(
                    "automation.webhook",
                    conversation_id=hook.payload.get("conversation_id"),
                    contact_id=hook.payload.get("contact_id"),
                    data=outcome,
                )
        except Exception:
            log.exception("could not record the outcome of webhook %s", hook.url)
