"""Every part of the hilo package sits in a layer of the import contract, so none escapes it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_module_of_hilo_is_in_a_layer() -> None:
    # given: the layers `make lint` checks (import-linter, pyproject.toml)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [contract] = config["tool"]["importlinter"]["contracts"]
    layered = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    # when: the package's top-level modules and subpackages
    parts = {
        f"hilo.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "hilo").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path.is_dir() and (path / "__init__.py").exists())
    }
    # then
    assert sorted(parts - layered) == [], "add these to a layer in pyproject.toml (and docs/architecture.md)"
    assert sorted(layered - parts) == [], "the contract names parts that no longer exist"
