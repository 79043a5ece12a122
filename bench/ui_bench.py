"""Agent UI benchmark (issue 5): inbox and 200-message conversation render time, webhook-to-page latency."""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from common import (
    BENCH_PASSWORD,
    HILO,
    hilo_cli,
    hilo_env,
    latency_summary,
    pg_url,
    running_server,
    setup_operator,
    status,
    write_result,
)
from inbox_data import FULL, is_ready

from hilo.channels.signing import HEADER, sign
from hilo.db.migrate import upgrade

RENDER_TARGET_P99_MS = 100.0
LIVE_TARGET_P99_MS = 1000.0
UI_EMAIL = "ui-bench@bench.example.com"
LONG_CONVERSATION = 424_242  # gets 200 extra messages for the run, deleted afterwards
EXTRA_MESSAGES = 200
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
COPIED = (
    "conversation_id, contact_id, channel_account_id, identity_id, direction, kind, author_agent_id, "
    "body, html, subject, data, status, auto_generated, created_at, sent_at"
)


@contextmanager
def long_conversation(url: str, conversation_id: int) -> Iterator[int]:
    """Give one conversation 200 more messages (copies of its own), removed again on exit."""
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM messages WHERE conversation_id = %s", (conversation_id,)).fetchone()
        rows = conn.execute(
            f"INSERT INTO messages ({COPIED}) "
            f"SELECT {COPIED.replace('created_at, sent_at', 'created_at + g * %s::interval, sent_at')} "
            "FROM generate_series(1, %s) g "
            "JOIN LATERAL (SELECT * FROM messages WHERE conversation_id = %s AND id <= %s "
            "ORDER BY id OFFSET (g %% %s) LIMIT 1) m ON true RETURNING id",
            ("1 minute", EXTRA_MESSAGES, conversation_id, 5_000_000, max(1, before[0] if before else 1)),
        ).fetchall()
        ids = [r[0] for r in rows]
        total = conn.execute("SELECT count(*) FROM messages WHERE conversation_id = %s", (conversation_id,)).fetchone()
        status(f"conversation {conversation_id}: {total[0] if total else '?'} messages")
        try:
            yield int(total[0]) if total else 0
        finally:
            conn.execute("DELETE FROM messages WHERE id = ANY(%s)", (ids,))
            status(f"removed the {len(ids)} added messages")


def ensure_ui_agent(env: dict[str, str]) -> None:
    """An admin who can sign in with a password (the generated admin has none); kept between runs."""
    try:
        args = ["--email", UI_EMAIL, "--name", "UI bench", "--role", "admin", "--password", BENCH_PASSWORD]
        hilo_cli(env, "agents", "create", *args)
    except RuntimeError as exc:
        if "exist" not in str(exc).lower() and "already" not in str(exc).lower():
            raise


def time_pages(base_url: str, paths: dict[str, str], count: int, warmup: int = 10) -> dict[str, Any]:
    """Sign in for a session cookie, then GET each page `count` times over one keep-alive connection."""
    cases: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=60) as client:
        client.post("/api/v1/auth/login", json={"email": UI_EMAIL, "password": BENCH_PASSWORD}).raise_for_status()
        for name, path in paths.items():
            status(f"ui render: {name} ({path})")
            for _ in range(warmup):
                client.get(path).raise_for_status()
            timings: list[float] = []
            size = 0
            for _ in range(count):
                started = time.perf_counter()
                response = client.get(path)
                timings.append(time.perf_counter() - started)
                response.raise_for_status()
                size = len(response.content)
            latency = latency_summary(timings)
            cases[name] = {
                "what": f"GET {path}",
                "latency": latency,
                "html_bytes": size,
                "rendered_messages": response.text.count('class="msg '),
            }
            status(f"  p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms")
    return cases


def render_part(count: int, work: Path) -> dict[str, Any]:
    url = pg_url(FULL.database)
    if not is_ready(FULL):
        raise RuntimeError(f"{FULL.database} does not hold the full data set; run bench/inbox_bench.py first")
    upgrade(url)
    env = hilo_env(url, work / "data")
    ensure_ui_agent(env)
    c = LONG_CONVERSATION
    with long_conversation(url, c) as messages, running_server(env, work / "server.log") as server:
        cases = time_pages(
            server.url,
            {
                "inbox_all": "/inbox?view=all",
                "inbox_list_fragment": "/ui/list?view=all",
                "conversation_fragment": f"/ui/conversations/{c}",
                "inbox_with_conversation": f"/inbox?view=all&c={c}",
            },
            count,
        )
    return {
        "data_set": {"database": FULL.database, "conversations": FULL.conversations, "messages": FULL.messages},
        "conversation": {"id": c, "messages": messages},
        "cases": cases,
    }


OBSERVER = """() => {
  window.seenAt = {};
  const mark = (text) => {
    for (const m of text.matchAll(/ui-bench-(\\d+)-end/g)) {
      if (window.seenAt[m[1]] === undefined) window.seenAt[m[1]] = Date.now();
    }
  };
  new MutationObserver((records) => {
    for (const r of records) {
      for (const node of r.addedNodes) {
        if (node.nodeType !== 1) continue;
        const found = node.matches('article.msg') ? [node] : node.querySelectorAll('article.msg');
        for (const a of found) mark(a.textContent);
      }
    }
  }).observe(document.body, {childList: true, subtree: true});
}"""


def post_webhook(client: httpx.Client, path: str, secret: str, n: int) -> None:
    body = orjson.dumps(
        {
            "id": f"ui-{n}-{uuid.uuid4().hex[:8]}",
            "contact": {"external_id": "ui-bench-visitor", "name": "UI Bench"},
            "text": f"Message ui-bench-{n}-end from the webhook",
        }
    )
    headers = {"content-type": "application/json", HEADER: sign(secret, body)}
    client.post(path, content=body, headers=headers).raise_for_status()


def live_part(count: int, work: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    data = work / "sqlite"
    data.mkdir()
    env = hilo_env(f"sqlite:///{data / 'hilo.db'}", data / "data")
    subprocess.run([HILO, "migrate"], env=env, check=True, capture_output=True)
    operator = setup_operator(env)
    seconds: list[float] = []
    with running_server(env, work / "sqlite-server.log") as server, httpx.Client(base_url=server.url) as hooks:
        post_webhook(hooks, operator.webhook_path, operator.secret, 0)
        api = {"authorization": f"Bearer {operator.token}"}
        conversation = httpx.get(f"{server.url}/api/v1/conversations?status=open", headers=api).json()["items"][0]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            context = browser.new_context(base_url=server.url)
            login = context.request.post(
                "/api/v1/auth/login", data={"email": "bench@example.com", "password": BENCH_PASSWORD}
            )
            assert login.ok, login.text()
            page = context.new_page()
            page.goto(f"/inbox?view=all&c={conversation['id']}")
            page.locator("article.msg").first.wait_for()
            page.wait_for_load_state("networkidle")
            page.evaluate(OBSERVER)
            status(f"live: {count} webhooks into conversation {conversation['id']}")
            for n in range(1, count + 1):
                sent_at = time.time()
                post_webhook(hooks, operator.webhook_path, operator.secret, n)
                page.wait_for_function("n => window.seenAt[n] !== undefined", arg=str(n), timeout=30_000)
                shown_at = page.evaluate("n => window.seenAt[n]", str(n))
                seconds.append(max(0.0, shown_at / 1000 - sent_at))
            browser.close()
    latency = latency_summary(seconds)
    status(f"  p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms")
    return {
        "database": "sqlite",
        "what": "signed webhook POST sent (client clock) -> message article added to the open agent page (Chromium)",
        "latency": latency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100, help="requests per page")
    parser.add_argument("--messages", type=int, default=200, help="webhooks for the live-update latency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hilo-ui-") as tmp:
        work = Path(tmp)
        render = render_part(args.requests, work)
        live = live_part(args.messages, work)
    targets = [
        {
            "what": f"{name}: p99",
            "target": f"<= {RENDER_TARGET_P99_MS:g} ms",
            "measured": f"{case['latency']['p99_ms']} ms",
            "met": case["latency"]["p99_ms"] <= RENDER_TARGET_P99_MS,
        }
        for name, case in render["cases"].items()
    ]
    targets.append(
        {
            "what": "webhook to visible in the open agent page (Chromium): p99",
            "target": f"< {LIVE_TARGET_P99_MS:g} ms",
            "measured": f"{live['latency']['p99_ms']} ms",
            "met": live["latency"]["p99_ms"] < LIVE_TARGET_P99_MS,
        }
    )
    path = write_result("ui", {**render, "live_update": live, "targets": targets})
    status(f"wrote {path}")


if __name__ == "__main__":
    main()
