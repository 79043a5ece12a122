"""Pure rules of the channel plumbing: media limits, content types, signed media links."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hilo.channels.media import DEFAULT_MAX_MEDIA_BYTES, DEFAULT_MEDIA_TYPES, effective_type, media_limits
from hilo.errors import ActionError
from hilo.messaging.links import media_link, read_media_link
from tests.conftest import make_settings

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_media_limits_default_and_configured() -> None:
    # given / when
    default = media_limits({})
    configured = media_limits({"max_media_bytes": "1048576", "media_types": "image/*, application/pdf"})
    listed = media_limits({"media_types": ["IMAGE/PNG"], "max_media_bytes": "lots"})
    # then
    assert (default.max_bytes, default.types) == (DEFAULT_MAX_MEDIA_BYTES, DEFAULT_MEDIA_TYPES)
    assert configured.max_bytes == 1048576
    assert configured.allows("image/heic") and configured.allows("application/pdf")
    assert not configured.allows("application/zip")
    assert (listed.max_bytes, listed.types) == (DEFAULT_MAX_MEDIA_BYTES, ("image/png",))


@pytest.mark.parametrize(
    ("content_type", "allowed"),
    [
        ("image/jpeg", True),
        ("audio/ogg", True),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", True),
        ("application/x-msdownload", False),
        ("text/html", False),
        ("application/octet-stream", False),
    ],
)
def test_default_media_types(content_type: str, allowed: bool) -> None:
    assert media_limits({}).allows(content_type) is allowed


def test_effective_type_prefers_the_webhook_then_the_download_then_the_name() -> None:
    assert effective_type("image/jpeg", "application/octet-stream", None) == "image/jpeg"
    assert effective_type(None, "audio/ogg; codecs=opus", None) == "audio/ogg"
    assert effective_type(None, "application/octet-stream", "factura.pdf") == "application/pdf"
    assert effective_type("", None, None) == "application/octet-stream"


def test_media_link_round_trip_expiry_and_forgery(tmp_path: Path) -> None:
    # given
    settings = make_settings("sqlite://", tmp_path)
    link = media_link(settings, NOW, 42)
    token = link.rsplit("/", 1)[1]
    # when / then
    assert link.startswith("http://testserver/media/")
    assert read_media_link(settings, NOW + timedelta(hours=1), token) == 42
    with pytest.raises(ActionError) as expired:
        read_media_link(settings, NOW + timedelta(hours=3), token)
    assert (expired.value.code, expired.value.status) == ("media_link_expired", 410)
    other_key = replace(settings, secret_key="another-installation")
    with pytest.raises(ActionError) as forged:
        read_media_link(other_key, NOW, token)
    assert (forged.value.code, forged.value.status) == ("media_link_invalid", 404)
