"""Attachment storage: one interface, local files by default."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class LocalStorage:
    """Content-addressed files under a folder; keys are relative paths."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, data: bytes, filename: str | None = None) -> str:
        digest = hashlib.sha256(data).hexdigest()
        name = _SAFE.sub("_", filename or "file")[-80:] or "file"
        key = f"{digest[:2]}/{digest}/{name}"
        path = self.root / key
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return key

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("storage key escapes the storage root")
        return path

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()
