"""Saturation benchmark: wrk, closed loop, 64 connections of signed API-channel webhooks.

Where `ingest_bench.py` offers rising fixed rates (open loop, latency to the agent's
websocket), this one asks how many webhooks a deployment takes when every connection
sends its next request as soon as the last was answered, as a provider's retry queue
does after an outage. Per deployment, fresh database and server:

- 3,000 senders each send a first message (unmeasured warm-up), so most measured
  messages join an open thread: 90 % follow-ups from those senders, 10 % new senders;
- `wrk -t2 -c64` for DURATION seconds, ROUNDS times, the deployments alternating
  round by round so a slow minute of the machine does not favour one of them;
- per round: messages/s (2xx answers over the run), latency p50/p99 as wrk reports it,
  every Hilo process's CPU per message (/proc), messages per commit
  (pg_stat_database.xact_commit), and a check that every acknowledged message is stored
  exactly once (distinct provider ids = rows = 2xx answers).

`wrk` is Debian's package (`apt-get install wrk`); the requests are pre-signed in files
that a Lua script hands out, so signing costs the load generator nothing.

    python bench/saturation_bench.py [--deployments 1,2,4,bare,worker] [--rounds 3] [--duration 15]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    pg_url,
    setup_operator,
    status,
    write_result,
)

from hilo.channels import signing

CONNECTIONS = 64
THREADS = 2
CONTACTS = 3000
NEW_SENDER_SHARE = 0.1
REQUESTS_PER_THREAD = 120_000  # more than a thread can send in a round at any rate seen here
SEPARATOR = b"\x00"
REDIS_URL = "redis://127.0.0.1:6379/0"

# What each deployment runs: API processes, whether a separate `hilo worker` runs, and
# whether the API processes do the background work.
DEPLOYMENTS: dict[str, dict[str, Any]] = {
    "1": {"processes": 1, "worker": False, "background": True, "text": "one `hilo serve` process doing everything"},
    "2": {"processes": 2, "worker": False, "background": True, "text": "two `hilo serve` processes with Redis"},
    "4": {"processes": 4, "worker": False, "background": True, "text": "four `hilo serve` processes with Redis"},
    "worker": {
        "processes": 1,
        "worker": True,
        "background": False,
        "text": "one `hilo serve` process (HILO_RUN_WORKER=0) and one `hilo worker`, Redis",
    },
    "bare": {
        "processes": 1,
        "worker": False,
        "background": False,
        "text": "one `hilo serve` process with HILO_RUN_WORKER=0 and no worker: ingest without the features",
    },
}

LUA = r"""
local requests = {}
local next_index = 1
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  local f = assert(io.open(args[1] .. "." .. id, "rb"))
  local data = f:read("*a")
  f:close()
  local start = 1
  while true do
    local stop = string.find(data, "\0", start, true)
    if not stop then break end
    requests[#requests + 1] = string.sub(data, start, stop - 1)
    start = stop + 1
  end
end

function request()
  local r = requests[next_index]
  next_index = next_index + 1
  if next_index > #requests then next_index = 1 end
  return r
end
"""


def _body(run: str, seq: int, contact: int, rng: random.Random) -> bytes:
    sender: dict[str, Any] = {"external_id": f"c-{contact}", "name": f"Cliente {contact}"}
    if contact % 3 == 0:
        sender["email"] = f"cliente{contact}@example.com"
    words = " ".join(rng.choice(("hola", "pedido", "envío", "gracias", "order", "ayuda")) for _ in range(6))
    return orjson.dumps({"id": f"{run}-{seq}", "contact": sender, "text": f"bench {seq} {words}"})


def _request(operator: Operator, port: int, body: bytes) -> bytes:
    head = (
        f"POST {operator.webhook_path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Hilo-Signature: {signing.sign(operator.secret, body)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def write_requests(path: Path, operator: Operator, port: int, run: str, warmup: bool) -> None:
    """One file per wrk thread, requests separated by NUL; message and new-sender ids unique to the run."""
    rng = random.Random(run)
    for thread in range(THREADS):
        chunks = []
        count = CONTACTS // THREADS if warmup else REQUESTS_PER_THREAD
        for i in range(count):
            seq = thread * 10_000_000 + i
            if warmup:
                contact = thread * (CONTACTS // THREADS) + i
            elif rng.random() < NEW_SENDER_SHARE:
                contact = 1_000_000 + seq
            else:
                contact = rng.randrange(CONTACTS)
            chunks.append(_request(operator, port, _body(run, seq, contact, rng)))
        Path(f"{path}.{thread}").write_bytes(SEPARATOR.join(chunks) + SEPARATOR)


def wrk(url: str, requests: Path, duration: float, script: Path) -> dict[str, Any]:
    done = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{int(duration)}s", "--latency", "--timeout", "30s",
         "-s", str(script), url, "--", str(requests)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = done.stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    latency = {}
    for label in ("50%", "99%"):
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            latency[label] = round(value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)
    return {
        "requests": total,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
        "p50_ms": latency.get("50%"),
        "p99_ms": latency.get("99%"),
    }


def _commits(database: str) -> int:
    with psycopg.connect(pg_url("postgres")) as conn:
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)).fetchone()
    return int(row[0]) if row else 0


def _stored(database: str, run: str) -> tuple[int, int]:
    """Rows and distinct provider ids of the run's messages."""
    with psycopg.connect(pg_url(database)) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT provider_message_id) FROM messages WHERE provider_message_id LIKE %s",
            (f"{run}-%",),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


# How long the durable consumers may take to handle the run's events after the load.
CATCH_UP_TIMEOUT_S = 120.0


def _caught_up_after(database: str) -> float | None:
    """Seconds until every durable consumer (reactions, notifications) has handled the events
    committed by the end of the load; None if they had not within CATCH_UP_TIMEOUT_S."""
    started = time.monotonic()
    with psycopg.connect(pg_url(database), autocommit=True) as conn:
        newest = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        assert newest is not None
        while time.monotonic() - started < CATCH_UP_TIMEOUT_S:
            behind = conn.execute("SELECT count(*) FROM consumer_positions WHERE position < %s", newest).fetchone()
            if behind is not None and behind[0] == 0:
                return round(time.monotonic() - started, 2)
            time.sleep(0.05)
    return None


@contextlib.contextmanager
def deployment(name: str, work: Path) -> Iterator[tuple[str, Operator, int, list[int]]]:
    spec = DEPLOYMENTS[name]
    database = f"hilo_bench_saturation_{name}_{int(time.time())}"
    url = create_database(database)
    env = hilo_env(url, work / "data")
    if spec["processes"] > 1 or spec["worker"]:
        env["HILO_REDIS_URL"] = REDIS_URL
        redis.Redis.from_url(REDIS_URL).flushdb()
    if not spec["background"]:
        env["HILO_RUN_WORKER"] = "0"
    worker: subprocess.Popen[bytes] | None = None
    server = HiloServer(env, work / f"server-{name}.log", workers=spec["processes"])
    try:
        subprocess.run([HILO, "migrate"], env=env, check=True, capture_output=True)
        operator = setup_operator(env)
        if spec["worker"]:
            with (work / "worker.log").open("ab") as log:
                worker = subprocess.Popen([HILO, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
        server.start()
        pids = [server.pid, *([worker.pid] if worker else [])]
        yield database, operator, server.port, pids
    finally:
        server.stop()
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=20)
        drop_database(database)


def run_round(name: str, duration: float, work: Path, round_no: int) -> dict[str, Any]:
    script = work / "requests.lua"
    script.write_text(LUA)
    reacts = DEPLOYMENTS[name]["background"] or DEPLOYMENTS[name]["worker"]
    with deployment(name, work) as (database, operator, port, pids):
        url = f"http://127.0.0.1:{port}"
        warm = work / f"warm-{name}-{round_no}"
        write_requests(warm, operator, port, f"w{round_no}{name}", warmup=True)
        # wrk cycles through its requests: a short run sends each warm-up message about once
        # (a repeat is answered as a duplicate and stored once).
        wrk(url, warm, 3, script)
        with psycopg.connect(pg_url(database), autocommit=True) as conn:
            conn.execute("ANALYZE")
        run = f"r{round_no}{name}"
        requests = work / f"requests-{name}-{round_no}"
        write_requests(requests, operator, port, run, warmup=False)
        time.sleep(1)
        commits, cpu = _commits(database), cpu_seconds(pids)
        result = wrk(url, requests, duration, script)
        # The CPU and commits of the reactions too: what the consumers still had to handle when
        # the load stopped is counted once they have.
        caught_up = _caught_up_after(database) if reacts else None
        cpu_used, commits_used = cpu_seconds(pids) - cpu, _commits(database) - commits
        rows, distinct = _stored(database, run)
        accepted = result["requests"] - result["non_2xx"]
        result.update(
            deployment=name,
            round=round_no,
            messages_per_s=round(accepted / duration, 1),
            cpu_ms_per_message=round(cpu_used * 1000 / max(accepted, 1), 3),
            messages_per_commit=round(accepted / max(commits_used, 1), 1),
            consumers_caught_up_after_s=caught_up,
            stored_rows=rows,
            stored_distinct=distinct,
            exactly_once=rows == distinct and rows >= accepted,
        )
        for path in work.glob(f"*-{name}-{round_no}.*"):
            path.unlink()
        status(
            f"  {name} round {round_no}: {result['messages_per_s']}/s p99 {result['p99_ms']} ms, "
            f"cpu {result['cpu_ms_per_message']} ms/msg, {result['messages_per_commit']} msgs/commit, "
            f"stored {rows}/{accepted} once={result['exactly_once']}, consumers caught up after {caught_up} s"
        )
        return result


def _slowest_catch_up(rounds: list[dict[str, Any]]) -> float | None:
    times = [r.get("consumers_caught_up_after_s") for r in rounds]
    return None if not times or any(t is None for t in times) else max(t for t in times if t is not None)


def summarise(rounds: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        mine = [r for r in rounds if r["deployment"] == name]
        rows.append(
            {
                "deployment": name,
                "text": DEPLOYMENTS[name]["text"],
                "messages_per_s": statistics.median(r["messages_per_s"] for r in mine),
                "p99_ms": statistics.median(r["p99_ms"] for r in mine if r["p99_ms"] is not None),
                "cpu_ms_per_message": statistics.median(r["cpu_ms_per_message"] for r in mine),
                "messages_per_commit": statistics.median(r["messages_per_commit"] for r in mine),
                "exactly_once": all(r["exactly_once"] for r in mine),
                # The slowest catch-up of the rounds (None: no consumer runs, or one did not catch up).
                "consumers_caught_up_after_s": _slowest_catch_up(mine),
            }
        )
    one = next((r for r in rows if r["deployment"] == "1"), None)
    for row in rows:
        if one and one["messages_per_s"]:
            row["vs_one_process"] = round(row["messages_per_s"] / one["messages_per_s"], 2)
    return rows


TARGET_SCALING = 1.5
TARGET_P99_MS = 100.0
TARGET_CPU_MS = 0.2
TARGET_PER_COMMIT = 20.0


def targets(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The scale-out issue's targets, on this machine's closed-loop runs."""
    by_name = {row["deployment"]: row for row in summary}
    one, two = by_name.get("1"), by_name.get("2")
    rows: list[dict[str, Any]] = []
    if one and two:
        rows.append(
            {
                "what": "2 API processes (Redis) vs 1, messages/s at 64 connections",
                "target": f">= {TARGET_SCALING:g}x",
                "measured": f"{two['vs_one_process']}x ({two['messages_per_s']}/s vs {one['messages_per_s']}/s)",
                "met": two["vs_one_process"] >= TARGET_SCALING,
            }
        )
        rows.append(
            {
                "what": "p99 at 64 connections, 2 API processes",
                "target": f"<= {TARGET_P99_MS:g} ms",
                "measured": f"{two['p99_ms']} ms",
                "met": two["p99_ms"] <= TARGET_P99_MS,
            }
        )
    if one:
        rows.append(
            {
                "what": "Hilo CPU per message, 1 process with every feature, saturated",
                "target": f"<= {TARGET_CPU_MS:g} ms",
                "measured": f"{one['cpu_ms_per_message']} ms",
                "met": one["cpu_ms_per_message"] <= TARGET_CPU_MS,
            }
        )
        rows.append(
            {
                "what": "messages per commit (all of the database's commits), 1 process, saturated",
                "target": f">= {TARGET_PER_COMMIT:g}",
                "measured": str(one["messages_per_commit"]),
                "met": one["messages_per_commit"] >= TARGET_PER_COMMIT,
            }
        )
    rows.append(
        {
            "what": "every acknowledged message stored exactly once, every deployment and round",
            "target": "yes",
            "measured": "yes" if all(row["exactly_once"] for row in summary) else "no",
            "met": all(row["exactly_once"] for row in summary),
        }
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--deployments", default="1,2,4,worker,bare")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="one round of 5 s, one process and bare")
    args = parser.parse_args()
    if args.quick:
        args.deployments, args.rounds, args.duration = "1,bare", 1, 5
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    names = args.deployments.split(",")
    unknown = [n for n in names if n not in DEPLOYMENTS]
    if unknown:
        raise SystemExit(f"unknown deployments {unknown}; choose from {list(DEPLOYMENTS)}")
    rounds = []
    with tempfile.TemporaryDirectory(prefix="hilo-saturation-") as tmp:
        for round_no in range(args.rounds):
            for name in names:
                rounds.append(run_round(name, args.duration, Path(tmp), round_no))
    summary = summarise(rounds, names)
    write_result(
        "saturation",
        {
            "quick": args.quick,
            "connections": CONNECTIONS,
            "duration_s": args.duration,
            "rounds": rounds,
            "summary": summary,
            "targets": targets(summary),
        },
    )


if __name__ == "__main__":
    main()
