"""The API documentation page works offline: Swagger UI comes from Hilo itself, under a CSP."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_api_docs_reference_only_served_same_origin_assets(app_client: TestClient) -> None:
    # when
    page = app_client.get("/api/docs")
    # then: every script and stylesheet is a path on this server, and each one is served
    assert page.status_code == 200
    html = page.text
    assets = re.findall(r'<(?:script|link)[^>]*\b(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in asset for asset in assets)
    assert any("swagger-ui.css" in asset for asset in assets)
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        served = app_client.get(asset)
        assert served.status_code == 200, asset
        assert served.content, asset
    assert "cdn" not in html.lower() and "https://" not in html


def test_api_docs_run_no_inline_script_and_send_a_strict_csp(app_client: TestClient) -> None:
    # when
    page = app_client.get("/api/docs")
    # then: the only scripts are files, and the policy forbids inline code and other origins
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert 'data-openapi-url="/api/openapi.json"' in page.text
    assert app_client.get("/api/openapi.json").json()["info"]["title"] == "Hilo"


def test_api_docs_title_follows_the_browser_language(app_client: TestClient) -> None:
    # when
    spanish = app_client.get("/api/docs", headers={"Accept-Language": "es-ES,es;q=0.9"})
    # then
    assert "<title>API de Hilo</title>" in spanish.text
    assert '<html lang="es">' in spanish.text
