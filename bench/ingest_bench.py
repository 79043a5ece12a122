"""Ingest benchmark: signed webhooks over HTTP at rising rates, timed to the agent's websocket.

Three processes besides PostgreSQL: `hilo serve` (uvicorn), a load generator that posts
pre-signed webhooks open-loop (each request leaves at its scheduled time whether or not
earlier ones were answered, so a slow server cannot slow the offered load down), and a
websocket client signed in as an agent that timestamps every `message.created` event.
Latency runs from a request's scheduled send time to its event on the websocket (the
clocks agree: both read CLOCK_MONOTONIC). Also measured: SQL statements per message (an
in-process run of the ingest action with a statement counter), commits per message (from
pg_stat_database) and the API process's resident memory after the run.

Per step, every Hilo process's CPU time per accepted message (from /proc/<pid>/stat, uvicorn's
worker processes and a `hilo worker` included).

Besides `sqlite` and `postgresql` (one `hilo serve` doing everything), PostgreSQL runs as
the deployments of VARIANTS: `postgresql+worker` (the background work in a `hilo worker`
process, as docs/operations.md describes for a busy desk), `postgresql+2` (two API
processes with Redis) and `postgresql+bare` (the ingest path alone, no reactions: what
the features cost per message is its difference from `postgresql`).

    python bench/ingest_bench.py [--quick] [--databases sqlite,postgresql,postgresql+worker,...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import psycopg
import redis
from common import (
    HILO,
    HiloServer,
    Operator,
    cpu_seconds,
    create_database,
    drop_database,
    hilo_env,
    latency_summary,
    pg_url,
    rss_mb,
    running_server,
    setup_operator,
    status,
    write_result,
)

from hilo.channels import signing

RATES = [100, 300, 600, 1000, 1500, 2000]
SATURATED = 0.5  # a step accepting less than half the offered rate ends the climb
TARGET_THROUGHPUT = 1000
TARGET_RATE = 300
# Rates at which the engine's reaction lag is measured (a new conversation's routing).
LAG_RATES = (300, 1000)
TARGET_LAG_P99_MS = 100.0
TARGET_P99_MS = 50.0
QUICK_RATES = [100, 300, 1000]
CONTACTS = 3000  # returning senders per database, each with an open thread from the warm-up
NEW_SENDER_SHARE = 0.1  # of the measured messages: a first message from a sender never seen
WARMUP_RATE = 200
BATCH = 32  # deliveries per transaction in the in-process batch measurement
MAX_CONNECTIONS = 1000
REQUEST_TIMEOUT = 30.0
KEEP_ALIVE_SECONDS = 4.0  # below uvicorn's keep-alive timeout (5 s)
WORDS = [
    "hola",
    "pedido",
    "envío",
    "gracias",
    "refund",
    "order",
    "status",
    "please",
    "ayuda",
    "factura",
    "tracking",
    "mañana",
]


# ---------------------------------------------------------------- load generator process


@dataclass
class Shot:
    seq: int
    scheduled: float
    answered: float = 0.0
    status: int = 0
    error: str = ""


def _requests(args: argparse.Namespace) -> list[bytes]:
    """Pre-built, pre-signed HTTP requests, so signing is not on the clock."""
    rng = random.Random(args.seed)
    requests = []
    for i in range(args.count):
        seq = args.first_seq + i
        if args.warmup:
            contact = i
        elif rng.random() < NEW_SENDER_SHARE:
            contact = CONTACTS + seq  # nobody has sent this id before
        else:
            contact = rng.randrange(CONTACTS)
        sender: dict[str, Any] = {"external_id": f"c-{contact}", "name": f"Cliente {contact}"}
        if contact % 3 == 0:
            sender["email"] = f"cliente{contact}@example.com"
        text = f"bench {seq} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        body = orjson.dumps({"id": f"{args.run}-{seq}", "contact": sender, "text": text})
        head = (
            f"POST {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
            f"Content-Type: application/json\r\nX-Hilo-Signature: {signing.sign(args.secret, body)}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


class Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight, answers parsed by hand.

    A protocol rather than asyncio streams and a task per request: the generator shares
    the machine's two cores with the server, so the less CPU it spends per request the
    more the figures measure the server.
    """

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.shot: Shot | None = None
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, shot: Shot, request: bytes) -> None:
        assert self.transport is not None
        self.shot = shot
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            if line[:15].lower() == "content-length:":
                length = int(line[15:])
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        shot, self.shot = self.shot, None
        if shot is not None:
            shot.status = int(head.split(" ", 2)[1])
            shot.answered = time.monotonic()
            self.pool.answered(self)

    def connection_lost(self, exc: Exception | None) -> None:
        shot, self.shot = self.shot, None
        self.pool.lost(self, shot)


class Pool:
    """Keep-alive connections, opened on demand up to a cap; requests wait for a free one.

    A connection left idle longer than the server keeps one open (uvicorn closes them after
    5 s) is closed here instead of reused: a request sent on it would race the server's
    close, as any HTTP client's stale keep-alive connection does.
    """

    def __init__(self, host: str, port: int, total: int) -> None:
        self.host = host
        self.port = port
        self.idle: list[Client] = []
        self.waiting: deque[tuple[Shot, bytes]] = deque()
        self.open = 0
        self.left = total
        self.finished = asyncio.Event()

    def submit(self, shot: Shot, request: bytes) -> None:
        while self.idle:
            client = self.idle.pop()
            if time.monotonic() - client.idle_since < KEEP_ALIVE_SECONDS:
                client.send(shot, request)
                return
            self.open -= 1
            assert client.transport is not None
            client.transport.close()
        self.waiting.append((shot, request))
        if self.open < MAX_CONNECTIONS:
            self.open += 1
            asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _transport, client = await loop.create_connection(lambda: Client(self), self.host, self.port)
        except OSError as exc:
            self.open -= 1
            if self.waiting:
                shot, _request = self.waiting.popleft()
                self._failed(shot, type(exc).__name__)
            return
        self.answered(client, first=True)

    def answered(self, client: Client, first: bool = False) -> None:
        if not first:
            self._done()
        if self.waiting:
            client.send(*self.waiting.popleft())
        else:
            client.idle_since = time.monotonic()
            self.idle.append(client)

    def lost(self, client: Client, shot: Shot | None) -> None:
        if client in self.idle:
            self.idle.remove(client)
            self.open -= 1
        elif shot is not None:
            self.open -= 1
            self._failed(shot, "ConnectionClosed")

    def _failed(self, shot: Shot, error: str) -> None:
        shot.status = -1
        shot.error = error
        shot.answered = time.monotonic()
        self._done()

    def _done(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.finished.set()


async def _load(args: argparse.Namespace) -> list[Shot]:
    requests = _requests(args)
    pool = Pool(args.host, args.port, args.count)
    shots = [Shot(seq=args.first_seq + i, scheduled=0.0) for i in range(args.count)]
    start = time.monotonic() + 0.05
    interval = 1.0 / args.rate
    i = 0
    while i < args.count:
        now = time.monotonic()
        while i < args.count and start + i * interval <= now:
            shots[i].scheduled = start + i * interval
            pool.submit(shots[i], requests[i])
            i += 1
        await asyncio.sleep(min(0.001, max(0.0, start + i * interval - time.monotonic())))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(pool.finished.wait(), REQUEST_TIMEOUT)
    for shot in shots:
        if shot.status == 0:
            shot.status, shot.error, shot.answered = -1, "TimeoutError", time.monotonic()
    return shots


def load_main(args: argparse.Namespace) -> None:
    import uvloop

    shots = uvloop.run(_load(args))
    Path(args.out).write_bytes(orjson.dumps([[s.seq, s.scheduled, s.answered, s.status, s.error] for s in shots]))


# ---------------------------------------------------------------- websocket receiver process


async def _receive(args: argparse.Namespace) -> None:
    import websockets

    # Line-buffered: the orchestrator reads the file while events still arrive.
    with open(args.out, "w", buffering=1) as out:
        async with websockets.connect(args.url, max_queue=None, ping_interval=None) as socket:
            hello = orjson.loads(await socket.recv())
            assert hello["type"] == "hello", hello
            print("ready", flush=True)
            async for raw in socket:
                now = time.monotonic()
                event = orjson.loads(raw)
                if event.get("type") == "message.created":
                    preview = event.get("preview") or ""
                    if preview.startswith("bench "):
                        out.write(f"{preview.split(' ', 2)[1]} {now} {event.get('conversation_id')}\n")
                elif event.get("type") == "conversation.assigned" and event.get("assignee_id") is not None:
                    out.write(f"a {event.get('conversation_id')} {now}\n")


def receive_main(args: argparse.Namespace) -> None:
    import uvloop

    with contextlib.suppress(Exception):
        uvloop.run(_receive(args))


# ---------------------------------------------------------------- orchestration


@dataclass
class Receiver:
    process: subprocess.Popen[str]
    path: Path
    seen: dict[int, float] = field(default_factory=dict)
    # When each conversation's first message reached the agent, and when its assignment did.
    opened: dict[int, float] = field(default_factory=dict)
    assigned: dict[int, float] = field(default_factory=dict)
    offset: int = 0

    def poll(self) -> None:
        with self.path.open() as events:
            events.seek(self.offset)
            chunk = events.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            first, second, third = line.split()
            if first == "a":
                self.assigned.setdefault(int(second), float(third))
                continue
            self.seen.setdefault(int(first), float(second))
            if third != "None":
                self.opened.setdefault(int(third), float(second))


def _start_receiver(url: str, work: Path) -> Receiver:
    path = work / "events.txt"
    path.touch()
    process = subprocess.Popen(
        [sys.executable, __file__, "--receive", f"--url={url}", "--out", str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the websocket client did not connect")
    return Receiver(process, path)


def _settle(receiver: Receiver, quiet: float = 2.0, limit: float = 90.0) -> None:
    """Wait until the server has worked off what it accepted: no new event for `quiet` seconds."""
    deadline = time.monotonic() + limit
    seen, since = len(receiver.seen), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(0.2)
        receiver.poll()
        if len(receiver.seen) != seen:
            seen, since = len(receiver.seen), time.monotonic()


def _analyze(database: str) -> None:
    """Give the planner the statistics of the warmed-up tables, as autovacuum soon would.

    The database is created empty for the run, and autovacuum looks at it once a minute:
    without this the measured steps may run, or not, on plans made for empty tables. Those
    look a message up among all of its channel's messages instead of by its provider id,
    and the steps' latency then depends on whether autovacuum came by during the warm-up.
    """
    with psycopg.connect(pg_url(database), autocommit=True) as conn:
        conn.execute("ANALYZE")


def _commits(database: str | None) -> int | None:
    if database is None:
        return None
    with psycopg.connect(pg_url("postgres")) as conn:
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)).fetchone()
    return int(row[0]) if row else None


def _step(
    server_port: int, operator: Operator, receiver: Receiver, rate: int, duration: float, first_seq: int,
    work: Path, database: str | None, run: str, warmup: bool = False, hilo_pids: list[int] | None = None,
) -> dict[str, Any]:  # fmt: skip
    count = CONTACTS if warmup else int(rate * duration)
    out = work / f"load-{'warmup' if warmup else rate}.json"
    commits_before = _commits(database)
    cpu_before = cpu_seconds(hilo_pids) if hilo_pids else None
    subprocess.run(
        [
            sys.executable, __file__, "--load", "--host", "127.0.0.1", "--port", str(server_port),
            "--path", operator.webhook_path, f"--secret={operator.secret}", "--rate", str(rate),
            "--count", str(count), "--first-seq", str(first_seq), "--seed", str(rate), "--run", run,
            "--out", str(out), *(["--warmup"] if warmup else []),
        ],
        check=True,
    )  # fmt: skip
    shots = orjson.loads(out.read_bytes())
    accepted = [s for s in shots if 200 <= s[3] < 300]
    deadline = time.monotonic() + 20
    wanted = {s[0] for s in accepted}
    while time.monotonic() < deadline:
        receiver.poll()
        if wanted.issubset(receiver.seen):
            break
        time.sleep(0.2)
    commits_after = _commits(database)
    cpu_after = cpu_seconds(hilo_pids) if hilo_pids else None
    first = min(s[1] for s in shots)
    last_answer = max((s[2] for s in accepted), default=first)
    event_latency = [receiver.seen[s[0]] - s[1] for s in accepted if s[0] in receiver.seen]
    errors: dict[str, int] = {}
    for s in shots:
        if not 200 <= s[3] < 300:
            key = s[4] if s[3] < 0 else f"http_{s[3]}"
            errors[key] = errors.get(key, 0) + 1
    result = {
        "offered_per_s": rate,
        "duration_s": duration,
        "sent": len(shots),
        "accepted": len(accepted),
        "accepted_per_s": round(len(accepted) / max(last_answer - first, duration), 1),
        "errors": errors,
        "events_missing": len(wanted - receiver.seen.keys()),
        "post_to_event": latency_summary(event_latency),
        "post_to_response": latency_summary([s[2] - s[1] for s in accepted]),
    }
    if commits_before is not None and commits_after is not None and accepted:
        result["commits_per_message"] = round((commits_after - commits_before) / len(accepted), 3)
    if cpu_before is not None and cpu_after is not None and accepted:
        # Every Hilo process's CPU over the step and the wait for its last events, per message.
        result["hilo_cpu_ms_per_message"] = round((cpu_after - cpu_before) * 1000 / len(accepted), 3)
    status(
        f"  {rate}/s: accepted {result['accepted_per_s']}/s, event p50 {result['post_to_event']['p50_ms']} ms "
        f"p99 {result['post_to_event']['p99_ms']} ms, errors {errors or 0}, missing {result['events_missing']}"
    )
    return result


def _route_new_conversations(server: HiloServer, operator: Operator) -> None:
    """Routing for every new conversation: a team of the bench agent (online through the receiver's
    websocket, room for any number), least loaded, and a rule that puts new conversations in it."""
    headers = {"authorization": f"Bearer {operator.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        api.put(f"/api/v1/routing/agents/{operator.agent_id}", json={"capacity": {"chat": 1000}}).raise_for_status()
        team = api.post("/api/v1/teams", json={"name": "Bench", "member_ids": [operator.agent_id]})
        team.raise_for_status()
        team_id = team.json()["id"]
        api.put(f"/api/v1/routing/teams/{team_id}", json={"strategy": "least_loaded"}).raise_for_status()
        rule = {
            "name": "New conversations to the team",
            "event": "conversation.created",
            "actions": [{"type": "assign_team", "team_id": team_id}],
        }
        api.post("/api/v1/automation/rules", json=rule).raise_for_status()


def _reaction_lag(
    server: HiloServer, operator: Operator, receiver: Receiver, duration: float, first_seq: int,
    work: Path, database: str | None, kind: str,
) -> list[dict[str, Any]]:  # fmt: skip
    """From a new conversation's first message reaching the agent to its assignment by routing reaching
    them: the lag of the engine, a durable consumer of the committed events, at LAG_RATES."""
    _route_new_conversations(server, operator)
    time.sleep(3)  # the engines' 2 s memory of "no rule" runs out
    steps = []
    seq = first_seq
    for rate in LAG_RATES:
        already = set(receiver.opened)
        step = _step(server.port, operator, receiver, rate, duration, seq, work, database, kind)
        seq += int(rate * duration)
        _settle(receiver)
        receiver.poll()
        new = [c for c in receiver.opened if c not in already]
        lags = [receiver.assigned[c] - receiver.opened[c] for c in new if c in receiver.assigned]
        steps.append(
            {
                "offered_per_s": rate,
                "accepted_per_s": step["accepted_per_s"],
                "new_conversations": len(new),
                "not_assigned": len(new) - len(lags),
                "commit_to_assignment": latency_summary(lags),
            }
        )
        summary = steps[-1]["commit_to_assignment"]
        status(f"  reaction lag at {rate}/s: p50 {summary['p50_ms']} ms p99 {summary['p99_ms']} ms")
    return steps


def statements_per_message(database_url: str, data_dir: Path) -> dict[str, Any]:
    """Run the ingest action in-process on 1,500 messages; count the SQL it issues and time its CPU.

    Three kinds of message, 500 each: a new sender's first message, a follow-up from the
    same sender, and a follow-up that also names the sender's e-mail address (as the API
    and web-form channels often do), which takes the general path through identity
    resolution. One message per transaction, as at low rates; then 500 follow-ups in
    batches, as the ingest writer takes them under load.
    """
    from common import counting_statements

    from hilo.channels.actions import create_channel_account
    from hilo.channels.api import ADAPTER
    from hilo.channels.base import WebhookRequest
    from hilo.ingest.deliveries import ingest_batch, ingest_delivery
    from hilo.runtime import Runtime
    from hilo.settings import load_settings

    os.environ.update(hilo_env(database_url, data_dir))
    runtime = Runtime(load_settings())
    secret = "statement-count-secret"  # noqa: S105 - a local, throw-away channel
    with runtime.transaction() as tx:
        account = create_channel_account(tx, "api", "Statement count", {"secret": secret}).view()

    def delivery(seq: int, contact: int, email: bool) -> Any:
        sender = {"external_id": f"count-{contact}", "name": f"Cliente {contact}"}
        if email:
            sender["email"] = f"count{contact}@example.com"
        body = orjson.dumps({"id": f"count-{seq}", "contact": sender, "text": f"message {seq}"})
        headers = {"content-type": "application/json", signing.HEADER: signing.sign(secret, body)}
        return ADAPTER.parse_webhook(account, WebhookRequest("POST", "http://bench/", headers, {}, body))

    statements: dict[str, float] = {}
    cpu_ms: dict[str, float] = {}
    kinds = (("new_contact", 0, False), ("returning_contact", 500, False), ("returning_with_email", 1000, True))
    for label, offset, email in kinds:
        deliveries = [delivery(offset + i, i, email) for i in range(500)]
        started = time.thread_time()
        with counting_statements(runtime.db.engine) as count:
            for item in deliveries:
                with runtime.transaction() as tx:
                    ingest_delivery(tx, account, item)
            statements[label] = round(count() / len(deliveries), 2)
        cpu_ms[label] = round((time.thread_time() - started) / len(deliveries) * 1000, 2)
    # Under load the ingest writer takes what waits as one batch (see IngestQueue).
    label = f"returning_contact_batches_of_{BATCH}"
    deliveries = [delivery(1500 + i, i, False) for i in range(500)]
    started = time.thread_time()
    with counting_statements(runtime.db.engine) as count:
        for first in range(0, len(deliveries), BATCH):
            with runtime.transaction() as tx:
                ingest_batch(tx, [(account, item) for item in deliveries[first : first + BATCH]])
        statements[label] = round(count() / len(deliveries), 2)
    cpu_ms[label] = round((time.thread_time() - started) / len(deliveries) * 1000, 3)
    runtime.close()
    return {**statements, "cpu_ms_per_message": cpu_ms}


@contextlib.contextmanager
def running_worker(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `hilo worker` process beside the API process, for as long as the block runs."""
    with log_path.open("ab") as log:
        process = subprocess.Popen([HILO, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Deployments beside `sqlite` and `postgresql` (one `hilo serve` doing everything).
VARIANTS = {
    "worker": "the background work (reactions, notifications, sends) in a `hilo worker` process beside the "
    "API process (HILO_RUN_WORKER=0; events over Redis)",
    "2": "two API processes (`hilo serve --workers 2`, events and rate limits over Redis), both doing the "
    "background work (one holds each engine's lease)",
    "bare": "Hilo's ingest alone: HILO_RUN_WORKER=0 and no worker, so no reactions, notifications or sends "
    "(what the features cost is the difference from `postgresql`)",
}


def run_database(label: str, rates: list[int], duration: float, work: Path) -> dict[str, Any]:
    """One deployment: `sqlite`, `postgresql` (one process) or `postgresql+<variant>` (VARIANTS)."""
    status(f"ingest on {label}")
    kind, _, variant = label.partition("+")
    if variant and variant not in VARIANTS:
        raise SystemExit(f"unknown deployment {label!r}: postgresql+{{{','.join(VARIANTS)}}}")
    database = f"hilo_bench_ingest_{os.getpid()}" if kind == "postgresql" else None
    url = create_database(database) if database else f"sqlite:///{work / 'hilo.db'}"
    data_dir = work / "data"
    env = hilo_env(url, data_dir)
    try:
        subprocess.run([HILO, "migrate"], env=env, check=True, capture_output=True)
        operator = setup_operator(env)
        result: dict[str, Any] = {"database": label, "steps": []}
        if variant:
            result["deployment"] = VARIANTS[variant]
        workers = 2 if variant == "2" else int(os.environ.get("BENCH_WORKERS", "1"))
        if workers > 1 or variant == "worker":
            env["HILO_REDIS_URL"] = "redis://127.0.0.1:6379/0"
            redis.Redis.from_url(env["HILO_REDIS_URL"]).flushdb()
        if variant in ("worker", "bare"):
            env["HILO_RUN_WORKER"] = "0"
        background: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if variant == "worker":
            background = running_worker(env, work / "worker.log")
        with background as worker, running_server(env, work / "server.log", workers) as server:
            pids = [server.pid, *([worker.pid] if worker is not None else [])]
            ws_url = f"ws://127.0.0.1:{server.port}/api/v1/ws?token={operator.token}"
            receiver = _start_receiver(ws_url, work)
            try:
                # Every returning sender's first message, unmeasured: the steps then see the
                # steady state of a help desk, where most messages join an open thread.
                result["warmup"] = _step(
                    server.port, operator, receiver, WARMUP_RATE, 0, 0, work, database, kind, warmup=True
                )
                _settle(receiver)
                if database:
                    _analyze(database)
                seq = CONTACTS
                for rate in rates:
                    step = _step(
                        server.port, operator, receiver, rate, duration, seq, work, database, kind, hilo_pids=pids
                    )
                    result["steps"].append(step)
                    seq += int(rate * duration)
                    _settle(receiver)
                    if rate >= TARGET_RATE and step["accepted_per_s"] < SATURATED * rate:
                        # Past saturation every higher rate only measures a growing backlog.
                        result["skipped_rates"] = [r for r in rates if r > rate]
                        status(f"  saturated at {rate}/s offered; higher rates skipped")
                        break
                result["api_rss_mb_after_run"] = rss_mb(server.pid)
                if variant != "bare":  # nothing reacts there
                    result["reaction_lag"] = _reaction_lag(
                        server, operator, receiver, duration, seq, work, database, kind
                    )
            finally:
                receiver.process.terminate()
                receiver.process.wait(timeout=10)
        if not variant:  # the others run the same code path
            result["sql_statements_per_message"] = statements_per_message(url, data_dir)
        return result
    finally:
        if database:
            drop_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="three rates, 3 s each")
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql,postgresql+worker,postgresql+2,postgresql+bare",
        help="deployments: sqlite, postgresql, postgresql+worker, postgresql+2 (two API processes), "
        "postgresql+bare (ingest without the features)",
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds per rate (default 10, quick 3)")
    parser.add_argument("--rates", default=None, help="comma-separated rates per second")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--receive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", action="store_true", help=argparse.SUPPRESS)
    for name in ("host", "path", "secret", "run", "out", "url"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    for name in ("port", "count", "first-seq", "seed"):
        parser.add_argument(f"--{name}", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_main(args)
        return
    if args.receive:
        receive_main(args)
        return
    rates = [int(r) for r in args.rates.split(",")] if args.rates else (QUICK_RATES if args.quick else RATES)
    duration = args.duration or (3.0 if args.quick else 10.0)
    results = []
    for kind in args.databases.split(","):
        with tempfile.TemporaryDirectory(prefix=f"hilo-ingest-{kind.replace('+', '-')}-") as work:
            results.append(run_database(kind, rates, duration, Path(work)))
    write_result(
        "ingest",
        {
            "quick": args.quick,
            "rates": rates,
            "duration_s": duration,
            "databases": results,
            "targets": targets(results),
        },
    )


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, on PostgreSQL: 1,000 messages/s sustained, p99 <= 50 ms at 300/s."""
    postgres = next((r for r in results if r["database"] == "postgresql"), None)
    if postgres is None:
        return []
    best = max((step["accepted_per_s"] for step in postgres["steps"]), default=0.0)
    at_300 = next((step for step in postgres["steps"] if step["offered_per_s"] == TARGET_RATE), None)
    rows = [
        {
            "what": "messages/s sustained on PostgreSQL (best step)",
            "target": f">= {TARGET_THROUGHPUT}/s",
            "measured": f"{best}/s",
            "met": best >= TARGET_THROUGHPUT,
        }
    ]
    if at_300 is not None:
        p99 = at_300["post_to_event"]["p99_ms"]
        rows.append(
            {
                "what": f"POST to websocket event p99 at {TARGET_RATE} messages/s, PostgreSQL",
                "target": f"<= {TARGET_P99_MS:g} ms",
                "measured": f"{p99} ms",
                "met": p99 is not None and p99 <= TARGET_P99_MS and at_300["accepted"] == at_300["sent"],
            }
        )
    deployments = [(postgres, "PostgreSQL")]
    separate = next((r for r in results if r["database"] == "postgresql+worker"), None)
    if separate is not None:
        deployments.append((separate, "PostgreSQL, API and worker processes"))
    for result, where in deployments:
        lag_300 = next((s for s in result.get("reaction_lag", []) if s["offered_per_s"] == TARGET_RATE), None)
        if lag_300 is None:
            continue
        lag_p99 = lag_300["commit_to_assignment"]["p99_ms"]
        rows.append(
            {
                "what": f"commit to routing's assignment p99 at {TARGET_RATE} messages/s, {where}",
                "target": f"<= {TARGET_LAG_P99_MS:g} ms",
                "measured": f"{lag_p99} ms",
                "met": lag_p99 is not None and lag_p99 <= TARGET_LAG_P99_MS and lag_300["not_assigned"] == 0,
            }
        )
    return rows


if __name__ == "__main__":
    main()
