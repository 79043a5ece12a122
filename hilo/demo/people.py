"""Who the demo's desk is: its agents, its customers and what they write about."""

from __future__ import annotations

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

# Customers writing in the last hour, not answered yet: what an agent trying the demo
# answers first. (channel kind, name, locale, text)
WAITING = [
    (
        "whatsapp",
        "Nerea Vidal",
        "es",
        "Hola, ¿podéis confirmar si mi pedido #10480 sale hoy? Lo necesito para el sábado.",
    ),
    (
        "telegram",
        "Tomás Herrera",
        "es",
        "Buenas, las zapatillas que compré me quedan pequeñas. ¿Puedo cambiarlas por un 43?",
    ),
    ("email", "Irene Pastor", "es", "Hola, necesito la factura del pedido #10477 a nombre de mi empresa. Gracias."),
    ("sms", "Kevin O'Brien", "en", "Hi, I got a text saying my parcel is delayed. Is there a new delivery date?"),
]

# The demo WhatsApp number's approved message templates (Meta's format: name, language,
# category, components).
WHATSAPP_TEMPLATES = [
    {
        "name": "seguimiento_consulta",
        "language": "es",
        "category": "UTILITY",
        "components": [
            {
                "type": "BODY",
                "text": "Hola {{1}}, te escribimos de Tienda Hilo sobre tu consulta. ¿Podemos ayudarte en algo más?",
            }
        ],
    },
    {
        "name": "order_follow_up",
        "language": "en",
        "category": "UTILITY",
        "components": [
            {"type": "BODY", "text": "Hi {{1}}, this is Hilo Shop about your question. Can we help with anything else?"}
        ],
    },
]
