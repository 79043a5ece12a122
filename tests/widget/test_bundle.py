"""The widget's script and styles stay small: at most 50 KB gzipped, as the site owner downloads them."""

from __future__ import annotations

import gzip

from hilo.widget.routes import STATIC, bundle

LIMIT = 50 * 1024


def test_widget_bundle_is_at_most_50_kb_gzipped() -> None:
    # given: every file the widget ships
    raw = b"".join(path.read_bytes() for path in sorted(STATIC.iterdir()) if path.is_file())
    # when
    separately = len(gzip.compress(raw, 9))
    served = len(bundle().gzipped)
    # then
    assert served <= LIMIT, f"widget bundle is {served} bytes gzipped"
    assert separately <= LIMIT
    assert gzip.decompress(bundle().gzipped) == bundle().body
