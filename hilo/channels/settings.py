"""Channel settings with structure (JSON objects and lists) as admins enter them.

The admin page and the command line send JSON text; the API sends JSON values. Each
adapter names its structured settings (`structured_settings`) and the channel actions
store them parsed, refusing what does not parse or has the wrong shape, never storing
text that a reader would later have to drop.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import orjson

from hilo.i18n import N_


class SettingShape(enum.Enum):
    """What a setting with structure holds once parsed: the API refuses anything else."""

    OBJECT = (dict,)
    LIST = (list,)
    TEXT_OR_OBJECT = (str, dict)
    TEXT_OR_LIST = (str, list)


_SHAPE_REASONS = {
    SettingShape.OBJECT: N_('The setting "{key}" must be a JSON object.'),
    SettingShape.LIST: N_('The setting "{key}" must be a JSON list.'),
    SettingShape.TEXT_OR_OBJECT: N_('The setting "{key}" must be plain text or a JSON object.'),
    SettingShape.TEXT_OR_LIST: N_('The setting "{key}" must be plain text or a JSON list.'),
}


class SettingInvalid(ValueError):
    """A structured setting that cannot be stored: a stable `code`, a msgid `reason` and its values."""

    def __init__(self, code: str, key: str, reason: str, **values: Any) -> None:
        super().__init__(f"{code}: {key}")
        self.code = code
        self.key = key
        self.reason = reason
        self.values = values


def check_structured(shapes: Mapping[str, SettingShape], values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings with each structured one parsed from JSON text and checked against its shape.

    The admin page and the command line send JSON text; storing the parsed value means a
    value that does not parse is refused here, never dropped later when it is read.
    """
    checked = dict(values)
    for key, shape in shapes.items():
        if key in values:
            checked[key] = _structured(key, shape, values[key])
    return checked


def _structured(key: str, shape: SettingShape, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ""
        if str in shape.value and text[0] not in "{[":
            return text
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise SettingInvalid(
                "setting_json_invalid",
                key,
                N_('The setting "{key}" is not valid JSON (line {line}, column {column}): check quotes and commas.'),
                line=exc.lineno,
                column=exc.colno,
            ) from exc
    if not isinstance(value, shape.value):
        raise SettingInvalid("setting_shape_invalid", key, _SHAPE_REASONS[shape])
    return value
