"""Take the routing and automation administration screenshots in docs/screenshots/ (Spanish and English).

Run from the repository: `.venv/bin/python scripts/admin_automation_screenshots.py` (needs
Debian's /usr/bin/chromium). Like `agent_ui_screenshots.py` it seeds the demo into a
temporary folder (which holds the shop's office calendar, SLA policies, canned responses
and a billing rule), routes the teams by that calendar, and photographs the business-hours
page and the rules page with a dry run of the demo's rule open.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agent_ui_screenshots import CHROMIUM_ARGS, OUT, ROOT, free_port, serve, sign_in  # noqa: E402

SHOTS = ("admin-business-hours", "admin-rules")


def configure(settings: object) -> int:
    """Route the demo's teams by its office calendar; returns the id of the demo's rule.

    The demo already holds the desk's calendar, SLA policies, canned responses and its
    billing rule, so the pictures show those rather than a second, made-up set.
    """
    from hilo.agents.models import Team
    from hilo.automation.models import AutomationRule
    from hilo.hours.models import BusinessHours
    from hilo.routing import actions as routing
    from hilo.runtime import Runtime

    runtime = Runtime(settings)  # type: ignore[arg-type]
    try:
        with runtime.transaction() as tx:
            calendar = tx.session.execute(select(BusinessHours).where(BusinessHours.is_default)).scalar_one()
            for team in tx.session.execute(select(Team).order_by(Team.id)).scalars():
                routing.save_team(
                    tx,
                    team.id,
                    strategy="least_loaded",
                    auto_assign=True,
                    reassign_when_offline=False,
                    business_hours_id=calendar.id,
                )
            return tx.session.execute(select(AutomationRule.id).order_by(AutomationRule.id).limit(1)).scalar_one()
    finally:
        runtime.close()


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="hilo-shots-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    os.environ.update(
        HILO_DATA_DIR=str(folder),
        HILO_RUN_WORKER="0",
        HILO_BASE_URL="https://support.example.com",
        HILO_LOG_LEVEL="WARNING",
    )
    from hilo.db.migrate import upgrade
    from hilo.demo import seed
    from hilo.settings import load_settings

    settings = load_settings()
    upgrade(settings.database_url)
    seed(settings)
    rule_id = configure(settings)
    server = serve(port)
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for lang in ("es", "en"):
                context = browser.new_context(viewport={"width": 1440, "height": 860}, locale=lang)
                page = context.new_page()
                sign_in(page, base, "admin@example.com")
                page.click(f"[data-action=locale][data-locale={lang}]")
                page.wait_for_selector(f"html[lang={lang}]")
                page.goto(f"{base}/admin/business-hours")
                page.wait_for_selector("body[data-admin-ready]", state="attached")
                page.screenshot(path=str(OUT / f"admin-business-hours-{lang}.png"))
                page.goto(f"{base}/admin/rules")
                page.wait_for_selector("body[data-admin-ready]", state="attached")
                page.click(f"[data-admin-action=dry-run][data-id='{rule_id}']")
                page.wait_for_selector("#dry-run-dialog .dry-run-summary")
                page.screenshot(path=str(OUT / f"admin-rules-{lang}.png"))
                context.close()
            browser.close()
    finally:
        server.should_exit = True
    for name in SHOTS:
        for path in sorted(OUT.glob(f"{name}-*.png")):
            print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB", file=sys.stdout)


if __name__ == "__main__":
    main()
