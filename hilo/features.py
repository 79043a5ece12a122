"""The routing engine of a process without the API (`hilo worker`).

An engine hears only the events its own process commits. A worker commits some that
matter: conversations and messages from the mailboxes it reads, delivery statuses from
the sends it makes. So each worker runs an engine too, with the same handlers as the API
processes: SLA timers, automation rules and routing, and the periodic passes (which claim
their work with row locks, so any number of processes may run them).
"""

from __future__ import annotations

from hilo.automation.rules import AutomationHandlers
from hilo.routing.engine import Engine
from hilo.routing.handlers import RoutingHandlers
from hilo.runtime import Runtime


def worker_engine(runtime: Runtime) -> Engine:
    """An engine with every handler installed (not started: call `start()`)."""
    engine = Engine(runtime)
    RoutingHandlers(engine).install()
    AutomationHandlers(engine).install()
    return engine
