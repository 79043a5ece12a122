"""Every message routing and automation can show has a Spanish translation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hilo
from hilo.i18n import catalog

PACKAGE = Path(hilo.__file__).parent


def msgids(package: str) -> set[str]:
    found = set()
    for path in (PACKAGE / package).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("N_", "_")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(str(node.args[0].value))
    return found


@pytest.mark.parametrize("package", ["routing", "automation"])
def test_every_message_is_translated(package: str) -> None:
    spanish = catalog("es")
    english = catalog("en")
    ids = msgids(package)
    assert ids
    assert sorted(i for i in ids if i not in spanish) == []
    assert sorted(i for i in ids if english.get(i, i) != i) == []
