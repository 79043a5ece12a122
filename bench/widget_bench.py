"""Chat widget benchmark: bundle size, reply-to-display latency, and open widget sockets per process.

Three measurements against a real `hilo serve` process on a scratch SQLite database:

1. The widget bundle (script + styles) as served, gzipped.
2. Time from an agent's reply (the API POST leaving) to its display in the widget, in
   headless Chromium: the page records `Date.now()` when the widget shows a message (its
   "hilo:message" event); both clocks are this machine's. 200 replies, one at a time.
3. How many widget websockets one API process holds, and its memory per connection: a
   separate client process (`websockets` library) opens them all, each as its own visitor
   (tokens minted with the server's secret key, as the widget would get them), checks each
   answers a ping, and holds them while the server's resident memory is read.

    python bench/widget_bench.py [--quick] [--sockets 5000] [--replies 200]

Results: bench/results/widget.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from common import (
    HILO,
    hilo_cli,
    hilo_env,
    latency_summary,
    rss_mb,
    running_server,
    setup_operator,
    status,
    write_result,
)

from hilo.widget.routes import bundle
from hilo.widget.visitors import issue_token

SECRET_KEY = "bench-secret-key"  # hilo_env's HILO_SECRET_KEY: the server signs visitor tokens with it
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
OPEN_CONCURRENCY = 200


def raise_open_files() -> int:
    """Lift the soft limit on open files to the hard one; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------- socket client process


async def _hold(args: argparse.Namespace) -> None:
    from websockets.asyncio.client import connect

    url = f"{args.url.replace('http', 'ws', 1)}/widget/{args.token}/ws"
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    sockets: list[Any] = []
    failures: dict[str, int] = {}

    async def open_one() -> None:
        async with gate:
            try:
                ws = await connect(url, origin=args.origin, open_timeout=60, ping_interval=None, max_queue=16)
                hello = {"type": "hello", "visitor": issue_token(SECRET_KEY, args.account)}
                await ws.send(orjson.dumps(hello).decode())
                welcome = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
                if welcome.get("type") != "welcome":
                    raise RuntimeError(str(welcome.get("code")))
                sockets.append(ws)
            except Exception as exc:  # counted, reported: the run goes on
                code = getattr(getattr(exc, "rcvd", None), "code", None)
                name = type(exc).__name__ + (f" {code}" if code else "")
                failures[name] = failures.get(name, 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(open_one() for _ in range(args.sockets)))
    opened_in = time.monotonic() - started

    async def ping(ws: Any) -> bool:
        try:
            await ws.send('{"type":"ping"}')
            return orjson.loads(await asyncio.wait_for(ws.recv(), 60)).get("type") == "pong"
        except Exception:
            return False

    answered = sum(await asyncio.gather(*(ping(ws) for ws in sockets)))
    report = {"opened": len(sockets), "failures": failures, "seconds": opened_in, "pong": answered}
    print(json.dumps(report), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


def hold_main(args: argparse.Namespace) -> None:
    raise_open_files()
    asyncio.run(_hold(args))


# ---------------------------------------------------------------- the customer's page


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Bench shop</title></head><body>
<script>window.shown = {}; addEventListener("hilo:message", e => { window.shown[e.detail.id] = Date.now(); });</script>
<script async src="%(hilo)s/widget/%(token)s/widget.js" data-token="%(token)s" data-locale="en"></script>
</body></html>"""


@contextlib.contextmanager
def site(hilo: str, token: str) -> Iterator[str]:
    body = (PAGE % {"hilo": hilo, "token": token}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@contextlib.contextmanager
def agent_online(url: str, token: str) -> Iterator[None]:
    from websockets.sync.client import connect

    ws = connect(f"{url.replace('http', 'ws', 1)}/api/v1/ws?token={token}")

    def drain() -> None:
        with contextlib.suppress(Exception):
            for _frame in ws:
                pass

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        ws.close()
        thread.join(timeout=10)


def reply_latency(url: str, api_token: str, site_url: str, replies: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_token}"}, timeout=30)
    seconds: list[float] = []
    with agent_online(url, api_token), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(site_url)
        page.locator("button.launcher").click()
        page.locator("#hilo-input").fill("Hello, a question about my order")
        page.locator("#hilo-input").press("Enter")
        page.locator("li.msg.mine[data-id]").wait_for()
        [conversation] = api.get("/api/v1/conversations").json()["items"]
        for n in range(replies):
            sent_at = time.time()
            answer = api.post(f"/api/v1/conversations/{conversation['id']}/messages", json={"body": f"Reply {n}"})
            answer.raise_for_status()
            message_id = answer.json()["id"]
            page.wait_for_function("id => window.shown[id] !== undefined", arg=message_id, timeout=30_000)
            shown_at = page.evaluate("id => window.shown[id]", message_id)
            seconds.append(max(0.0, shown_at / 1000 - sent_at))
        browser.close()
    api.close()
    return latency_summary(seconds)


def concurrent_sockets(server_pid: int, url: str, widget: dict[str, Any], origin: str, count: int) -> dict[str, Any]:
    baseline = rss_mb(server_pid)
    client = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--hold",
            # One argument each: a token may begin with "-", which argparse would take for an option.
            f"--url={url}",
            f"--token={widget['config']['public_token']}",
            "--account",
            str(widget["id"]),
            "--origin",
            origin,
            "--sockets",
            str(count),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdout is not None and client.stdin is not None
    report = json.loads(client.stdout.readline())
    held = rss_mb(server_pid)
    health = httpx.get(f"{url}/healthz", timeout=30).status_code
    client.stdin.write("close\n")
    client.stdin.flush()
    client.wait(timeout=300)
    opened = report["opened"]
    return {
        "target": count,
        "opened": opened,
        "answered_ping": report["pong"],
        "failures": report["failures"],
        "open_seconds": round(report["seconds"], 2),
        "server_rss_before_mb": baseline,
        "server_rss_holding_mb": held,
        "kb_per_connection": round((held - baseline) * 1024 / opened, 1) if opened else None,
        "healthz_while_holding": health,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer replies and sockets")
    parser.add_argument("--sockets", type=int, default=None)
    parser.add_argument("--replies", type=int, default=None)
    parser.add_argument("--hold", action="store_true", help=argparse.SUPPRESS)
    for name in ("url", "token", "origin"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--account", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold:
        hold_main(args)
        return
    sockets = args.sockets or (500 if args.quick else 5000)
    replies = args.replies or (20 if args.quick else 200)
    open_files = raise_open_files()
    script = bundle()
    results: dict[str, Any] = {
        "bundle": {"bytes": len(script.body), "gzip_bytes": len(script.gzipped), "limit_gzip_bytes": 50 * 1024},
        "database": "sqlite",
        "open_files_limit": open_files,
        # The machine may be shared: its load says how much the figures can be trusted.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    status(f"bundle: {len(script.gzipped)} bytes gzipped")
    with tempfile.TemporaryDirectory(prefix="hilo-widget-bench-") as scratch:
        data = Path(scratch)
        env = hilo_env(f"sqlite:///{data / 'hilo.db'}", data / "data")
        subprocess.run([HILO, "migrate"], env=env, check=True, capture_output=True)
        operator = setup_operator(env)
        with running_server(env, data / "serve.log") as server:
            widget = hilo_cli(env, "channels", "add", "widget", "--name", "Bench chat", "--json")
            token = widget["config"]["public_token"]
            with site(server.url, token) as site_url:
                httpx.patch(
                    f"{server.url}/api/v1/channels/{widget['id']}",
                    json={"settings": {"allowed_origins": [site_url]}},
                    headers={"Authorization": f"Bearer {operator.token}"},
                    timeout=30,
                ).raise_for_status()
                status(f"reply-to-display latency over {replies} replies")
                results["reply_to_display"] = reply_latency(server.url, operator.token, site_url, replies)
                status(f"holding {sockets} widget sockets")
                results["concurrent_sockets"] = concurrent_sockets(server.pid, server.url, widget, site_url, sockets)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = write_result("widget", results)
    status(f"results in {path}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
