"""The `hilo` command line: serve, worker, migrate, demo, agents, tokens, channels, secrets."""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import click

from hilo.settings import DEFAULT_HOST, DEFAULT_PORT, Settings, load_settings, local_url


def _setup_logging() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group()
def main() -> None:
    """Hilo: one contact, one thread, every channel."""
    _setup_logging()


@main.command()
@click.option("--host", envvar="HILO_HOST", default=DEFAULT_HOST, show_default=True, help="address (HILO_HOST)")
@click.option("--port", envvar="HILO_PORT", default=DEFAULT_PORT, show_default=True, type=int, help="port (HILO_PORT)")
@click.option("--workers", default=1, show_default=True, type=int, help="uvicorn worker processes")
def serve(host: str, port: int, workers: int) -> None:
    """Run the API, webhooks, websockets and agent UI; print the address once it listens."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from hilo.db.migrate import upgrade
    from hilo.demo import demo_sign_in

    # The app, built by uvicorn (in each worker process too), takes its default public
    # address (HILO_BASE_URL unset) from where it listens.
    os.environ["HILO_HOST"], os.environ["HILO_PORT"] = host, str(port)
    settings = load_settings()
    upgrade(settings.database_url)
    sign_in = demo_sign_in(settings)
    config = uvicorn.Config(
        "hilo.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        # create_served_app puts the app behind uvicorn's proxy-header middleware itself.
        proxy_headers=False,
        # Half the memory per connection of the default implementation: widget sockets add up.
        ws="websockets-sansio",
    )
    if workers > 1 and sys.platform.startswith("linux"):
        # Each worker listens on a socket of its own on the same port (SO_REUSEPORT), and the
        # kernel spreads new connections over them evenly. On one shared socket, whichever
        # worker was idle at the moment took the connection: a client opening many at once
        # (a provider's webhook pool, a load balancer) could end up with most of them on one
        # worker while the other idled. This socket only holds the port; it never listens.
        try:
            holder = _port_socket(host, _free_port(host, port))
        except OSError as exc:
            click.echo(f"Cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
            sys.exit(1)
        bound = holder.getsockname()[1]
        threading.Thread(target=_announce_when_listening, args=(settings, host, bound, sign_in), daemon=True).start()
        target = functools.partial(_serve_on_own_socket, config, host, bound)
        Multiprocess(config, target=target, sockets=[]).run()
        holder.close()
        return
    if workers > 1:
        sock = config.bind_socket()
        # Connections wait in the backlog until a worker has started and accepts them.
        sock.listen(config.backlog)
        _announce(settings, host, sock.getsockname()[1], sign_in)
        Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()
        return
    server = _announcing_server(config, lambda bound: _announce(settings, host, bound, sign_in))
    server.run()
    if not server.started:
        sys.exit(3)


def _free_port(host: str, port: int) -> int:
    """`port` (or one the system picks for 0) once nothing listens there, or OSError.

    Bound without SO_REUSEPORT, so that a server already listening there, another Hilo's
    workers included, refuses it: with the option, the new workers would silently share
    the port with the old ones."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return int(probe.getsockname()[1])


def _port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, not listening yet."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _serve_on_own_socket(config: Any, host: str, port: int, sockets: Any = None) -> None:
    """A worker process's server, on a socket of its own (see `serve`).

    The socket listens only once the app has started (uvicorn's server calls listen() after
    the lifespan's startup): until then the kernel gives new connections to the workers
    that already serve, where a listening socket would keep them in its backlog while this
    worker starts, for seconds on a busy machine."""
    import uvicorn

    uvicorn.Server(config).run(sockets=[_port_socket(host, port)])


def _announce_when_listening(settings: Settings, host: str, port: int, sign_in: dict[str, str] | None) -> None:
    """Announce once a worker accepts connections (before, a client would be refused)."""
    address = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host  # noqa: S104
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
        except OSError:
            time.sleep(0.05)
            continue
        _announce(settings, host, port, sign_in)
        return


def _announce(settings: Settings, host: str, port: int, sign_in: dict[str, str] | None) -> None:
    """Print where Hilo is, now that it answers there (and the demo's sign-in when it is seeded)."""

    url = local_url(host, port)
    lines = [
        f"Hilo is ready at {url}",
        f"  Agent inbox:     {url}/inbox",
        f"  Administration:  {url}/admin",
        f"  API reference:   {url}/api/docs",
    ]
    if settings.base_url != url:
        lines.append(f"  Public address (HILO_BASE_URL): {settings.base_url}")
    if not settings.base_url_configured:
        lines.append(
            f"  Webhook URLs and the widget name {settings.base_url}: set HILO_BASE_URL to the public"
            " address providers and customers reach"
        )
    if sign_in is not None:
        lines.append(f"  Demo sign-in:    {sign_in['email']} / {sign_in['password']}")
        lines.append(f"  Demo chat page:  {url}/demo/widget  (write as a customer)")
    lines.append("  Press Ctrl+C to stop.")
    click.echo("\n".join(lines))
    sys.stdout.flush()


def _announcing_server(config: Any, ready: Callable[[int], None]) -> Any:
    """uvicorn's server, calling `ready(port)` once its socket listens and the app has started."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                ready(self.servers[0].sockets[0].getsockname()[1])

    return AnnouncingServer(config)


@main.command()
def worker() -> None:
    """Run a worker process: every feature's background work (any number on PostgreSQL)."""
    from hilo.features import Background
    from hilo.ingest.queue import IngestQueue
    from hilo.runtime import Runtime

    runtime = Runtime(load_settings())
    # No API here: mail fetched by IMAP is committed by this process's own ingest writer.
    ingest = IngestQueue(runtime)
    background = Background(runtime, ingest)

    async def run() -> None:
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopped.set)
        if runtime.settings.redis_url:
            # The API processes' live updates say when they committed events: the engines
            # look at once instead of at their next poll.
            await runtime.bus.start(background.nudge)
        ingest.start()
        await background.start(full=True)
        # As `hilo serve` does: what startup made stays out of the collector's full passes,
        # which would otherwise stall the engine now and then (see hilo.app).
        gc.freeze()
        try:
            await stopped.wait()
        finally:
            await background.stop()
            ingest.stop()
            if runtime.settings.redis_url:
                await runtime.bus.stop()

    click.echo("hilo worker: sending queued messages, reading mailboxes, reacting to events (Ctrl+C to stop)")
    asyncio.run(run())
    runtime.close()


@main.command()
@click.option("--downgrade", "down", default=None, help="revision to go back to ('base' for empty)")
def migrate(down: str | None) -> None:
    """Bring the database schema up to date (or back, with --downgrade)."""
    from hilo.db.encryption import KeyConfigurationError, SecretsUnreadable
    from hilo.db.migrate import downgrade, upgrade

    url = load_settings().database_url
    try:
        if down:
            downgrade(url, down)
            click.echo(f"database downgraded to {down}")
        else:
            upgrade(url)
            click.echo("database is up to date")
    except (KeyConfigurationError, SecretsUnreadable) as exc:
        # Raised by the migration that encrypts stored secrets (and decrypts them going back).
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.option("--reset", is_flag=True, help="seed even if the database already has contacts (never twice)")
def demo(reset: bool) -> None:
    """Seed the demo: a support desk, channels on the demo provider, about 50 contacts in Spanish and English."""
    from hilo.db.migrate import upgrade
    from hilo.demo import seed

    settings = load_settings()
    upgrade(settings.database_url)
    summary = seed(settings, force=reset)
    click.echo(json.dumps(summary, indent=2, default=str))


@main.group()
def agents() -> None:
    """Manage agents."""


@agents.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["admin", "supervisor", "agent"]), default="agent", show_default=True)
@click.option("--locale", type=click.Choice(["en", "es"]), default="en", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def agents_create(email: str, name: str, role: str, locale: str, password: str) -> None:
    """Create an agent."""
    from hilo.agents.actions import create_agent

    with _runtime_tx() as tx:
        agent = create_agent(tx, email=email, name=name, password=password, role=role, locale=locale)
        click.echo(json.dumps({"id": agent.id, "email": agent.email, "role": agent.role}))


@main.group()
def tokens() -> None:
    """Manage personal API tokens."""


@tokens.command("create")
@click.option("--email", required=True, help="the agent the token acts as")
@click.option("--name", default="cli", show_default=True)
def tokens_create(email: str, name: str) -> None:
    """Create an API token; it is printed once."""
    from sqlalchemy import select

    from hilo.agents.actions import create_token
    from hilo.agents.models import Agent

    with _runtime_tx() as tx:
        agent = tx.session.execute(select(Agent).where(Agent.email == email.lower())).scalar_one_or_none()
        if agent is None:
            raise click.ClickException(f"no agent with e-mail {email}")
        row, token = create_token(tx, agent, name)
        click.echo(json.dumps({"id": row.id, "token": token}))


@main.group()
def channels() -> None:
    """Manage channel accounts."""


def _channel_json(account: Any, base_url: str) -> dict[str, Any]:
    from hilo.api.admin import channel_addresses

    return {
        "id": account.id,
        "kind": account.kind,
        "name": account.name,
        "enabled": account.enabled,
        "config": account.config,
        "secrets_set": sorted(account.secrets or {}),
        **channel_addresses(base_url, account),
    }


@channels.command("add")
@click.argument("kind")
@click.option("--name", required=True)
@click.option("--set", "values", multiple=True, help="key=value (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print the new channel account as JSON")
def channels_add(kind: str, name: str, values: tuple[str, ...], as_json: bool) -> None:
    """Add a channel account of KIND (api, email, whatsapp, sms, telegram, ...)."""
    from hilo.channels.actions import create_channel_account

    parsed: dict[str, Any] = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="--set")
        key, value = item.split("=", 1)
        parsed[key.strip()] = value
    settings = load_settings()
    with _runtime_tx() as tx:
        account = create_channel_account(tx, kind, name, parsed)
        payload = _channel_json(account, settings.base_url)
        if kind == "api" and "secret" not in parsed:
            payload["secret"] = account.secrets["secret"]
    if as_json:
        click.echo(json.dumps(payload))
    else:
        where = payload.get("webhook_url") or payload.get("form_url") or payload.get("embed_snippet")
        click.echo(f"channel {payload['id']} ({kind}) created; {where}")


@channels.command("list")
@click.option("--json", "as_json", is_flag=True)
def channels_list(as_json: bool) -> None:
    """List channel accounts."""
    from sqlalchemy import select

    from hilo.channels.models import ChannelAccount

    settings = load_settings()
    with _runtime_tx() as tx:
        rows = [
            _channel_json(a, settings.base_url)
            for a in tx.session.execute(select(ChannelAccount).order_by(ChannelAccount.id)).scalars()
        ]
    if as_json:
        click.echo(json.dumps(rows))
    else:
        for row in rows:
            state = "enabled" if row["enabled"] else "disabled"
            where = row.get("webhook_url") or row.get("form_url") or row.get("script_url")
            click.echo(f"{row['id']:>4}  {row['kind']:<16} {row['name']:<30} {state:<9} {where}")


@main.group()
def secrets() -> None:
    """Manage the keys that encrypt stored secrets (HILO_SECRET_KEYS)."""


@secrets.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new key to put first in HILO_SECRET_KEYS."""
    from hilo.db.encryption import generate_key

    click.echo(generate_key())


@secrets.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored secret with the first key of HILO_SECRET_KEYS."""
    from hilo.keys import rotate_secrets

    with _runtime_tx() as tx:
        counts = rotate_secrets(tx)
    click.echo(
        f"re-encrypted the secrets of {counts['channel_accounts']} channel accounts"
        f" and {counts['automation_rules']} rules with the first key"
    )


class _runtime_tx:
    """A one-off action transaction for CLI commands, with actions' errors made readable."""

    def __enter__(self) -> Any:
        from hilo.db.encryption import KeyConfigurationError, SecretsUnreadable
        from hilo.db.migrate import upgrade
        from hilo.runtime import Runtime

        settings = load_settings()
        try:
            upgrade(settings.database_url)
            self.runtime = Runtime(settings)
        except (KeyConfigurationError, SecretsUnreadable) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        self.context = self.runtime.transaction()
        return self.context.__enter__()

    def __exit__(self, *exc: Any) -> None:
        from hilo.errors import ActionError
        from hilo.i18n import gettext

        try:
            self.context.__exit__(*exc)
        finally:
            self.runtime.close()
        if isinstance(exc[1], ActionError):
            # Name the fields a refusal points at (the page marks them; a terminal cannot).
            fields = [str(d.get("field")) for d in exc[1].values.get("details", []) if isinstance(d, dict)]
            where = f" ({', '.join(fields)})" if fields else ""
            click.echo(f"error: {exc[1].code}: {gettext(exc[1].reason, None, **exc[1].values)}{where}", err=True)
            sys.exit(2)


if __name__ == "__main__":
    main()
