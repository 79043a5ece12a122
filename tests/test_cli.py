"""The operator's command line, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


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
