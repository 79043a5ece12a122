"""Every event kind recorded in hilo/ is in the catalogue, and live updates carry what it says."""

from __future__ import annotations

import ast
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hilo.events import catalogue
from hilo.events.models import Event
from tests.support import Api

PACKAGE = Path(__file__).parents[2] / "hilo"
# Calls whose argument (by position or keyword) is an event kind.
RECORDING = {"record": 0, "Record": 0, "publish_live": 0, "_timeline_event": 2, "_sessions_revoked": None}
# Names assigned an event kind before it is recorded.
KIND_NAMES = {"kind", "KIND", "LINK_REFUSED"}


def _strings(node: ast.AST) -> Iterator[str]:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            yield inner.value


def recorded_kinds() -> dict[str, set[str]]:
    """Every literal event kind in the package, with the modules that record it."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        module = str(path.relative_to(PACKAGE.parent))
        for node in ast.walk(ast.parse(path.read_text())):
            values: list[str] = []
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name in RECORDING:
                    position = RECORDING[name]
                    if position is not None and len(node.args) > position:
                        values += _strings(node.args[position])
                    values += [v for k in node.keywords if k.arg == "kind" for v in _strings(k.value)]
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) in KIND_NAMES for t in node.targets):
                values += _strings(node.value)
            elif isinstance(node, ast.arguments):
                for arg, default in zip(node.args[-len(node.defaults) :], node.defaults, strict=False):
                    if arg.arg == "kind":
                        values += _strings(default)
            for value in values:
                if "." in value:
                    found.setdefault(value, set()).add(module)
    return found


def test_every_recorded_kind_is_in_the_catalogue() -> None:
    # given
    recorded = recorded_kinds()
    # then: nothing recorded that the catalogue does not name, and nothing named that nobody records
    assert {k: sorted(m) for k, m in recorded.items() if k not in catalogue.KINDS} == {}
    assert sorted(set(catalogue.KINDS) - set(recorded)) == []


def test_live_updates_carry_what_the_catalogue_says(api: Api, database_url: str) -> None:
    # given: a customer writes, an agent takes the conversation, notes and replies, and resolves it
    channel = api.api_channel()
    api.inbound(channel, "rosa", "Where is my order?")
    [conversation] = api.conversations()
    path = f"/api/v1/conversations/{conversation['id']}"
    api.ok(api.patch(path, {"assignee_id": api.agent_id}))
    api.ok(api.post(f"{path}/notes", {"body": "Checking", "mentions": []}), 201)
    api.ok(api.post(f"{path}/messages", {"body": "It ships today"}), 201)
    api.ok(api.patch(path, {"status": "resolved"}))
    # when
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.read() as session:
        rows = session.execute(select(Event.kind, Event.payload).where(Event.payload.is_not(None))).all()
    # then: each live update has every key its kind's type requires
    checked = 0
    for kind, payload in rows:
        shape: Any = catalogue.KINDS[kind]
        if shape is None:
            continue
        required = shape.__required_keys__
        assert required <= set(payload), f"{kind} lacks {sorted(required - set(payload))}"
        hints = typing.get_type_hints(shape)
        assert set(payload) - {"type"} <= set(hints) | {"only_agent_ids", "revoked_session_ids"}, kind
        checked += 1
    assert {kind for kind, _ in rows} >= {"message.created", "conversation.assigned", "conversation.status_changed"}
    assert checked >= 5


# Modules whose handlers pick events by kind.
HANDLERS = ("routing/handlers.py", "automation/rules.py", "web/notifier.py")


def _is_kind(node: ast.AST) -> bool:
    """`kind`, `event.get("type")` or `event["type"]`: an expression that holds an event's kind."""
    if isinstance(node, ast.Name):
        return node.id == "kind"
    if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "get" and node.args:
        return isinstance(node.args[0], ast.Constant) and node.args[0].value == "type"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "type"
    return False


def compared_kinds(path: Path) -> set[str]:
    """The kinds a handler module compares an event's kind with (literals, and module-level names)."""
    tree = ast.parse(path.read_text())
    named: dict[str, ast.AST] = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if not any(_is_kind(operand) for operand in operands):
            continue
        for operand in operands:
            value = named.get(operand.id, operand) if isinstance(operand, ast.Name) else operand
            found.update(s for s in _strings(value) if "." in s)
    return found


def test_handlers_compare_kinds_the_catalogue_names() -> None:
    # given
    paths = [PACKAGE / module for module in HANDLERS]
    # when
    compared = {module: compared_kinds(path) for module, path in zip(HANDLERS, paths, strict=False)}
    # then: a typo in a handler's kind would make it react to nothing
    assert all(compared.values()), compared
    assert {m: sorted(k - set(catalogue.KINDS)) for m, k in compared.items() if k - set(catalogue.KINDS)} == {}
