"""The inbox data set: 1,000,000 conversations and 5,000,000 messages in PostgreSQL, made with SQL.

Generation runs once (several minutes) into the database `hilo_bench`, which later runs
reuse while it holds the right row counts. Distributions follow a support team's inbox:
most conversations resolved, recent ones still open, pending or snoozed; 48 agents in 8
teams; six channels; Spanish and English customers whose messages mix order numbers,
e-mail addresses and everyday words. Rows are inserted in time order, so one
conversation's messages are spread over the table as they are in production.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from common import HiloServer, create_database, database_exists, hilo_cli, hilo_env, pg_url, running_server, status

from hilo.db.migrate import upgrade

AGENTS = 50  # ids 1 (admin), 2 (supervisor), 3..50 (agents, six per team)
TEAMS = 8
TABLES = ("contacts", "identities", "conversations", "conversation_labels", "messages")

# Known values the benchmarks query for.
ADMIN_EMAIL = "admin@bench.example.com"
AGENT_EMAIL = "agent3@bench.example.com"  # agent 3, member of team 1
SEARCH_WORD = "reembolso"
SEARCH_PHRASE = '"tarjeta de crédito"'
SEARCH_EMAIL_CONTACT = 123_457  # the first contact from here on with an e-mail address is searched for

FIRST_ES = [
    "María", "José", "Carmen", "Javier", "Laura", "Pablo", "Elena", "Diego", "Paula", "Andrés", "Marta",
    "Sergio", "Isabel", "Raúl", "Lucía", "Adrián", "Cristina", "Hugo", "Sara", "Iván", "Natalia", "Óscar",
    "Beatriz", "Rubén", "Alicia", "Valentina", "Mateo", "Camila", "Santiago", "Ximena",
]  # fmt: skip
LAST_ES = [
    "García", "Fernández", "López", "Sánchez", "Gómez", "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero",
    "Navarro", "Torres", "Ramos", "Gil", "Serrano", "Molina", "Ortiz", "Delgado", "Castro", "Rubio",
    "Marín", "Sanz", "Iglesias", "Medina", "Garrido", "Herrera", "Vargas", "Rojas", "Mendoza", "Cruz",
]  # fmt: skip
FIRST_EN = [
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Ethan", "Sophia", "Mason", "Isabella", "Logan", "Mia", "Lucas",
    "Charlotte", "Henry", "Amelia", "Jack", "Harper", "Owen", "Ella", "Leo",
]  # fmt: skip
LAST_EN = [
    "Johnson", "Smith", "Brown", "Davis", "Miller", "Wilson", "Moore", "Taylor", "Anderson", "Thomas",
    "Jackson", "White", "Harris", "Martin", "Thompson", "Clark", "Lewis", "Walker", "Hall", "Young",
]  # fmt: skip
DOMAINS = ["gmail.com", "hotmail.es", "yahoo.com", "outlook.com", "empresa.mx", "correo.es", "icloud.com"]
LABELS = [
    "facturacion", "envio", "devolucion", "reembolso", "garantia", "urgente", "vip", "queja", "pedido",
    "cuenta", "billing", "shipping", "returns", "refund", "warranty", "complaint", "order", "account",
    "feedback", "spam",
]  # fmt: skip
TEAM_NAMES = ["Soporte", "Ventas", "Facturación", "Envíos", "Devoluciones", "Billing", "Technical", "VIP"]

# Customer and agent sentences; {order}, {email}, {name}, {tracking}, {amount} are filled in.
# "reembolso" and "tarjeta de crédito" appear in a known share of them (the search targets).
INBOUND_ES = [
    ("Hola, quería saber el estado de mi pedido {order}.", 12),
    ("No he recibido el reembolso del pedido {order}, ¿pueden revisarlo?", 2),
    ("Me cobraron dos veces en la tarjeta de crédito, necesito ayuda.", 1),
    ("El paquete llegó dañado y quiero devolverlo.", 5),
    ("¿Cuál es el horario de atención los fines de semana?", 4),
    ("Gracias por la ayuda, todo resuelto.", 8),
    ("Mi correo es {email}, escríbanme allí por favor.", 3),
    ("El número de seguimiento {tracking} no funciona.", 4),
    ("¿Puedo pagar con tarjeta de débito o solo con transferencia?", 2),
    ("Necesito cambiar la dirección de envío del pedido {order}.", 5),
    ("La talla no me queda bien, ¿cómo hago el cambio?", 4),
    ("Llevo tres días esperando una respuesta.", 3),
    ("¿Tienen disponible este producto en color azul?", 3),
    ("Quiero cancelar mi suscripción.", 3),
    ("La factura del mes pasado tiene un importe de {amount} euros que no reconozco.", 2),
    ("Sigo sin noticias de mi pedido, ¿me pueden llamar?", 3),
    ("Perfecto, muchas gracias.", 6),
    ("Buenas tardes, tengo un problema con mi cuenta.", 4),
]
INBOUND_EN = [
    ("Hi, I'm still waiting for my order {order} to arrive.", 12),
    ("Can I get a refund for order {order}? The size is wrong.", 2),
    ("My credit card was charged twice for the same order.", 1),
    ("The tracking number {tracking} doesn't work.", 4),
    ("Please update my shipping address, my email is {email}.", 3),
    ("Thanks, that solved it!", 8),
    ("Do you ship to Canada?", 3),
    ("I'd like to cancel my subscription.", 3),
    ("The invoice shows {amount} dollars but I was quoted less.", 2),
    ("Is this item back in stock soon?", 3),
    ("I can't log in to my account.", 4),
    ("Hello? Anyone there?", 3),
]
OUTBOUND_ES = [
    ("Hola {name}, gracias por escribirnos. Ya revisamos su pedido {order}.", 6),
    ("Hemos emitido el reembolso; lo verá en su tarjeta en 5 a 7 días.", 1),
    ("Le enviamos una etiqueta de devolución a su correo.", 3),
    ("Su pedido {order} salió hoy; el seguimiento es {tracking}.", 4),
    ("¿Nos confirma los últimos cuatro dígitos de la tarjeta de crédito?", 1),
    ("Quedamos atentos a cualquier otra consulta.", 5),
]
OUTBOUND_EN = [
    ("Hi {name}, thanks for reaching out. We checked order {order}.", 6),
    ("We issued the refund; you'll see it in 5-7 business days.", 1),
    ("We emailed you a return label.", 3),
    ("Your order {order} shipped today, tracking {tracking}.", 4),
    ("Anything else we can help with?", 5),
]
NOTES = [
    ("Cliente recurrente, ofrecer envío gratis.", 3),
    ("Checked with the warehouse: back in stock next week.", 3),
    ("Escalado a facturación por el reembolso pendiente.", 1),
    ("Possible fraud, do not refund without approval.", 1),
]
FILLER = [
    "por", "favor", "gracias", "urgente", "ayer", "hoy", "mañana", "semana", "pedido", "envío", "cliente",
    "producto", "cuenta", "pago", "factura", "please", "thanks", "today", "yesterday", "tomorrow", "week",
    "order", "shipping", "customer", "product", "account", "payment", "invoice", "caja", "tienda", "precio",
    "descuento", "oferta", "cupón", "regalo", "tienda", "online", "app", "web", "móvil", "teléfono", "correo",
    "box", "store", "price", "discount", "offer", "coupon", "gift", "online", "app", "web", "mobile", "phone",
    "email",
]  # fmt: skip


SENTENCES_PER_KIND = 4000
SENTENCE_BASE = {"in_es": 0, "in_en": 4000, "out_es": 8000, "out_en": 12000, "note": 16000}


@dataclass(frozen=True)
class DataSet:
    """A data set size: the full one (1M conversations) or a small one for --quick runs."""

    database: str
    conversations: int

    @property
    def contacts(self) -> int:
        # 30% of contacts came back after their first conversation was resolved.
        return self.conversations * 7 // 10

    @property
    def messages(self) -> int:
        return self.conversations * 5

    @property
    def marker(self) -> str:
        return f"hilo bench data v1: {self.conversations} conversations, {self.messages} messages"


FULL = DataSet("hilo_bench", 1_000_000)
QUICK = DataSet("hilo_bench_quick", 50_000)


def _h(expr: str, salt: int) -> str:
    """A deterministic pseudo-random non-negative bigint from `expr` (repeatable runs)."""
    return f"abs(hashint8(({expr})::int8 * 1009 + {salt}))"


def _channel_case(contact: str) -> str:
    """Channel account of a contact: e-mail 35%, WhatsApp 30%, SMS 5%, Telegram 10%, Messenger 10%, API 10%."""
    bucket = f"({_h(contact, 11)} % 100)"
    return (
        f"(CASE WHEN {bucket} < 35 THEN 2 WHEN {bucket} < 65 THEN 3 WHEN {bucket} < 70 THEN 4 "
        f"WHEN {bucket} < 80 THEN 5 WHEN {bucket} < 90 THEN 6 ELSE 1 END)"
    )


def _spanish(contact: str) -> str:
    return f"({_h(contact, 12)} % 100 < 65)"


def _sentences(rng: random.Random) -> list[tuple[int, str, str]]:
    """(id, kind, text) rows: 4,000 variants of each kind of sentence."""
    rows: list[tuple[int, str, str]] = []
    kinds: list[tuple[str, list[tuple[str, int]], list[str], list[str]]] = [
        ("in_es", INBOUND_ES, FIRST_ES, LAST_ES),
        ("in_en", INBOUND_EN, FIRST_EN, LAST_EN),
        ("out_es", OUTBOUND_ES, FIRST_ES, LAST_ES),
        ("out_en", OUTBOUND_EN, FIRST_EN, LAST_EN),
        ("note", NOTES, FIRST_ES, LAST_ES),
    ]
    for kind, templates, firsts, lasts in kinds:
        texts = [t for t, _w in templates]
        weights = [w for _t, w in templates]
        for _ in range(SENTENCES_PER_KIND):
            first = rng.choice(firsts)
            last = rng.choice(lasts)
            text = rng.choices(texts, weights)[0].format(
                order=f"{rng.randint(100000, 999999)}",
                email=f"{first.lower()}.{last.lower()}{rng.randint(1, 999)}@{rng.choice(DOMAINS)}",
                name=first,
                tracking=f"ES{rng.randint(10**9, 10**10 - 1)}",
                amount=f"{rng.randint(5, 900)},{rng.randint(0, 99):02d}",
            )
            extra = rng.randint(0, 6)
            if extra:
                text += " " + " ".join(rng.choice(FILLER) for _ in range(extra))
            rows.append((len(rows) + 1, kind, text))
    return rows


def _array(values: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _steps(data: DataSet) -> list[tuple[str, str]]:
    base = "date_trunc('hour', now()) - interval '730 days'"
    channel = _channel_case("g")
    spanish = _spanish("g")
    first = (
        f"(CASE WHEN {spanish} THEN ({_array(FIRST_ES)})[1 + {_h('g', 1)} % {len(FIRST_ES)}] "
        f"ELSE ({_array(FIRST_EN)})[1 + {_h('g', 1)} % {len(FIRST_EN)}] END)"
    )
    last = (
        f"(CASE WHEN {spanish} THEN ({_array(LAST_ES)})[1 + {_h('g', 2)} % {len(LAST_ES)}] "
        f"ELSE ({_array(LAST_EN)})[1 + {_h('g', 2)} % {len(LAST_EN)}] END)"
    )
    plain = "translate(lower({}), 'áéíóúñüÁÉÍÓÚÑ', 'aeiounuaeioun')"
    email = f"{plain.format(first)} || '.' || {plain.format(last)} || '.' || g || '@' || " + (
        f"({_array(DOMAINS)})[1 + {_h('g', 3)} % {len(DOMAINS)}]"
    )
    contacts, returning, settled = data.contacts, data.conversations * 3 // 10, data.conversations * 8 // 10
    contact_of = f"(CASE WHEN c <= {contacts} THEN c ELSE c - {contacts} END)"
    bucket = f"({_h('c', 21)} % 100)"
    long_one = f"({_h('c', 22)} % 50 = 0)"
    count = f"(CASE WHEN {long_one} THEN 20 + {_h('c', 23)} % 40 ELSE 1 + {_h('c', 23)} % 8 END)"
    status = (
        f"(CASE WHEN c <= {returning} THEN 'resolved' "
        f"WHEN c <= {settled} THEN (CASE WHEN {bucket} = 0 THEN 'open' ELSE 'resolved' END) "
        f"WHEN {bucket} < 30 THEN 'open' WHEN {bucket} < 42 THEN 'pending' "
        f"WHEN {bucket} < 47 THEN 'snoozed' ELSE 'resolved' END)"
    )
    team = f"(CASE WHEN {_h('c', 24)} % 10 = 0 THEN NULL ELSE 1 + {_h('c', 25)} % {TEAMS} END)"
    team_agent = f"(3 + (team_id - 1) + {TEAMS} * ({_h('id', 26)} % 6))"
    any_agent = f"(3 + {_h('id', 26)} % 48)"
    priority = (
        f"(CASE WHEN {_h('c', 27)} % 100 < 70 THEN 'none' WHEN {_h('c', 27)} % 100 < 85 THEN 'low' "
        f"WHEN {_h('c', 27)} % 100 < 95 THEN 'medium' WHEN {_h('c', 27)} % 100 < 99 THEN 'high' ELSE 'urgent' END)"
    )
    message_kind = (
        f"(CASE WHEN k % 2 = 1 THEN 'inbound' WHEN {_h('c.id * 100 + k', 31)} % 10 = 0 THEN 'note' ELSE 'outbound' END)"
    )
    sentence = (
        "(CASE WHEN direction = 'note' THEN {note} "
        "WHEN direction = 'inbound' AND spanish THEN {in_es} WHEN direction = 'inbound' THEN {in_en} "
        "WHEN spanish THEN {out_es} ELSE {out_en} END) + 1 + {pick} % {n}"
    ).format(**SENTENCE_BASE, pick=_h("id_hint", 32), n=SENTENCES_PER_KIND)
    return [
        (
            "agents",
            "INSERT INTO agents (id, email, name, password_hash, role, locale, active, created_at, updated_at) "
            "SELECT g, CASE g WHEN 1 THEN 'admin@bench.example.com' ELSE 'agent' || g || '@bench.example.com' END, "
            "'Agent ' || g, '!', CASE g WHEN 1 THEN 'admin' WHEN 2 THEN 'supervisor' ELSE 'agent' END, "
            f"CASE WHEN g % 3 = 0 THEN 'en' ELSE 'es' END, true, {base}, {base} "
            f"FROM generate_series(1, {AGENTS}) g",
        ),
        (
            "teams",
            f"INSERT INTO teams (id, name, created_at) SELECT g, ({_array(TEAM_NAMES)})[g], {base} "
            f"FROM generate_series(1, {TEAMS}) g; "
            "INSERT INTO team_members (team_id, agent_id) "
            f"SELECT 1 + (g - 3) % {TEAMS}, g FROM generate_series(3, {AGENTS}) g",
        ),
        (
            "channel accounts",
            "INSERT INTO channel_accounts (id, kind, name, enabled, config, secrets, created_at, updated_at) "
            "SELECT g, (ARRAY['api','email','whatsapp','sms','telegram','messenger'])[g], "
            "(ARRAY['Tienda','Soporte e-mail','WhatsApp','SMS','Telegram','Messenger'])[g], true, '{}', '{}', "
            f"{base}, {base} FROM generate_series(1, 6) g",
        ),
        (
            "labels",
            f"INSERT INTO labels (id, name, color) SELECT g, ({_array(LABELS)})[g], '#6b7280' "
            f"FROM generate_series(1, {len(LABELS)}) g",
        ),
        (
            "contacts",
            "INSERT INTO contacts (id, name, locale, custom_attributes, created_at, updated_at) "
            f"SELECT g, CASE WHEN {_h('g', 4)} % 10 = 0 THEN NULL ELSE {first} || ' ' || {last} END, "
            f"CASE WHEN {spanish} THEN 'es' ELSE 'en' END, '{{}}', "
            f"{base} + g * interval '63 seconds', {base} + g * interval '63 seconds' "
            f"FROM generate_series(1, {contacts}) g",
        ),
        (
            "identities",
            "INSERT INTO identities (id, contact_id, kind, value, verified, opted_out, created_at) "
            f"SELECT g, g, (ARRAY['api','email','phone','phone','telegram','messenger'])[{channel}], "
            f"(CASE {channel} WHEN 1 THEN '1:ext-' || g WHEN 2 THEN {email} "
            f"WHEN 5 THEN (100000000 + g)::text WHEN 6 THEN 'psid-' || (g::int8 * 7919) "
            f"ELSE CASE WHEN {spanish} THEN '+34' || (600000000 + g) ELSE '+1' || (2025550000 + g) END END), "
            f"{channel} = 2 AND {_h('g', 5)} % 2 = 0, false, {base} + g * interval '63 seconds' "
            f"FROM generate_series(1, {contacts}) g; "
            "INSERT INTO identities (id, contact_id, kind, value, verified, opted_out, created_at) "
            f"SELECT {contacts} + g, g, 'email', {email}, false, false, {base} + g * interval '63 seconds' "
            f"FROM generate_series(1, {contacts}) g WHERE {channel} <> 2 AND {_h('g', 6)} % 10 < 3",
        ),
        (
            "conversations",
            "INSERT INTO conversations (id, contact_id, status, priority, team_id, subject, "
            "last_channel_account_id, message_count, created_at, updated_at, last_message_at, merged_into_id) "
            f"SELECT c, {contact_of}, {status}, {priority}, {team}, NULL, "
            f"{_channel_case(contact_of)}, {count}, {base} + c * interval '63 seconds', "
            f"{base} + c * interval '63 seconds', {base} + c * interval '63 seconds', NULL "
            f"FROM generate_series(1, {data.conversations}) c",
        ),
        (
            "exact message count",
            # Move the total to exactly data.messages, one message at a time over many conversations.
            "WITH total AS (SELECT sum(message_count) AS n FROM conversations), "
            "pick AS (SELECT id FROM conversations, total WHERE message_count > 1 "
            f"ORDER BY id LIMIT (SELECT abs({data.messages} - n) FROM total)) "
            f"UPDATE conversations SET message_count = message_count + sign({data.messages} - (SELECT n FROM total)) "
            "WHERE id IN (SELECT id FROM pick)",
        ),
        (
            "conversation details",
            f"UPDATE conversations SET "
            f"last_message_at = created_at + (message_count - 1) * interval '7 minutes', "
            f"updated_at = created_at + (message_count - 1) * interval '7 minutes', "
            f"last_inbound_at = created_at + ((message_count - 1) / 2 * 2) * interval '7 minutes', "
            f"first_response_at = CASE WHEN message_count > 1 THEN created_at + interval '7 minutes' END, "
            f"resolved_at = CASE WHEN status = 'resolved' "
            f"THEN created_at + message_count * interval '7 minutes' END, "
            f"waiting_since = CASE WHEN status <> 'resolved' AND message_count % 2 = 1 "
            f"THEN created_at + (message_count - 1) * interval '7 minutes' END, "
            f"snoozed_until = CASE WHEN status = 'snoozed' THEN now() + interval '1 day' END, "
            f"assignee_id = CASE WHEN status <> 'resolved' AND {_h('id', 28)} % 10 < 3 THEN NULL "
            f"WHEN team_id IS NULL THEN {any_agent} ELSE {team_agent} END, "
            f"subject = CASE WHEN last_channel_account_id = 2 THEN 'Consulta ' || id END",
        ),
        (
            "conversation labels",
            "INSERT INTO conversation_labels (conversation_id, label_id) "
            f"SELECT id, 1 + {_h('id', 41)} % {len(LABELS)} FROM conversations WHERE {_h('id', 42)} % 10 < 3 "
            "UNION "
            f"SELECT id, 1 + {_h('id', 43)} % {len(LABELS)} FROM conversations WHERE {_h('id', 42)} % 10 = 0",
        ),
        (
            "messages",
            "INSERT INTO messages (conversation_id, contact_id, channel_account_id, identity_id, direction, kind, "
            "author_agent_id, body, data, provider_message_id, status, auto_generated, created_at, sent_at) "
            "SELECT m.conversation_id, m.contact_id, "
            "CASE WHEN m.direction = 'note' THEN NULL ELSE m.channel END, "
            "CASE WHEN m.direction = 'note' THEN NULL ELSE m.contact_id END, m.direction, 'text', "
            "CASE WHEN m.direction = 'inbound' THEN NULL ELSE coalesce(m.assignee_id, 3) END, s.text, '{}', "
            "CASE WHEN m.direction = 'inbound' THEN 'in-' || m.conversation_id || '-' || m.k "
            "WHEN m.direction = 'outbound' THEN 'out-' || m.conversation_id || '-' || m.k END, "
            "CASE m.direction WHEN 'inbound' THEN 'received' WHEN 'note' THEN 'received' ELSE 'read' END, "
            "false, m.created_at, CASE WHEN m.direction = 'outbound' THEN m.created_at END "
            "FROM (SELECT c.id AS conversation_id, c.contact_id, c.last_channel_account_id AS channel, "
            "c.assignee_id, k, c.created_at + (k - 1) * interval '7 minutes' AS created_at, "
            f"{message_kind} AS direction, {_spanish('c.contact_id')} AS spanish, "
            "c.id * 100 + k AS id_hint "
            "FROM conversations c CROSS JOIN LATERAL generate_series(1, c.message_count) k) m "
            f"JOIN bench_sentences s ON s.id = {sentence} "
            "ORDER BY m.created_at, m.conversation_id, m.k",
        ),
    ]


def _plain_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """Indexes of the bulk tables that no constraint owns: dropped for the load, rebuilt after."""
    return [
        (row[0], row[1])
        for row in conn.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            (list(TABLES),),
        ).fetchall()
    ]


def is_ready(data: DataSet) -> bool:
    """Whether the database already holds the complete data set."""
    if not database_exists(data.database):
        return False
    with psycopg.connect(pg_url(data.database)) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (data.database,)
        ).fetchone()
        if not row or row[0] != data.marker:
            return False
        conversations = conn.execute("SELECT count(*) FROM conversations").fetchone()
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()
    return bool(conversations and messages and conversations[0] == data.conversations and messages[0] == data.messages)


def ensure(data: DataSet) -> dict[str, Any]:
    """Make sure the database holds the data set (generating it if needed); return how long that took."""
    url = pg_url(data.database)
    if is_ready(data):
        upgrade(url)  # later migrations of other features apply to the kept data set
        status(f"{data.database} already holds the data set; reusing it")
        return {"generated": False}
    status(f"generating {data.database}: {data.conversations} conversations, {data.messages} messages")
    create_database(data.database)
    upgrade(url)
    timings: dict[str, float] = {}
    rng = random.Random(20260302)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET synchronous_commit = off")
        # Bulk load: foreign-key triggers off (the generator keeps references valid) and plain
        # indexes rebuilt once at the end instead of maintained row by row.
        conn.execute("SET session_replication_role = replica")
        indexes = _plain_indexes(conn)
        for name, _definition in indexes:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("CREATE TEMP TABLE bench_sentences (id int PRIMARY KEY, kind text, text text)")
        with conn.cursor() as cursor, cursor.copy("COPY bench_sentences (id, kind, text) FROM STDIN") as copy:
            for row in _sentences(rng):
                copy.write_row(row)
        for name, sql in _steps(data):
            started = time.monotonic()
            with conn.transaction():
                conn.execute(sql)
            timings[name] = round(time.monotonic() - started, 1)
            status(f"  {name}: {timings[name]} s")
        started = time.monotonic()
        for name, definition in indexes:
            conn.execute(definition)
            status(f"  index {name} rebuilt")
        timings["indexes"] = round(time.monotonic() - started, 1)
        conn.execute("SET session_replication_role = origin")
        for table in ("agents", "teams", "channel_accounts", "labels", *TABLES):
            if table != "conversation_labels":
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        started = time.monotonic()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum analyze"] = round(time.monotonic() - started, 1)
        conn.execute(f"COMMENT ON DATABASE {data.database} IS '{data.marker}'")
    status(f"{data.database} ready in {round(sum(timings.values()))} s")
    return {"generated": True, "timings_s": timings}


def search_email(data: DataSet) -> str:
    """The e-mail address of the contact the search benchmark looks for."""
    start = min(SEARCH_EMAIL_CONTACT, data.contacts // 2)
    with psycopg.connect(pg_url(data.database)) as conn:
        row = conn.execute(
            "SELECT value FROM identities WHERE contact_id >= %s AND kind = 'email' ORDER BY contact_id, id LIMIT 1",
            (start,),
        ).fetchone()
    if row is None:
        raise RuntimeError(f"no e-mail identity in {data.database}")
    return str(row[0])


@dataclass
class Served:
    """A `hilo serve` process on the data set, with an admin's and an agent's API tokens."""

    server: HiloServer
    env: dict[str, str]
    admin_token: str
    agent_token: str


@contextmanager
def served(data: DataSet, work: Path) -> Iterator[Served]:
    env = hilo_env(pg_url(data.database), work / "data")
    admin = hilo_cli(env, "tokens", "create", "--email", ADMIN_EMAIL, "--name", "bench")["token"]
    agent = hilo_cli(env, "tokens", "create", "--email", AGENT_EMAIL, "--name", "bench")["token"]
    with running_server(env, work / "server.log") as server:
        yield Served(server, env, admin, agent)


if __name__ == "__main__":
    import sys

    print(ensure(QUICK if "--quick" in sys.argv else FULL))
