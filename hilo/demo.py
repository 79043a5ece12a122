"""Demo data: a small support team and about 50 customers writing in Spanish and English.

Everything goes through the actions layer, exactly as real traffic would: several
customers write on two or three channels and their messages land in one thread.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from hilo.agents import actions as agent_actions
from hilo.agents.models import Agent
from hilo.channels import actions as channel_actions
from hilo.channels.base import IdentityKind, IdentityRef, InboundMessage
from hilo.clock import FrozenClock
from hilo.contacts.models import Contact
from hilo.conversations import actions as conv_actions
from hilo.conversations.models import Conversation
from hilo.ingest.deliveries import ingest_message
from hilo.outbox import reply as reply_actions
from hilo.outbox.models import OutboxJob
from hilo.runtime import Runtime
from hilo.settings import Settings

DEMO_PASSWORD = "hilo-demo-password"

AGENTS = [
    ("admin@example.com", "Alba Admin", "admin", "es"),
    ("sofia@example.com", "Sofía Martín", "supervisor", "es"),
    ("james@example.com", "James Carter", "agent", "en"),
    ("lucia@example.com", "Lucía Romero", "agent", "es"),
    ("noah@example.com", "Noah Williams", "agent", "en"),
]

SPANISH = [
    "María García",
    "José Fernández",
    "Carmen López",
    "Javier Sánchez",
    "Laura Gómez",
    "Pablo Díaz",
    "Elena Moreno",
    "Diego Muñoz",
    "Paula Álvarez",
    "Andrés Romero",
    "Marta Navarro",
    "Sergio Torres",
    "Isabel Ramos",
    "Raúl Gil",
    "Lucía Serrano",
    "Adrián Molina",
    "Cristina Ortiz",
    "Hugo Delgado",
    "Sara Castro",
    "Iván Rubio",
    "Natalia Marín",
    "Óscar Sanz",
    "Beatriz Iglesias",
    "Rubén Medina",
    "Alicia Garrido",
]
ENGLISH = [
    "Emma Johnson",
    "Liam Smith",
    "Olivia Brown",
    "Noah Davis",
    "Ava Miller",
    "Ethan Wilson",
    "Sophia Moore",
    "Mason Taylor",
    "Isabella Anderson",
    "Logan Thomas",
    "Mia Jackson",
    "Lucas White",
    "Charlotte Harris",
    "Henry Martin",
    "Amelia Thompson",
    "Jack Garcia",
    "Harper Martinez",
    "Owen Robinson",
    "Evelyn Clark",
    "Leo Rodriguez",
    "Abigail Lewis",
    "Samuel Lee",
    "Emily Walker",
    "Daniel Hall",
    "Grace Allen",
]

TOPICS_ES = [
    (
        "Hola, mi pedido #{n} no ha llegado todavía. ¿Podéis revisarlo?",
        "¿Hay novedades sobre el envío?",
        "Gracias, ya lo he recibido.",
    ),
    (
        "Buenas, quiero cambiar la talla de unas zapatillas.",
        "Os mando una foto de la etiqueta.",
        "Perfecto, espero la etiqueta de devolución.",
    ),
    (
        "No puedo iniciar sesión en mi cuenta, me dice contraseña incorrecta.",
        "Ya probé a restablecerla.",
        "Ahora funciona, ¡gracias!",
    ),
    (
        "¿Tenéis factura para la compra del martes?",
        "Necesito el CIF de la empresa en la factura.",
        "Recibida, muchas gracias.",
    ),
]
TOPICS_EN = [
    ("Hi, my order #{n} still hasn't arrived. Can you check?", "Any update on the delivery?", "Got it today, thanks!"),
    (
        "I was charged twice for my subscription this month.",
        "Here is a screenshot of my bank statement.",
        "Refund received, thank you.",
    ),
    ("How do I change the shipping address on an open order?", "It's for order #{n}.", "Great, that worked."),
    ("The app crashes when I open the camera scanner.", "I'm on Android 14, version 3.2.1.", "The update fixed it."),
]
REPLIES_ES = [
    "Hola {name}, lo revisamos ahora mismo.",
    "Gracias por la información, {name}. Ya está solucionado.",
    "¡Un placer ayudarte!",
]
REPLIES_EN = ["Hi {name}, we're looking into it right now.", "Thanks {name}, that's sorted now.", "Happy to help!"]


def seed(settings: Settings, *, force: bool = False, contacts: int = 50) -> dict[str, Any]:
    """Seed the demo; a no-op on a database that already has contacts unless `force`."""
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=10)
    clock = FrozenClock(start)
    runtime = Runtime(settings, clock=clock)
    try:
        with runtime.db.read() as session:
            existing = session.execute(select(func.count(Contact.id))).scalar_one()
        if existing and not force:
            return {"skipped": True, "reason": "the database already has contacts", "login": _login()}
        ids = _setup(runtime)
        names = [(n, "es") for n in SPANISH] + [(n, "en") for n in ENGLISH]
        rng.shuffle(names)
        for index, (name, locale) in enumerate(names[:contacts]):
            clock.set(start + timedelta(minutes=index * 250 + rng.randint(0, 60)))
            _customer(runtime, clock, rng, ids, index, name, locale)
        return {"contacts": contacts, "agents": len(AGENTS), "channels": len(ids["channels"]), "login": _login()}
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
        support = agent_actions.create_team(
            tx,
            "Soporte",
            "Atención general en español",
            [agents["sofia@example.com"].id, agents["lucia@example.com"].id],
        )
        billing = agent_actions.create_team(
            tx, "Billing", "Payments and invoices", [agents["james@example.com"].id, agents["noah@example.com"].id]
        )
        # Demo accounts point at example hosts: replies are queued and shown as delivered,
        # nothing leaves the machine (the demo marks their outbox jobs done).
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
                },
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
            ),
            "email": channel_actions.create_channel_account(
                tx,
                "email",
                "soporte@example.com",
                {"address": "soporte@example.com", "smtp_host": "smtp.example.com", "smtp_port": 587},
            ),
            "telegram": channel_actions.create_channel_account(
                tx, "telegram", "Telegram @HiloDemoBot", {"bot_token": "123456:demo", "secret_token": "demo"}
            ),
            "api": channel_actions.create_channel_account(
                tx, "api", "Web shop", {"outbound_url": "https://shop.example.com/hilo"}
            ),
        }
        return {
            "agents": {k: v.id for k, v in agents.items()},
            "teams": [support.id, billing.id],
            "channels": {k: v.view() for k, v in channels.items()},
        }


def _identity_for(kind: str, index: int, name: str, account_id: int) -> IdentityRef:
    slug = name.lower().split()[0].encode("ascii", "ignore").decode() or "cliente"
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
                # Demo sends have no provider to reach: mark them delivered as a provider would.
                message.status = rng.choice(["delivered", "read"])
                message.provider_message_id = f"demo-out-{message.id}"
                tx.session.execute(update(OutboxJob).where(OutboxJob.message_id == message.id).values(state="done"))
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
