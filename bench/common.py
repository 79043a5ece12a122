"""Shared machinery of the benchmarks: scratch databases, `hilo serve` processes, statistics, results."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import Engine, event

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
BIN = Path(sys.executable).parent
HILO = str(BIN / "hilo")
PG_ADMIN_URL = os.environ.get("HILO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_PASSWORD = "bench-password-not-secret"  # noqa: S105 - scratch databases only


def pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"


def create_database(name: str) -> str:
    """Create (after dropping any leftover) a PostgreSQL database and return its URL."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return pg_url(name)


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_exists(name: str) -> bool:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile (nearest rank) of `values`; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def latency_summary(seconds: list[float]) -> dict[str, Any]:
    return {
        "count": len(seconds),
        "p50_ms": ms(percentile(seconds, 50)),
        "p90_ms": ms(percentile(seconds, 90)),
        "p99_ms": ms(percentile(seconds, 99)),
        "max_ms": ms(max(seconds)) if seconds else None,
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    memory_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        with psycopg.connect(PG_ADMIN_URL) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            postgres = row[0] if row else "unknown"
    except psycopg.OperationalError:
        postgres = "unreachable"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "postgresql": postgres,
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
        # The machine may be shared: its load when a result was written puts the figures in context.
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), **data}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as children:
                found.extend(int(child) for child in children.read().split())
    return found


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user and system) of these processes and all their descendants so far, from
    /proc/<pid>/stat: uvicorn's worker processes count with the `hilo serve` that started them."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pending = list(pids)
    while pending:
        pid = pending.pop()
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            pending.extend(_children(pid))
    return total


def hilo_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HILO_DATABASE_URL=database_url,
        HILO_DATA_DIR=str(data_dir),
        HILO_SECRET_KEY="bench-secret-key",
        HILO_LOG_LEVEL="WARNING",
        HILO_OUTBOUND_ALLOW_NETWORKS="127.0.0.0/8",
        HILO_REDIS_URL="",
    )
    env.update(extra)
    return env


def hilo_cli(env: dict[str, str], *args: str) -> Any:
    """Run a `hilo` command as an operator would and return its JSON output."""
    done = subprocess.run([HILO, *args], env=env, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"hilo {' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class Operator:
    """An admin agent with a personal API token, and a generic API channel to post to."""

    agent_id: int
    token: str
    channel_id: int
    webhook_path: str
    secret: str


def setup_operator(env: dict[str, str], email: str = "bench@example.com", outbound_url: str = "") -> Operator:
    agent = hilo_cli(
        env, "agents", "create", "--email", email, "--name", "Bench", "--role", "admin", "--password", BENCH_PASSWORD
    )
    token = hilo_cli(env, "tokens", "create", "--email", email, "--name", "bench")
    channel_args = ["channels", "add", "api", "--name", "Bench source", "--json"]
    if outbound_url:
        channel_args += ["--set", f"outbound_url={outbound_url}"]
    channel = hilo_cli(env, *channel_args)
    return Operator(
        agent_id=agent["id"],
        token=token["token"],
        channel_id=channel["id"],
        webhook_path=f"/webhooks/api/{channel['id']}",
        secret=channel["secret"],
    )


class HiloServer:
    """A real `hilo serve` process (uvicorn) on a loopback port."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None, workers: int = 1) -> None:
        self.env = env
        self.workers = workers
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [HILO, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hilo serve exited with {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"hilo serve did not answer within {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@contextmanager
def running_server(env: dict[str, str], log_path: Path, workers: int = 1) -> Iterator[HiloServer]:
    server = HiloServer(env, log_path, workers=workers)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def counting_statements(engine: Engine) -> Iterator[Callable[[], int]]:
    """Count the SQL statements `engine` runs inside the block (a `before_cursor_execute` listener)."""
    count = 0

    def listener(*_args: Any) -> None:
        nonlocal count
        count += 1

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield lambda: count
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def status(text: str) -> None:
    """Progress on stderr, so a long run shows where it is."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def time_requests(base_url: str, token: str, paths: list[str], warmup: int = 20) -> dict[str, Any]:
    """GET each path in turn over one keep-alive connection; latency as the client sees it."""
    headers = {"authorization": f"Bearer {token}"}
    timings: list[float] = []
    sizes: list[int] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for path in paths[:warmup]:
            client.get(path).raise_for_status()
        for path in paths:
            started = time.perf_counter()
            response = client.get(path)
            timings.append(time.perf_counter() - started)
            response.raise_for_status()
            sizes.append(len(response.json().get("items", [])) if path.startswith("/api/v1/conversations") else 1)
    return {**latency_summary(timings), "mean_items": round(sum(sizes) / len(sizes), 1) if sizes else 0}


def statements_per_request(env: dict[str, str], token: str, paths: list[str]) -> dict[str, Any]:
    """Count the SQL statements of each request in an in-process app (same code, same database)."""
    from contextvars import ContextVar

    from fastapi.testclient import TestClient

    from hilo.app import create_app
    from hilo.settings import load_settings

    in_request: ContextVar[bool] = ContextVar("bench_in_request", default=False)

    class Marker:
        """Mark what an HTTP request runs (its thread-pool work included) as part of it."""

        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            token_ = in_request.set(scope["type"] == "http")
            try:
                await self.app(scope, receive, send)
            finally:
                in_request.reset(token_)

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        app = create_app(load_settings())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    app.add_middleware(Marker)
    engine = app.state.runtime.db.engine
    counts: list[int] = []
    seen = 0

    def listener(*_args: Any) -> None:
        nonlocal seen
        if in_request.get():
            seen += 1

    event.listen(engine, "before_cursor_execute", listener)
    try:
        # No lifespan: background threads stay off and only request work runs.
        client = TestClient(app)
        headers = {"authorization": f"Bearer {token}"}
        client.get(paths[0], headers=headers).raise_for_status()  # the token's last-used stamp
        for path in paths:
            seen = 0
            client.get(path, headers=headers).raise_for_status()
            counts.append(seen)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
        app.state.runtime.close()
    return {"min": min(counts), "max": max(counts), "mean": round(sum(counts) / len(counts), 2)}
