"""Attachment bytes as HTTP responses: never active content (HTML, script, SVG) from Hilo's origin.

Anyone who writes to Hilo (a customer, a visitor, an agent) chooses a file's name and type.
Served as declared, an `.html` file would run in Hilo's origin when opened, and a `.js` file
would pass the pages' `script-src 'self'`. Only a short list of media types a browser shows
without running anything is served inline; any other type goes out as a download, and a type
that can hold markup or script goes out as bytes (`application/octet-stream`), which
`nosniff` keeps a browser from reading as anything else.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.responses import FileResponse

# Shown in the page (img, audio, video) or in the browser's own viewer (PDF).
INLINE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "audio/mpeg",
        "audio/mp4",
        "audio/aac",
        "audio/ogg",
        "audio/opus",
        "audio/wav",
        "audio/webm",
        "video/mp4",
        "video/webm",
        "video/ogg",
        "video/quicktime",
        "application/pdf",
    }
)
# Types a browser renders or runs: HTML, XHTML, SVG, XML (with XSLT), script, style sheets.
ACTIVE = re.compile(r"html|xml|svg|script|xsl|css|multipart")
MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
# Nothing in the file loads, runs or shares Hilo's origin, even if a browser renders it.
SANDBOX = "default-src 'none'; sandbox"


def served_type(content_type: str | None) -> tuple[str, bool]:
    """The media type a stored file is served with, and whether it may be shown inline."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if declared in INLINE_TYPES:
        return declared, True
    if not MEDIA_TYPE.fullmatch(declared) or ACTIVE.search(declared):
        return "application/octet-stream", False
    return declared, False


def file_response(path: Path, content_type: str | None, filename: str, headers: dict[str, str]) -> FileResponse:
    """A stored file, inline only when its type is on the safe list, never sniffed.

    PDFs go without the sandbox: browsers refuse to open their viewer in a sandboxed
    document, and the viewer runs outside the page's origin anyway."""
    media_type, inline = served_type(content_type)
    policy = {} if media_type == "application/pdf" else {"Content-Security-Policy": SANDBOX}
    return FileResponse(
        path,
        media_type=media_type,
        filename=filename,
        content_disposition_type="inline" if inline else "attachment",
        headers={**headers, "X-Content-Type-Options": "nosniff", **policy},
    )
