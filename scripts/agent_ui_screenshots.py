"""Take the agent-UI screenshots in docs/screenshots/, in Spanish and English, from the demo data.

Run from the repository: `.venv/bin/python scripts/agent_ui_screenshots.py` (needs Debian's
/usr/bin/chromium). It seeds the demo into a temporary folder, adds a few things worth
showing (a note with a mention, an e-mail with quoted history, a failed reply), serves the
app on a loopback port and photographs the inbox, a conversation, the channel
administration (with a connection test and the health panel), the contacts directory, a
contact's profile, a CSV import after its dry run, the demo shop page with the chat widget
open, and the phone layout.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


IMPORT_CSV = """name,email,phone,city
Marta Gil,marta.gil@example.org,+34 612 345 678,Sevilla
Peter Walsh,peter.walsh@example.co.uk,,London
Ana Ruiz,not-an-address,,Bilbao
Jorge Navarro,,+34 699 111 222,Valencia
"""

WIDGET_MESSAGE = {
    "es": "Hola, ¿tenéis las Trail Pro en la talla 42?",
    "en": "Hi, do you have the Trail Pro in size 9?",
}


def showcase(settings: object) -> tuple[int, int, int]:
    """Pick a customer who wrote on several channels and add attributes, a note, a quoted e-mail and a failed reply.

    Returns the conversation, its contact and the e-mail channel the reply failed on.
    """
    from hilo.agents.models import Agent
    from hilo.channels.base import IdentityKind, IdentityRef, InboundMessage, SendError
    from hilo.channels.models import ChannelAccount
    from hilo.contacts import actions as contact_actions
    from hilo.contacts.models import Contact, Identity
    from hilo.conversations.models import Conversation, Message
    from hilo.ingest.deliveries import ingest_message
    from hilo.outbox import reply as reply_actions
    from hilo.outbox.delivery import record_failure
    from hilo.outbox.models import OutboxJob
    from hilo.runtime import Runtime

    runtime = Runtime(settings)  # type: ignore[arg-type]
    try:
        with runtime.transaction() as tx:
            session = tx.session
            conversation = session.execute(
                select(Conversation)
                .join(Identity, Identity.contact_id == Conversation.contact_id)
                .where(Conversation.status != "resolved", Identity.kind == "email")
                .order_by(Conversation.message_count.desc(), Conversation.id)
                .limit(1)
            ).scalar_one()
            email = session.execute(
                select(Identity).where(Identity.contact_id == conversation.contact_id, Identity.kind == "email")
            ).scalar_one()
            account = session.execute(select(ChannelAccount).where(ChannelAccount.kind == "email")).scalar_one()
            supervisor = session.execute(select(Agent).where(Agent.role == "supervisor")).scalar_one()
            colleague = session.execute(select(Agent).where(Agent.email == "james@example.com")).scalar_one()
            count = session.execute(
                select(func.count(Message.id)).where(Message.conversation_id == conversation.id)
            ).scalar_one()
            ingest_message(
                tx,
                account.view(),
                InboundMessage(
                    provider_message_id=f"<showcase-{conversation.id}-{count}@example.net>",
                    sender=IdentityRef(IdentityKind.EMAIL, email.value),
                    text="One more thing: can you send the invoice to my work address?",
                    subject=conversation.subject,
                    data={"quoted": "> On Monday, Hilo wrote:\n> Thanks, that's sorted now.\n>\n> Best regards"},
                ),
            )
            contact_actions.update_contact(
                tx,
                session.get_one(Contact, conversation.contact_id),
                custom_attributes={"city": "Madrid", "customer_since": "2023", "last_order": "#10472"},
            )
            conversation_id, contact_id, email_channel_id = conversation.id, conversation.contact_id, account.id
        with runtime.transaction(supervisor.id) as tx:
            current = tx.session.get(Conversation, conversation_id)
            assert current is not None
            reply_actions.add_note(
                tx, current, f"@{colleague.name} can you confirm her invoice address with billing?", [colleague.id]
            )
            failed = reply_actions.reply(tx, current, "Here is your invoice.", channel_account_id=account.id)
        with runtime.transaction() as tx:
            job = tx.session.execute(select(OutboxJob).where(OutboxJob.message_id == failed.id)).scalar_one()
            reason = "The recipient's mail server says this address does not exist; check the contact's e-mail address."
            record_failure(tx, job.id, SendError("smtp_550", reason, retryable=False))
        return conversation_id, contact_id, email_channel_id
    finally:
        runtime.close()


def serve(port: int) -> uvicorn.Server:
    from hilo.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    return server


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "hilo-demo-password")
    page.click("button[type=submit]")
    page.wait_for_url("**/inbox**")


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="hilo-shots-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # A public-looking base URL, so the webhook URLs in the pictures look like a real installation.
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
    conversation, contact, email_channel = showcase(settings)
    csv_file = folder / "customers.csv"
    csv_file.write_text(IMPORT_CSV, encoding="utf-8")
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
                colleague = browser.new_context(viewport={"width": 1280, "height": 800})
                other = colleague.new_page()
                sign_in(other, base, "sofia@example.com")
                other.goto(f"{base}/inbox?view=all&c={conversation}")
                page.goto(f"{base}/inbox?view=all&c={conversation}")
                page.wait_for_selector("#presence span")
                page.click(".tabs [data-mode=note]")
                page.locator("#composer-body").press_sequentially("@Lu")
                page.wait_for_selector("#suggest button")
                page.screenshot(path=str(OUT / f"conversation-{lang}.png"))
                page.keyboard.press("Escape")
                page.set_viewport_size({"width": 1280, "height": 800})
                page.goto(f"{base}/inbox?view=all&c={conversation}")
                page.wait_for_selector("#channel-picker option[data-kind]", state="attached")
                page.screenshot(path=str(OUT / f"inbox-{lang}.png"))
                page.goto(f"{base}/admin/channels")
                page.screenshot(path=str(OUT / f"admin-channels-{lang}.png"))
                card = page.locator(f"#channel-{email_channel}")
                card.locator("[data-action=channel-check]").click()
                card.locator("[data-check-result]:not([hidden])").wait_for()
                card.evaluate("card => window.scrollTo(0, card.getBoundingClientRect().top + window.scrollY - 72)")
                page.screenshot(path=str(OUT / f"admin-channel-health-{lang}.png"))
                page.goto(f"{base}/contacts")
                page.wait_for_selector(".contacts-main")
                page.screenshot(path=str(OUT / f"contacts-{lang}.png"))
                page.goto(f"{base}/contacts/{contact}")
                page.wait_for_selector(".contacts-main")
                page.screenshot(path=str(OUT / f"contact-profile-{lang}.png"))
                page.goto(f"{base}/contacts/import")
                page.set_input_files("#import-file", str(csv_file))
                page.click("#import-check")
                page.wait_for_selector("#import-report:not([hidden])")
                page.locator("#import-report").evaluate("report => report.scrollIntoView({block: 'end'})")
                page.screenshot(path=str(OUT / f"contacts-import-{lang}.png"))
                page.set_viewport_size({"width": 390, "height": 780})
                page.goto(f"{base}/inbox?view=all&c={conversation}")
                page.wait_for_selector("#channel-picker option[data-kind]", state="attached")
                page.screenshot(path=str(OUT / f"phone-{lang}.png"))
                shop = browser.new_context(viewport={"width": 1280, "height": 800}, locale=lang)
                visitor = shop.new_page()
                visitor.goto(f"{base}/demo/widget?lang={lang}")
                visitor.click(".launcher")
                visitor.wait_for_selector("#hilo-panel", state="visible")
                visitor.locator(".composer textarea").fill(WIDGET_MESSAGE[lang])
                visitor.locator(".composer .send").click()
                visitor.get_by_text(WIDGET_MESSAGE[lang]).wait_for()
                visitor.screenshot(path=str(OUT / f"demo-widget-{lang}.png"))
                shop.close()
                colleague.close()
                context.close()
            browser.close()
    finally:
        server.should_exit = True
    for path in sorted(OUT.glob("*.png")):
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB", file=sys.stdout)


if __name__ == "__main__":
    main()
