"""The demo's desk set-up: business hours, SLA policies, canned responses, macros, a rule, the chat widget.

A shop in Spain that sells trainers online, with a Spanish-speaking support team and an
English-speaking billing team: the same desk the demo's customers write to. Everything is
written through the features' own actions, as an administrator's pages would.
"""

from __future__ import annotations

from typing import Any

from hilo.agents.access import Principal
from hilo.automation import actions as automation
from hilo.channels import actions as channel_actions
from hilo.channels.models import ChannelAccount
from hilo.hours import calendars
from hilo.routing import sla
from hilo.runtime import Tx

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")

CANNED = [
    (
        "saludo",
        "Saludo",
        "¡Hola {{contact.first_name|}}! Soy {{agent.first_name}}, del equipo de atención. ¿En qué puedo ayudarte?",
        "Hi {{contact.first_name|there}}! I'm {{agent.first_name}} from the support team. How can I help?",
    ),
    (
        "envio",
        "Estado del envío",
        "He revisado tu pedido: ya ha salido del almacén y llegará en 24-48 horas laborables. "
        "Te llegará un SMS con el seguimiento.",
        "I've checked your order: it has left the warehouse and will arrive within 1-2 working days. "
        "You'll get a text with the tracking link.",
    ),
    (
        "devolucion",
        "Cambio o devolución",
        "Puedes cambiar o devolver tu compra en 30 días. Te enviamos ahora la etiqueta de devolución "
        "por correo; solo tienes que pegarla en la caja y dejarla en cualquier punto de recogida.",
        "You can exchange or return your purchase within 30 days. We're e-mailing you the return label "
        "now: stick it on the box and drop it at any collection point.",
    ),
    (
        "factura",
        "Factura",
        "Te enviamos la factura por correo en unos minutos. Si la necesitas a nombre de una empresa, "
        "dinos la razón social y el CIF.",
        "We'll e-mail you the invoice in a few minutes. If you need it in a company's name, send us "
        "the company name and tax id.",
    ),
    (
        "despedida",
        "Despedida",
        "Gracias por escribirnos, {{contact.first_name|}}. ¡Que tengas un buen día!",
        "Thanks for writing to us, {{contact.first_name|}}. Have a great day!",
    ),
]


def set_up(tx: Tx, admin: Principal, teams: dict[str, int]) -> dict[str, Any]:
    """Create the desk's settings; returns the ids the rest of the demo needs."""
    hours = calendars.save(
        tx,
        None,
        {
            "name": "Horario de oficina (Madrid)",
            "timezone": "Europe/Madrid",
            # The Spanish split day: mornings and afternoons, and Saturday mornings.
            "periods": {
                **{day: [["09:00", "14:00"], ["15:00", "19:00"]] for day in WEEKDAYS},
                "sat": [["10:00", "14:00"]],
            },
            "holiday_country": "ES",
            "holiday_subdivision": "MD",
            "out_of_office_message": {
                "es": "Ahora estamos cerrados. Te respondemos en cuanto abramos (L-V 9:00-19:00, S 10:00-14:00).",
                "en": "We're closed right now. We'll answer as soon as we open (Mon-Fri 9:00-19:00, Sat 10:00-14:00).",
            },
            "is_default": True,
        },
    )
    sla.save_policy(
        tx,
        None,
        {
            "name": "Urgente",
            "position": 0,
            "conditions": {"priorities": ["urgent", "high"]},
            "first_response_seconds": 15 * 60,
            "next_response_seconds": 60 * 60,
            "resolution_seconds": 8 * 3600,
            "business_hours_id": hours.id,
        },
    )
    sla.save_policy(
        tx,
        None,
        {
            "name": "Estándar",
            "position": 10,
            "first_response_seconds": 2 * 3600,
            "next_response_seconds": 4 * 3600,
            "resolution_seconds": 3 * 24 * 3600,
            "business_hours_id": hours.id,
        },
    )
    canned = {
        shortcut: automation.save_canned(
            tx, None, {"shortcut": shortcut, "title": title, "body": body, "translations": {"en": english}}
        ).id
        for shortcut, title, body, english in CANNED
    }
    automation.save_macro(
        tx,
        None,
        admin,
        {
            "name": "Cerrar con agradecimiento",
            "shared": True,
            "actions": [
                {"type": "reply", "canned_response_id": canned["despedida"]},
                {"type": "resolve"},
            ],
        },
    )
    automation.save_macro(
        tx,
        None,
        admin,
        {
            "name": "Pasar a facturación",
            "shared": True,
            "actions": [
                {"type": "add_labels", "labels": ["facturación"]},
                {"type": "assign_team", "team_id": teams["billing"]},
                {"type": "add_note", "body": "Pasado a facturación por {{agent.name}}."},
            ],
        },
    )
    automation.save_rule(
        tx,
        None,
        {
            "name": "Facturas y reembolsos a facturación",
            "event": "message.received",
            "conditions": {
                "all": [{"field": "message.text", "op": "matches", "value": r"factura|reembolso|invoice|refund"}]
            },
            "actions": [
                {"type": "add_labels", "labels": ["facturación"]},
                {"type": "assign_team", "team_id": teams["billing"]},
            ],
            "position": 10,
        },
    )
    return {"business_hours_id": hours.id, "canned": canned}


def widget_channel(tx: Tx) -> ChannelAccount:
    """The shop's chat widget, the one the demo page (/demo/widget) embeds."""
    return channel_actions.create_channel_account(
        tx,
        "widget",
        "Chat de la tienda",
        {
            "title": '{"es": "Tienda Hilo · Ayuda", "en": "Hilo Shop · Help"}',
            "greeting": '{"es": "¡Hola! ¿En qué podemos ayudarte?", "en": "Hi! How can we help?"}',
            "reply_time": "minutes",
            "business_hours": '{"es": "L-V 9:00-19:00, S 10:00-14:00", "en": "Mon-Fri 9:00-19:00, Sat 10:00-14:00"}',
            "color": "#0f766e",
        },
        demo=True,
    )
