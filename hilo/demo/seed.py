"""Seed the demo: a shop's support desk, its channels and about 50 customers writing in Spanish and English.

Everything goes through the actions layer, exactly as real traffic would: several
customers write on two or three channels and their messages land in one thread. The
desk is complete (business hours, SLA policies, canned responses, macros, a rule, the
chat widget with a page to chat from), and its channels send through the built-in demo
provider (`hilo.channels.demo`), so agents' replies go out and show as delivered.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from hilo.agents import actions as agent_actions
from hilo.agents.access import Principal
from hilo.agents.models import Agent, Team
from hilo.agents.passwords import verify_password
from hilo.channels import actions as channel_actions
from hilo.channels.base import DeliveryStatus, IdentityKind, IdentityRef, InboundMessage, SendResult
from hilo.channels.demo import is_demo
from hilo.channels.models import ChannelAccount
from hilo.clock import FrozenClock
from hilo.consumers import positions
from hilo.contacts.models import Contact
from hilo.conversations import actions as conv_actions
from hilo.conversations.models import Conversation
from hilo.demo import desk
from hilo.demo.people import (
    AGENTS,
    DEMO_PASSWORD,
    ENGLISH,
    REPLIES_EN,
    REPLIES_ES,
    SPANISH,
    TOPICS_EN,
    TOPICS_ES,
    WAITING,
    WHATSAPP_TEMPLATES,
)
from hilo.ingest.deliveries import ingest_message
from hilo.outbox import reply as reply_actions
from hilo.outbox.delivery import record_sent
from hilo.outbox.models import OutboxJob
from hilo.runtime import Runtime, Tx
from hilo.settings import Settings

# The history spans the last week; a customer starts writing every 190 minutes, so the
# last ones wrote within the day (WhatsApp's 24-hour window is still open for them).
HISTORY_DAYS = 7
MINUTES_APART = 190
# The durable consumers (hilo.features.Background's "reactions", hilo.web.notifier's
# "notifications") start after the history: it is finished work, not news to react to.
CONSUMERS = ("reactions", "notifications")


def seed(settings: Settings, *, force: bool = False, contacts: int = 50) -> dict[str, Any]:
    """Seed the demo; a no-op on a database that already has contacts unless `force`."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    start = now - timedelta(days=HISTORY_DAYS)
    clock = FrozenClock(start)
    runtime = Runtime(settings, clock=clock)
    try:
        with runtime.db.read() as session:
            existing = session.execute(select(func.count(Contact.id))).scalar_one()
            seeded = any(is_demo(config) for config in session.execute(select(ChannelAccount.config)).scalars())
        if seeded:
            return {"skipped": True, "reason": "the demo is already seeded", "login": _login()}
        if existing and not force:
            return {"skipped": True, "reason": "the database already has contacts", "login": _login()}
        ids = _setup(runtime)
        names = [(n, "es") for n in SPANISH] + [(n, "en") for n in ENGLISH]
        rng.shuffle(names)
        for index, (name, locale) in enumerate(names[:contacts]):
            clock.set(start + timedelta(minutes=index * MINUTES_APART + rng.randint(0, 60)))
            _customer(runtime, clock, rng, ids, index, name, locale)
        with runtime.transaction() as tx:
            positions.skip_past(tx.session, CONSUMERS, tx.now)
        # Written after the consumers' positions: routing, SLA timers and rules react to these
        # when Hilo starts, as they would to messages that came in while it was stopped.
        for minutes_ago, (index, (kind, name, locale, text)) in zip((55, 40, 25, 10), enumerate(WAITING), strict=True):
            clock.set(now - timedelta(minutes=minutes_ago))
            _waiting(runtime, ids, contacts + index, kind, name, locale, text)
        return {
            "contacts": contacts + len(WAITING),
            "agents": len(AGENTS),
            "channels": len(ids["channels"]) + 1,
            "login": _login(),
            "demo_page": f"{settings.base_url}/demo/widget",
        }
    finally:
        runtime.close()


def demo_sign_in(settings: Settings) -> dict[str, str] | None:
    """The demo's sign-in when this database holds the demo and its password still works."""
    runtime = Runtime(settings)
    try:
        with runtime.db.read() as session:
            configs = session.execute(select(ChannelAccount.config)).scalars().all()
            if not any(is_demo(config) for config in configs):
                return None
            email, password = AGENTS[0][0], DEMO_PASSWORD
            hashed = session.execute(
                select(Agent.password_hash).where(Agent.email == email, Agent.active.is_(True))
            ).scalar()
        return {"email": email, "password": password} if verify_password(hashed, password) else None
    finally:
        runtime.close()


def _login() -> dict[str, str]:
    return {"email": AGENTS[0][0], "password": DEMO_PASSWORD}


def _setup(runtime: Runtime) -> dict[str, Any]:
    with runtime.transaction() as tx:
        agents = {}
        for email, name, role, locale in AGENTS:
            existing = tx.session.execute(select(Agent).where(Agent.email == email)).scalar()
            agents[email] = existing or agent_actions.create_agent(
                tx, email=email, name=name, password=DEMO_PASSWORD, role=role, locale=locale
            )
        spanish_agents = [agents["sofia@example.com"].id, agents["lucia@example.com"].id]
        support = _team(tx, "Soporte", "Atención general en español", spanish_agents)
        billing = _team(
            tx, "Billing", "Payments and invoices", [agents["james@example.com"].id, agents["noah@example.com"].id]
        )
        # Real accounts of each kind, sending through the built-in demo provider: replies go
        # out and show as delivered, and nothing leaves the machine.
        channels = {
            "whatsapp": channel_actions.create_channel_account(
                tx,
                "whatsapp",
                "WhatsApp +34 600 000 000",
                {
                    "phone_number_id": "100000000000001",
                    "access_token": "demo",
                    "app_secret": "demo",
                    "verify_token": "demo",
                    # Approved templates, as a sync from WhatsApp Manager would store them: what
                    # reaches a customer once WhatsApp's 24-hour window has closed.
                    "templates": WHATSAPP_TEMPLATES,
                },
                demo=True,
            ),
            "sms": channel_actions.create_channel_account(
                tx,
                "sms",
                "SMS +1 415 555 0100",
                {
                    "account_sid": "AC00000000000000000000000000000000",
                    "from_number": "+14155550100",
                    "auth_token": "demo",
                },
                demo=True,
            ),
            "email": channel_actions.create_channel_account(
                tx,
                "email",
                "soporte@example.com",
                {"address": "soporte@example.com", "smtp_host": "smtp.example.com", "smtp_port": 587},
                demo=True,
            ),
            "telegram": channel_actions.create_channel_account(
                tx,
                "telegram",
                "Telegram @HiloDemoBot",
                {"bot_token": "123456:demo", "secret_token": "demo"},
                demo=True,
            ),
            "api": channel_actions.create_channel_account(
                tx, "api", "Web shop", {"outbound_url": "https://shop.example.com/hilo"}, demo=True
            ),
        }
        admin = agents[AGENTS[0][0]]
        principal = Principal(admin.id, admin.email, admin.name, admin.role, admin.locale, frozenset())
        desk.set_up(tx, principal, {"support": support.id, "billing": billing.id})
        desk.widget_channel(tx)
        return {
            "agents": {k: v.id for k, v in agents.items()},
            "teams": [support.id, billing.id],
            "channels": {k: v.view() for k, v in channels.items()},
        }


def _team(tx: Tx, name: str, description: str, member_ids: list[int]) -> Team:
    """The demo's team of that name: the one the database has (`hilo demo --reset`), else a new one."""
    existing = tx.session.execute(select(Team).where(Team.name == name)).scalar()
    return existing or agent_actions.create_team(tx, name, description, member_ids)


def _ascii_slug(word: str) -> str:
    """Write `word` in lowercase ASCII letters: accents dropped (Lucía: lucia), other letters left out."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())


def _identity_for(kind: str, index: int, name: str, account_id: int) -> IdentityRef:
    slug = _ascii_slug(name.split()[0]) or "cliente"
    if kind in ("whatsapp", "sms"):
        return IdentityRef(IdentityKind.PHONE, f"+3460{index:07d}" if index % 2 else f"+1415555{index:04d}")
    if kind == "email":
        return IdentityRef(IdentityKind.EMAIL, f"{slug}.{index}@example.net")
    if kind == "telegram":
        return IdentityRef(IdentityKind.TELEGRAM, str(500000 + index))
    return IdentityRef(IdentityKind.API, f"{account_id}:customer-{index}")


def _customer(
    runtime: Runtime, clock: FrozenClock, rng: random.Random, ids: dict[str, Any], index: int, name: str, locale: str
) -> None:
    channels = ids["channels"]
    kinds = ["whatsapp", "email", "sms", "telegram", "api"]
    # Every third customer writes on two or three channels, all landing in one thread.
    used = rng.sample(kinds, 3 if index % 6 == 0 else 2) if index % 3 == 0 else [rng.choice(kinds)]
    if "sms" in used and "whatsapp" in used:
        used.remove("sms")  # the same phone number: shown as a channel switch, not a new identity
    topics = TOPICS_ES if locale == "es" else TOPICS_EN
    replies = REPLIES_ES if locale == "es" else REPLIES_EN
    first, follow_up, thanks = rng.choice(topics)
    texts = [first, follow_up, thanks]
    agent_ids = list(ids["agents"].values())
    conversation_id = None
    for step, text in enumerate(texts):
        kind = used[min(step, len(used) - 1)]
        account = channels[kind]
        ref = _identity_for(kind, index, name, account.id)
        # The customer gave the same e-mail on every channel: that is what links them.
        others = [] if kind == "email" else [_identity_for("email", index, name, account.id)]
        inbound = InboundMessage(
            provider_message_id=f"demo-{index}-{step}",
            sender=ref,
            other_identities=others,
            sender_name=name,
            text=text.format(n=10000 + index),
            locale=locale,
            subject=("Pedido" if locale == "es" else "Order") + f" #{10000 + index}" if kind == "email" else None,
        )
        with runtime.transaction() as tx:
            result = ingest_message(tx, account, inbound)
            conversation_id = result.conversation_id
        clock.advance(minutes=rng.randint(3, 40))
        if step < 2 or index % 4:
            agent_id = rng.choice(agent_ids)
            with runtime.transaction(agent_id) as tx:
                conversation = tx.session.get(Conversation, conversation_id)
                assert conversation is not None
                if conversation.assignee_id is None:
                    conv_actions.assign(
                        tx,
                        conversation,
                        agent_id=agent_id,
                        team_id=ids["teams"][0] if locale == "es" else ids["teams"][1],
                    )
                message = reply_actions.reply(
                    tx, conversation, replies[min(step, 2)].format(name=name.split()[0]), channel_account_id=account.id
                )
                # History: recorded as the demo provider took it back then, not sent again now.
                job_id = tx.session.execute(select(OutboxJob.id).where(OutboxJob.message_id == message.id)).scalar_one()
                status = rng.choice([DeliveryStatus.DELIVERED, DeliveryStatus.READ])
                record_sent(tx, job_id, SendResult(provider_message_id=f"demo:history-{message.id}", status=status))
            clock.advance(minutes=rng.randint(5, 120))
    with runtime.transaction() as tx:
        conversation = tx.session.get(Conversation, conversation_id)
        assert conversation is not None
        if index % 4 == 0:
            conv_actions.set_priority(tx, conversation, rng.choice(["high", "urgent", "medium"]))
        if index % 5 == 0:
            conv_actions.set_labels(tx, conversation, ["vip"] if index % 10 == 0 else ["refund"])
        if index % 3 == 1:
            conv_actions.set_status(tx, conversation, "resolved")
        elif index % 7 == 2:
            conv_actions.set_status(tx, conversation, "pending")


def _waiting(runtime: Runtime, ids: dict[str, Any], index: int, kind: str, name: str, locale: str, text: str) -> None:
    """A customer who wrote a moment ago and waits for an answer."""
    account = ids["channels"][kind]
    if kind in ("whatsapp", "sms"):
        # A Spanish mobile for the Spanish-speaking, a US one for the others.
        number = f"+3469{index:07d}" if locale == "es" else f"+1415555{index:04d}"
        ref = IdentityRef(IdentityKind.PHONE, number)
    else:
        ref = _identity_for(kind, index, name, account.id)
    inbound = InboundMessage(
        provider_message_id=f"demo-waiting-{index}",
        sender=ref,
        sender_name=name,
        text=text,
        locale=locale,
        subject="Factura" if kind == "email" else None,
    )
    with runtime.transaction() as tx:
        ingest_message(tx, account, inbound)
