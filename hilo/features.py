"""The feature registry: the one list `hilo serve` and `hilo worker` are both built from.

A feature names what it adds to each kind of process:
- `routes`: modules whose `install(app)` adds REST routes, pages and the app-local state they
  need (API processes only);
- `reactions`: handlers it installs on the shared "reactions" engine, which runs SLA timers,
  automation rules and routing in that order for every committed event (one position for
  the three, because a rule must set a conversation's team before routing picks an agent);
- `consumer`: a durable consumer with a position of its own (notifications);
- `service`: a background loop (the outbox dispatcher, the IMAP mailboxes);
- `jobs`: handlers of the kinds of background job it queues (`hilo.jobs`), run by one job runner.

`Background` builds every feature's reactions, consumers and services for one process. An API
process always builds it (its routes use the handlers) and runs it fully unless
`HILO_RUN_WORKER=0`, in which case it runs only what is local to the process (its websockets'
presence); `hilo worker` runs it fully. Adding a feature means adding it here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hilo.agents import mail
from hilo.automation import webhooks
from hilo.automation.rules import AutomationHandlers
from hilo.consumers.engine import Engine
from hilo.ingest.queue import IngestQueue
from hilo.jobs import JobHandler, JobRunner
from hilo.mailbox.service import MailboxService
from hilo.outbox.dispatcher import OutboxDispatcher
from hilo.routing.handlers import RoutingHandlers
from hilo.runtime import Runtime
from hilo.web.notifier import Notifier
from hilo.widget.actions import send_email_fallbacks

log = logging.getLogger(__name__)

# The least time between two passes of the reactions engine (`Engine`). A pass costs a few
# statements and a commit whatever it handles; without pacing, a stream of single commits
# made one pass each, which kept the engine busy on bookkeeping and queued the costly events
# (a new conversation's rules and routing) behind it.
REACTIONS_PASS_INTERVAL = 0.015


class Service(Protocol):
    """A background loop: started in the process's event loop, stopped on shutdown."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


class Consumer(Protocol):
    engine: Engine

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Feature:
    name: str
    routes: tuple[str, ...] = ()
    reactions: Callable[[Engine], Any] | None = None
    consumer: Callable[[Runtime], Consumer] | None = None
    service: Callable[[Runtime, IngestQueue], Service] | None = None
    jobs: Mapping[str, JobHandler] = field(default_factory=dict)


def _routing(engine: Engine) -> RoutingHandlers:
    handlers = RoutingHandlers(engine)
    handlers.install()
    return handlers


def _automation(engine: Engine) -> AutomationHandlers:
    handlers = AutomationHandlers(engine)
    handlers.install()
    return handlers


def _widget(engine: Engine) -> None:
    def email_fallbacks() -> None:
        # Messages a visitor left unread go to their e-mail address after a while.
        send_email_fallbacks(engine.runtime)

    engine.every_tick(50, email_fallbacks)


class _Mailboxes:
    """The IMAP mailbox service as a `Service`."""

    def __init__(self, runtime: Runtime, ingest: IngestQueue) -> None:
        self.service = MailboxService(runtime, ingest)
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        self.service.start()
        try:
            await self._stopped.wait()
        finally:
            await self.service.close()

    def stop(self) -> None:
        self._stopped.set()


FEATURES: tuple[Feature, ...] = (
    Feature("accounts", routes=("hilo.web.account_pages",), jobs={mail.JOB_KIND: mail.deliver}),
    Feature(
        "workspace",
        routes=(
            "hilo.web.views",
            "hilo.web.admin_pages",
            "hilo.web.admin_automation",
            "hilo.web.admin_settings",
        ),
        consumer=Notifier,
    ),
    Feature("routing", routes=("hilo.routing.api",), reactions=_routing),
    Feature(
        "automation",
        routes=("hilo.automation.api",),
        reactions=_automation,
        jobs={webhooks.KIND: webhooks.deliver},
    ),
    Feature("widget", routes=("hilo.widget.routes", "hilo.widget.demo_page"), reactions=_widget),
    Feature("channel_tools", routes=("hilo.api.channel_tools",)),
    Feature("contacts_directory", routes=("hilo.api.directory", "hilo.web.directory_pages")),
    Feature("outbox", service=lambda runtime, _ingest: OutboxDispatcher(runtime)),
    Feature("mailboxes", service=_Mailboxes),
)


@dataclass
class Background:
    """Every feature's reactions, consumers and services for one process."""

    runtime: Runtime
    ingest: IngestQueue
    reactions: Engine = field(init=False)
    jobs: JobRunner = field(init=False)
    handles: dict[str, Any] = field(default_factory=dict)
    consumers: dict[str, Consumer] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reactions = Engine(self.runtime, name="reactions", pass_interval=REACTIONS_PASS_INTERVAL)
        for feature in FEATURES:
            if feature.reactions is not None:
                self.handles[feature.name] = feature.reactions(self.reactions)
            if feature.consumer is not None:
                self.consumers[feature.name] = feature.consumer(self.runtime)
            if feature.service is not None:
                self.services[feature.name] = feature.service(self.runtime, self.ingest)
        self.jobs = JobRunner(self.runtime, {kind: run for f in FEATURES for kind, run in f.jobs.items()})
        self.services["jobs"] = self.jobs

    def engines(self) -> list[Engine]:
        return [self.reactions, *(consumer.engine for consumer in self.consumers.values())]

    async def start(self, *, full: bool) -> None:
        """Start the engines and services; without `full`, only what is local to this process."""
        self.reactions.start(consume=full)
        if not full:
            return
        for consumer in self.consumers.values():
            consumer.start()
        for name, service in self.services.items():
            self._tasks.append(asyncio.create_task(service.run(), name=f"hilo-{name}"))

    async def stop(self) -> None:
        for service in self.services.values():
            service.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(task, timeout=10)
        self._tasks.clear()
        for engine in self.engines():
            await asyncio.to_thread(engine.stop)

    def nudge(self, _event: object = None) -> None:
        """Events committed by another process came over the bus: the reactions engine looks at
        once (if this process holds its lease). The other consumers, whose work may come a moment
        late, keep to their poll: a look on every nudge cost more passes under load."""
        self.reactions.nudge()

    def drain(self) -> int:
        """Handle every committed event in every engine of this process (tests, tools)."""
        return sum(engine.drain() for engine in self.engines())
