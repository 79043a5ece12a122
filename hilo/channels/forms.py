"""Form-encoded webhook bodies sized up without parsing them: what a cap on fields needs."""

from __future__ import annotations

from email.message import Message


def form_field_count(content_type: str, body: bytes) -> int:
    """How many fields a urlencoded body, or parts a multipart one, holds, counted without parsing it.

    Bodies without a content type count as urlencoded unless they look like JSON, as the
    e-mail channel reads them (Mailgun sends some that way).
    """
    media_type = content_type.split(";")[0].strip().lower()
    if not media_type and body.lstrip()[:1] in (b"{", b"["):
        return 0
    if media_type in ("", "application/x-www-form-urlencoded"):
        return body.count(b"&") + 1 if body else 0
    if media_type == "multipart/form-data":
        boundary = multipart_boundary(content_type)
        # Each part starts with the delimiter, and the last delimiter closes the body.
        return max(body.count(b"--" + boundary) - 1, 0) if boundary else 0
    return 0


def multipart_boundary(content_type: str) -> bytes | None:
    """The boundary a multipart content type names, read as the MIME parser reads it."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_boundary()
    return boundary.encode("utf-8", "surrogateescape") if boundary else None
