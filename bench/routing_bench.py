"""Routing, SLA and automation benchmark on PostgreSQL, in a scratch database made with SQL.

Three figures, each measured in-process through the same action functions the engine runs:

1. Routing decision: 200 agents online in one team (two open chats each, room for ten
   chats and no e-mail), 10,000 e-mails already queued. Each of 1,000 fresh conversations is routed in
   its own transaction; two figures per decision: the decision itself (`routing.decide`:
   load the conversation, lock the team, choose the agent by every candidate's load, kept
   as counters on the agents' routing rows) and
   the whole of it with the assignment carried out and committed (`routing.carry_out`:
   conversation updated, timeline line, events, commit). Both strategies that read every
   candidate's load (least loaded, round robin) are timed, 500 conversations each.
2. SLA evaluation pass over 1,000,000 open conversations, each with a running first-
   response timer: a pass when nothing is due (the common case, every few seconds), and
   a pass that records 1,000 warnings/breaches (what one pass costs per due timer).
3. Rule evaluation per inbound message with 100 active rules: gather the conversation's
   facts once, test the 100 rules (one matches and adds a label), in one transaction.

The database `hilo_bench_routing` is created, filled with generate_series and dropped.

    .venv/bin/python bench/routing_bench.py [--conversations 1000000] [--keep]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from common import counting_statements, create_database, drop_database, latency_summary, ms, status, write_result
from sqlalchemy import event

from hilo.automation.rules import AutomationHandlers
from hilo.clock import FrozenClock
from hilo.consumers.engine import Engine
from hilo.db.migrate import upgrade
from hilo.routing import actions as routing
from hilo.routing import sla
from hilo.runtime import Runtime
from hilo.settings import load_settings

DATABASE = "hilo_bench_routing"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
AGENTS = 200
LOADED = 2 * AGENTS  # conversations 1..400: two open chats per agent
QUEUED = 10_000  # conversations 401..10,400: e-mails waiting in the team's queue (nobody takes e-mail)
FRESH = 1_000  # conversations 10,401..11,400: to route, timed
WARMUP = 50
RULES = 100
RULE_MESSAGES = 500
DUE_EVERY = 1_000  # one timer in this many is due at NOW


def generate(url: str, total: int) -> dict[str, float]:
    """Fill the scratch database; return how long each step took."""
    first_fresh = LOADED + QUEUED + 1
    last_fresh = LOADED + QUEUED + FRESH
    steps = {
        "agents": [
            """INSERT INTO agents (id, email, name, password_hash, role, locale, active, created_at, updated_at)
               SELECT g, 'agent' || g || '@bench.example.com', 'Agent ' || g, 'x', 'agent', 'en', true, %(now)s, %(now)s
               FROM generate_series(1, %(agents)s) g""",
            "INSERT INTO teams (id, name, created_at) VALUES (1, 'Bench', %(now)s)",
            "INSERT INTO team_members (team_id, agent_id) SELECT 1, g FROM generate_series(1, %(agents)s) g",
            """INSERT INTO routing_teams (team_id, strategy, auto_assign, reassign_when_offline, created_at, updated_at)
               VALUES (1, 'least_loaded', true, false, %(now)s, %(now)s)""",
            """INSERT INTO routing_agents (agent_id, skills, capacity, availability, online_until, presence, updated_at)
               SELECT g, '["language:es"]'::jsonb, '{"chat": 10, "email": 0}'::jsonb, 'available',
                      %(now)s + interval '1 day',
                      'online', %(now)s
               FROM generate_series(1, %(agents)s) g""",
            """INSERT INTO channel_accounts (id, kind, name, enabled, config, secrets, created_at, updated_at)
               VALUES (1, 'api', 'Bench', true, '{}'::jsonb, '{}'::jsonb, %(now)s, %(now)s),
                      (2, 'email', 'Bench mail', true, '{}'::jsonb, '{}'::jsonb, %(now)s, %(now)s)""",
        ],
        "contacts": [
            """INSERT INTO contacts (id, name, locale, custom_attributes, created_at, updated_at)
               SELECT g, 'Customer ' || g, CASE WHEN g %% 2 = 0 THEN 'es' ELSE 'en' END,
                      jsonb_build_object('plan', CASE WHEN g %% 10 = 0 THEN 'gold' ELSE 'basic' END),
                      %(now)s - interval '1 day', %(now)s - interval '1 day'
               FROM generate_series(1, %(total)s) g""",
        ],
        "conversations": [
            """INSERT INTO conversations (id, contact_id, status, priority, assignee_id, team_id,
                                          last_channel_account_id, message_count, created_at, updated_at,
                                          last_message_at, last_inbound_at, waiting_since)
               SELECT g, g, 'open', (ARRAY['none', 'low', 'medium', 'high', 'urgent'])[1 + g %% 5],
                      CASE WHEN g <= %(loaded)s THEN 1 + (g - 1) %% %(agents)s END,
                      CASE WHEN g <= %(last_fresh)s THEN 1 END,
                      CASE WHEN g > %(loaded)s AND g <= %(loaded)s + %(queued)s THEN 2 ELSE 1 END,
                      1, %(now)s - (g %% 28800) * interval '1 second', %(now)s,
                      %(now)s - (g %% 28800) * interval '1 second', %(now)s - (g %% 28800) * interval '1 second',
                      %(now)s - (g %% 28800) * interval '1 second'
               FROM generate_series(1, %(total)s) g""",
        ],
        "queue": [
            """INSERT INTO conversation_routing (conversation_id, required_skills, excluded_agent_ids, queued_at,
                                                 team_id, priority_rank, sla_due_at, waiting_since, channel_class,
                                                 reason, updated_at)
               SELECT g, '[]'::jsonb, '[]'::jsonb, %(now)s - (g %% 3600) * interval '1 second', 1, g %% 5,
                      %(now)s + (g %% 7200) * interval '1 second', %(now)s - (g %% 3600) * interval '1 second',
                      'email', 'no_capacity', %(now)s
               FROM generate_series(%(loaded)s + 1, %(loaded)s + %(queued)s) g""",
        ],
        "sla": [
            """INSERT INTO sla_policies (id, name, position, active, conditions, first_response_seconds,
                                         next_response_seconds, resolution_seconds, business_hours_id,
                                         warning_share, created_at, updated_at)
               VALUES (1, 'Standard', 0, true, '{}'::jsonb, 28800, 3600, NULL, NULL, 0.8, %(now)s, %(now)s)""",
            # One timer in DUE_EVERY comes due at NOW; the rest spread over the next eight hours.
            """INSERT INTO sla_timers (conversation_id, policy_id, kind, state, target_seconds, warning_share,
                                       business_hours_id, started_at, consumed_seconds, running_since, due_at,
                                       warn_at, next_check_at, created_at, updated_at)
               SELECT g, 1, 'first_response', 'running', 28800, 0.8, NULL, %(now)s - interval '8 hours',
                      0, %(now)s - interval '8 hours',
                      CASE WHEN g %% %(due_every)s = 0 THEN %(now)s - interval '1 minute'
                           ELSE %(now)s + (g %% 28800) * interval '1 second' END,
                      NULL,
                      CASE WHEN g %% %(due_every)s = 0 THEN %(now)s - interval '1 minute'
                           ELSE %(now)s + (g %% 28800) * interval '1 second' END,
                      %(now)s, %(now)s
               FROM generate_series(1, %(total)s) g""",
            """INSERT INTO conversation_sla (conversation_id, policy_id, status, due_at, due_kind, updated_at)
               SELECT conversation_id, 1, 'on_track', due_at, 'first_response', %(now)s FROM sla_timers""",
        ],
        "messages": [
            """INSERT INTO messages (conversation_id, contact_id, channel_account_id, direction, kind, body, data,
                                     status, auto_generated, created_at)
               SELECT g, g, 1, 'inbound', 'text',
                      CASE WHEN g %% 2 = 0 THEN 'Hola, necesito ayuda con mi pedido ' || g
                           ELSE 'Hello, I need help with my order ' || g END,
                      '{}'::jsonb, 'received', false, %(now)s
               FROM generate_series(%(first_fresh)s, %(first_fresh)s + %(rule_messages)s - 1) g""",
        ],
        "finish": [
            "SELECT setval(pg_get_serial_sequence('agents', 'id'), (SELECT max(id) FROM agents))",
            "SELECT setval(pg_get_serial_sequence('teams', 'id'), 1)",
            "SELECT setval(pg_get_serial_sequence('channel_accounts', 'id'), 2)",
            "SELECT setval(pg_get_serial_sequence('contacts', 'id'), (SELECT max(id) FROM contacts))",
            "SELECT setval(pg_get_serial_sequence('conversations', 'id'), (SELECT max(id) FROM conversations))",
            "SELECT setval(pg_get_serial_sequence('sla_policies', 'id'), 1)",
        ],
    }
    params = {
        "now": NOW,
        "agents": AGENTS,
        "total": total,
        "loaded": LOADED,
        "queued": QUEUED,
        "last_fresh": last_fresh,
        "first_fresh": first_fresh,
        "due_every": DUE_EVERY,
        "rule_messages": RULE_MESSAGES,
    }
    took: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, statements in steps.items():
            status(f"generating {name}")
            started = time.perf_counter()
            for statement in statements:
                conn.execute(statement, params)  # type: ignore[arg-type]
            took[name] = round(time.perf_counter() - started, 1)
        status("VACUUM ANALYZE")
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        took["vacuum_analyze"] = round(time.perf_counter() - started, 1)
    return took


def make_runtime(url: str, clock: FrozenClock) -> Runtime:
    os.environ.setdefault("HILO_SECRET_KEY", "bench-secret-key")
    os.environ.setdefault("HILO_DATA_DIR", tempfile.mkdtemp(prefix="hilo-routing-bench-"))
    return Runtime(replace(load_settings(), database_url=url, redis_url=""), clock=clock)


def bench_routing(runtime: Runtime, url: str) -> dict[str, Any]:
    first_fresh = LOADED + QUEUED + 1
    fresh = list(range(first_fresh, first_fresh + FRESH))
    half = FRESH // 2
    result: dict[str, Any] = {}
    # The candidate query as sent (SQL and parameters), to show its plan afterwards.
    picks: dict[str, tuple[str, Any]] = {}

    def keep_pick(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "queue_ahead" in statement:
            picks.setdefault(strategy, (statement, parameters))

    event.listen(runtime.db.engine, "before_cursor_execute", keep_pick)
    for strategy, ids in (("least_loaded", fresh[:half]), ("round_robin", fresh[half:])):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE routing_teams SET strategy = %s", (strategy,))
        status(f"routing decisions: {strategy}")
        deciding, deciding_cpu, whole, whole_cpu = [], [], [], []
        assigned = 0
        with counting_statements(runtime.db.engine) as statements:
            for n, conversation_id in enumerate(ids):
                started, started_cpu = time.perf_counter(), time.process_time()
                with runtime.transaction() as tx:
                    decision = routing.decide(tx, conversation_id)
                    decided, decided_cpu = time.perf_counter(), time.process_time()
                    assert decision is not None
                    agent = routing.carry_out(tx, decision, trigger="bench")
                ended, ended_cpu = time.perf_counter(), time.process_time()
                if n >= WARMUP:
                    deciding.append(decided - started)
                    deciding_cpu.append(decided_cpu - started_cpu)
                    whole.append(ended - started)
                    whole_cpu.append(ended_cpu - started_cpu)
                assigned += agent is not None
            per_decision = statements() / len(ids)
        result[strategy] = {
            **latency_summary(deciding),
            "python_cpu": latency_summary(deciding_cpu),
            "assigned": assigned,
            "decisions": len(ids),
            "with_assignment_committed": {**latency_summary(whole), "python_cpu": latency_summary(whole_cpu)},
            "statements_with_assignment": round(per_decision, 1),
        }
    event.remove(runtime.db.engine, "before_cursor_execute", keep_pick)
    result["pick_query_plan"] = explain_prepared(url, *picks["least_loaded"])
    with psycopg.connect(url) as conn:
        queued = conn.execute("SELECT count(*) FROM conversation_routing WHERE queued_at IS NOT NULL").fetchone()
    result["queued_while_measuring"] = queued[0] if queued else None
    # Capacity frees for everyone at once: how fast does the queue drain?
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""UPDATE routing_agents SET capacity = '{"chat": 10, "email": 1}'::jsonb""")
    status("queue drain")
    started = time.perf_counter()
    with runtime.transaction() as tx:
        drained = routing.drain_team(tx, 1, trigger="bench")
    elapsed = time.perf_counter() - started
    result["drain"] = {
        "assigned": drained,
        "seconds": round(elapsed, 3),
        "per_conversation_ms": ms(elapsed / drained) if drained else None,
    }
    return result


def explain_prepared(url: str, sql: str, params: dict[str, Any]) -> list[str]:
    """Planning and execution time of a query as the application runs it: prepared, with
    PostgreSQL's generic plan (what a long-running process settles on)."""
    with psycopg.connect(url) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        rows = []
        for _ in range(3):
            rows = conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params, prepare=True).fetchall()  # type: ignore[arg-type]
    return [row[0] for row in rows][-2:]


def explain(url: str, sql: str, params: dict[str, Any]) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params).fetchall()  # type: ignore[arg-type]
    return [row[0] for row in rows]


def bench_sla(runtime: Runtime, url: str, total: int) -> dict[str, Any]:
    due_sql = "SELECT id FROM sla_timers WHERE next_check_at <= %(now)s ORDER BY next_check_at LIMIT 500"
    result: dict[str, Any] = {
        "open_conversations": total,
        "running_timers": total,
        "plan_of_due_query": explain(url, due_sql, {"now": NOW}),
    }
    # Nothing due: a second before the first timer comes due.
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    clock.set(NOW - timedelta(minutes=2))
    idle = []
    for _ in range(20):
        started = time.perf_counter()
        with runtime.transaction() as tx:
            moved = sla.evaluate(tx)
        idle.append(time.perf_counter() - started)
        assert moved == 0
    result["pass_nothing_due"] = latency_summary(idle)
    clock.set(NOW)
    status("SLA pass with due timers")
    started = time.perf_counter()
    passes = 0
    moved_total = 0
    while True:
        with runtime.transaction() as tx:
            moved = sla.evaluate(tx)
        passes += 1
        moved_total += moved
        if moved < sla.PASS_BATCH:
            break
    elapsed = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        breaches = conn.execute(
            "SELECT count(*) FROM events WHERE kind = 'sla.breached' AND created_at = %s", (NOW,)
        ).fetchone()
    result["pass_with_due"] = {
        "due_timers": moved_total,
        "breach_events": breaches[0] if breaches else None,
        "transactions": passes,
        "seconds": round(elapsed, 3),
        "per_timer_ms": ms(elapsed / moved_total) if moved_total else None,
    }
    return result


def make_rules(runtime: Runtime) -> None:
    from hilo.automation import actions as automation

    with runtime.transaction() as tx:
        for n in range(RULES):
            kind = n % 4
            if kind == 0:
                conditions = {"all": [{"field": "message.text", "op": "contains", "value": f"keyword{n}"}]}
            elif kind == 1:
                conditions = {"all": [{"field": "contact.attributes.plan", "op": "eq", "value": f"plan{n}"}]}
            elif kind == 2:
                conditions = {
                    "all": [{"field": "conversation.labels", "op": "contains", "value": f"label{n}"}],
                    "any": [{"field": "message.language", "op": "eq", "value": "es"}],
                }
            else:
                conditions = {"all": [{"field": "message.text", "op": "matches", "value": rf"\border{n}x\b"}]}
            automation.save_rule(
                tx,
                None,
                {
                    "name": f"Rule {n}",
                    "event": "message.received",
                    "conditions": conditions,
                    "actions": [{"type": "add_labels", "labels": [f"rule{n}"]}],
                    "position": n,
                },
            )
        automation.save_rule(
            tx,
            None,
            {
                "name": "Gold customers",
                "event": "message.received",
                "conditions": {"all": [{"field": "contact.attributes.plan", "op": "eq", "value": "gold"}]},
                "actions": [{"type": "add_labels", "labels": ["gold"]}],
                "position": RULES,
            },
        )


def bench_rules(runtime: Runtime, url: str) -> dict[str, Any]:
    make_rules(runtime)
    engine = Engine(runtime)
    handlers = AutomationHandlers(engine)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, conversation_id, contact_id FROM messages WHERE direction = 'inbound' ORDER BY id"
        ).fetchall()
    status(f"rules: {len(rows)} messages x {RULES + 1} rules")
    timings = []
    for n, (message_id, conversation_id, contact_id) in enumerate(rows):
        event = {
            "type": "message.created",
            "conversation_id": conversation_id,
            "contact_id": contact_id,
            "message_id": message_id,
            "direction": "inbound",
            "at": NOW.isoformat(),
        }
        started = time.perf_counter()
        handlers.on_event(event, 0)
        elapsed = time.perf_counter() - started
        if n >= WARMUP:
            timings.append(elapsed)
        engine.drain()
    with psycopg.connect(url) as conn:
        labelled = conn.execute(
            "SELECT count(*) FROM conversation_labels cl JOIN labels l ON l.id = cl.label_id WHERE l.name = 'gold'"
        ).fetchone()
    return {
        "active_rules": RULES + 1,
        "messages": len(rows),
        "per_message": latency_summary(timings),
        "matched_gold_rule": labelled[0] if labelled else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")
    args = parser.parse_args()
    total = max(args.conversations, LOADED + QUEUED + FRESH)
    url = create_database(DATABASE)
    try:
        status("migrating")
        upgrade(url)
        generation = generate(url, total)
        runtime = make_runtime(url, FrozenClock(NOW))
        # The engine runs in `hilo serve` or `hilo worker`, which both freeze what startup
        # made out of the collector's full passes; so does this process.
        gc.collect()
        gc.freeze()
        try:
            routing_result = bench_routing(runtime, url)
            sla_result = bench_sla(runtime, url, total)
            rules_result = bench_rules(runtime, url)
        finally:
            runtime.close()
    finally:
        if not args.keep:
            drop_database(DATABASE)
    data = {
        "database": "postgresql",
        "generation_seconds": generation,
        "routing_decision": {
            "agents_online": AGENTS,
            "queued_conversations": QUEUED,
            "target_p99_ms": 5,
            **routing_result,
        },
        "sla_evaluation": sla_result,
        "rule_evaluation": rules_result,
    }
    path = write_result("routing", data)
    print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    status(f"written to {path}")


if __name__ == "__main__":
    main()
