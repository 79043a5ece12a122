"""The operator's command line, run as a real process."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hilo.settings import local_url
from tests.fakes.server import free_port


def hilo(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HILO_DATA_DIR": str(tmp_path),
        "HILO_LOG_LEVEL": "WARNING",
        "HILO_BASE_URL": "https://support.example.com",
    }
    env.pop("HILO_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "hilo.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


def test_channels_add_and_list_as_json(tmp_path: Path) -> None:
    # when
    added = hilo(
        tmp_path, "channels", "add", "api", "--name", "Shop", "--set", "outbound_url=https://shop.test/h", "--json"
    )
    listed = hilo(tmp_path, "channels", "list", "--json")
    # then
    assert added.returncode == 0, added.stderr
    channel = json.loads(added.stdout)
    assert channel["webhook_url"] == f"https://support.example.com/webhooks/api/{channel['id']}"
    assert channel["config"] == {"outbound_url": "https://shop.test/h"} and channel["secret"]
    assert [c["id"] for c in json.loads(listed.stdout)] == [channel["id"]]
    assert "secret" not in json.loads(listed.stdout)[0]


def test_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = hilo(tmp_path, "channels", "add", "api", "--name", "Shop", "--set", "colour=red")
    assert result.returncode == 2
    assert "setting_unknown" in result.stderr


def test_structured_settings_from_the_command_line_are_parsed_or_refused(tmp_path: Path) -> None:
    # when
    good = hilo(
        tmp_path,
        "channels",
        "add",
        "widget",
        "--name",
        "Site",
        "--set",
        'allowed_origins=["https://shop.example"]',
        "--json",
    )
    broken = hilo(tmp_path, "channels", "add", "widget", "--name", "Site 2", "--set", "allowed_origins=[https://x")
    listed = hilo(tmp_path, "channels", "list", "--json")
    # then: stored as the list it names, not as text; the broken one is refused and not created
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["config"]["allowed_origins"] == ["https://shop.example"]
    assert broken.returncode == 2 and "setting_json_invalid" in broken.stderr
    assert [c["name"] for c in json.loads(listed.stdout)] == ["Site"]


def test_agents_and_tokens_create(tmp_path: Path) -> None:
    # when
    agent = hilo(
        tmp_path,
        "agents",
        "create",
        "--email",
        "Ops@Example.com",
        "--name",
        "Ops",
        "--role",
        "admin",
        "--password",
        "a long password",
    )
    token = hilo(tmp_path, "tokens", "create", "--email", "ops@example.com")
    missing = hilo(tmp_path, "tokens", "create", "--email", "nobody@example.com")
    # then
    assert agent.returncode == 0, agent.stderr
    assert json.loads(agent.stdout)["email"] == "ops@example.com"
    assert json.loads(token.stdout)["token"].startswith("hilo_")
    assert missing.returncode != 0 and "no agent" in missing.stderr


def test_serve_on_another_port_without_a_base_url_gives_addresses_on_that_port(tmp_path: Path) -> None:
    # given: no HILO_BASE_URL, an admin with a token made on the command line, a port that is not 8000
    env = {**os.environ, "HILO_DATA_DIR": str(tmp_path), "HILO_LOG_LEVEL": "WARNING", "HILO_RUN_WORKER": "0"}
    for name in ("HILO_BASE_URL", "HILO_DATABASE_URL", "HILO_HOST", "HILO_PORT"):
        env.pop(name, None)

    def cli(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "hilo.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    cli(
        "agents",
        "create",
        "--email",
        "ops@example.com",
        "--name",
        "Ops",
        "--role",
        "admin",
        "--password",
        "a long password",
    )
    token = cli("tokens", "create", "--email", "ops@example.com")["token"]
    port = free_port()
    log = tmp_path / "serve.log"
    # when: the server is started on that port and a channel is added through its API
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "hilo.cli", "serve", "--port", str(port)], env=env, stdout=output, stderr=output
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        body = {"kind": "telegram", "name": "Bot", "settings": {"bot_token": "1:x", "secret_token": "s"}}
        created = httpx.post(f"{url}/api/v1/channels", json=body, headers=headers, timeout=20)
        widget = httpx.post(
            f"{url}/api/v1/channels", json={"kind": "widget", "name": "Site"}, headers=headers, timeout=20
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
    # then: the webhook URL and the widget's script are on the port the server was started on
    assert created.status_code == 201, created.text
    assert created.json()["webhook_url"] == f"http://127.0.0.1:{port}/webhooks/telegram/{created.json()['id']}"
    assert widget.json()["script_url"].startswith(f"http://127.0.0.1:{port}/widget/")


def test_the_base_url_defaults_to_where_the_server_listens() -> None:
    assert local_url("127.0.0.1", 8123) == "http://127.0.0.1:8123"
    assert local_url("0.0.0.0", 8123) == "http://127.0.0.1:8123"
    assert local_url("support.example.com", 80) == "http://support.example.com:80"
    assert local_url("::1", 8123) == "http://[::1]:8123"


def _serving(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """`hilo serve` as `make run` starts it, with its output read line by line."""
    environ = {**os.environ, "HILO_DATA_DIR": str(tmp_path), "HILO_LOG_LEVEL": "WARNING", **env}
    for name in ("HILO_DATABASE_URL", "HILO_BASE_URL", "HILO_HOST", "HILO_PORT"):
        if name not in env:
            environ.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "hilo.cli", "serve", *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _announced(process: subprocess.Popen[str]) -> list[str]:
    """The lines `hilo serve` printed up to and including the one naming its address."""
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("  Press Ctrl+C"):
            return lines
    raise AssertionError(f"hilo serve stopped without naming its address: {lines} {process.stderr}")


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def test_serve_listens_on_hilo_port_and_prints_its_address_once_it_answers(tmp_path: Path) -> None:
    # given
    port = free_port()
    process = _serving(tmp_path, HILO_PORT=str(port))
    try:
        # when: it names its address
        lines = _announced(process)
        # then: the address is the first thing it says, and it answers there at that moment
        url = f"http://127.0.0.1:{port}"
        assert lines[0] == f"Hilo is ready at {url}"
        assert f"  Agent inbox:     {url}/inbox" in lines
        assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
        # with no demo seeded there is no demo sign-in to offer
        assert not any("Demo" in line for line in lines)
    finally:
        _stop(process)


def _listening_sockets(port: int) -> int:
    """Sockets listening on `port` on this machine (IPv4), from /proc/net/tcp."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
            count += 1
    return count


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads connections on Linux")
def test_serve_with_two_workers_gives_each_its_own_listening_socket(tmp_path: Path) -> None:
    # given
    port = free_port()
    process = _serving(tmp_path, "--workers", "2", HILO_PORT=str(port))
    try:
        # when: it names its address
        lines = _announced(process)
        # then: it answers there at that moment, and the kernel has two sockets to spread
        # connections over (one per worker) rather than one both workers race to accept on
        url = f"http://127.0.0.1:{port}"
        assert lines[0] == f"Hilo is ready at {url}"
        assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
        deadline = time.monotonic() + 30
        while _listening_sockets(port) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _listening_sockets(port) == 2
    finally:
        _stop(process)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads connections on Linux")
def test_serve_with_two_workers_on_a_port_in_use_says_so_and_stops(tmp_path: Path) -> None:
    # given: something else already listening on the port
    port = free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        # when
        process = _serving(tmp_path, "--workers", "2", HILO_PORT=str(port))
        try:
            _out, err = process.communicate(timeout=60)
        finally:
            _stop(process)
    # then: a clear error, not a second server sharing the port
    assert process.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in err


def test_serve_port_option_wins_and_links_follow_the_address(tmp_path: Path) -> None:
    # given: a demo, HILO_PORT set, and --port on the command line
    assert hilo(tmp_path, "demo").returncode == 0
    port = free_port()
    process = _serving(tmp_path, "--host", "127.0.0.1", "--port", str(port), HILO_PORT="1")
    try:
        # when
        lines = _announced(process)
        url = f"http://127.0.0.1:{port}"
        page = httpx.get(f"{url}/demo/widget", timeout=5)
        # then: it listens where the option says, offers the demo's sign-in and chat page
        assert lines[0] == f"Hilo is ready at {url}"
        assert "  Demo sign-in:    admin@example.com / hilo-demo-password" in lines
        assert any(line.startswith(f"  Demo chat page:  {url}/demo/widget") for line in lines)
        assert page.status_code == 200 and "/widget.js" in page.text
    finally:
        _stop(process)


def test_links_hilo_hands_out_follow_hilo_host_and_port(tmp_path: Path) -> None:
    # given: no HILO_BASE_URL, only where `make run` tells Hilo to listen
    env = {k: v for k, v in os.environ.items() if k not in ("HILO_BASE_URL", "HILO_DATABASE_URL")}
    env.update(HILO_DATA_DIR=str(tmp_path), HILO_LOG_LEVEL="WARNING", HILO_HOST="127.0.0.1", HILO_PORT="8123")
    run = [sys.executable, "-m", "hilo.cli", "channels"]
    # when
    subprocess.run(
        [*run, "add", "telegram", "--name", "Bot", "--set", "bot_token=1:x", "--set", "secret_token=s"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    listed = subprocess.run([*run, "list", "--json"], env=env, capture_output=True, text=True, timeout=120, check=True)
    # then
    [channel] = json.loads(listed.stdout)
    assert channel["webhook_url"] == f"http://127.0.0.1:8123/webhooks/telegram/{channel['id']}"
