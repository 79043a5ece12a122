"""The agent workspace's own API: saved views, unread counts, read markers, notifications,
the multipart reply, and the pages' access rules."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from hilo.clock import FrozenClock
from tests.support import Api
from tests.web.test_login_redirect import next_on_page

PASSWORD = "correct horse battery"


def sign_in(client: TestClient, email: str = "admin@example.com") -> str:
    """Sign in with the session cookie, as the browser does; returns the CSRF token."""
    answer = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["csrf_token"])


def notifications(api: Api) -> list[dict[str, Any]]:
    api.client.app.state.notifier.drain()  # type: ignore[attr-defined]
    return list(api.ok(api.get("/api/v1/notifications"))["items"])


def test_saved_view_lifecycle_is_private_to_its_owner(api: Api) -> None:
    # given
    other = api.as_new_agent("olga@example.com")
    # when
    view = api.ok(
        api.post(
            "/api/v1/views",
            {
                "name": " Urgent billing ",
                "sort": "priority",
                "filters": {"status": ["open", "pending"], "label": "Billing"},
            },
        ),
        201,
    )
    # then: stored normalised, listed for its owner only
    assert view["name"] == "Urgent billing"
    assert view["filters"] == {"status": ["open", "pending"], "label": "billing"}
    assert [v["key"] for v in api.ok(api.get("/api/v1/views"))] == [f"saved-{view['id']}"]
    assert other.ok(other.get("/api/v1/views")) == []
    assert other.patch(f"/api/v1/views/{view['id']}", {"name": "Mine now"}).status_code == 404
    assert other.client.delete(f"/api/v1/views/{view['id']}", headers=other.headers).status_code == 404
    # when: renamed, then deleted
    renamed = api.ok(api.patch(f"/api/v1/views/{view['id']}", {"name": "Billing", "filters": {"assignee": "me"}}))
    deleted = api.client.delete(f"/api/v1/views/{view['id']}", headers=api.headers)
    # then
    assert renamed["filters"] == {"assignee": "me"}
    assert deleted.status_code == 204
    assert api.ok(api.get("/api/v1/views")) == []


def test_saved_view_refuses_unknown_filters_and_names(api: Api) -> None:
    # when
    unknown = api.post("/api/v1/views", {"name": "x", "filters": {"colour": "red"}})
    bad_status = api.post("/api/v1/views", {"name": "x", "filters": {"status": ["closed"]}})
    empty = api.post("/api/v1/views", {"name": "   ", "filters": {}})
    # then
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "filter_invalid"
    assert bad_status.json()["error"]["code"] == "filter_invalid"
    assert empty.json()["error"]["code"] == "name_required"


def test_unread_counts_follow_reads_and_new_customer_messages(api: Api, clock: FrozenClock) -> None:
    # given: two customers; one conversation assigned to the admin and labelled
    channel = api.api_channel()
    api.inbound(channel, "c1", "first")
    api.inbound(channel, "c2", "second")
    first, second = sorted(api.conversations(), key=lambda c: c["id"])
    api.ok(api.patch(f"/api/v1/conversations/{first['id']}", {"assignee_id": api.agent_id, "labels": ["vip"]}))
    team = api.ok(api.post("/api/v1/teams", {"name": "Billing", "member_ids": [api.agent_id]}), 201)
    api.ok(api.patch(f"/api/v1/conversations/{second['id']}", {"team_id": team["id"]}))
    saved = api.ok(api.post("/api/v1/views", {"name": "VIP", "filters": {"label": "vip"}}), 201)
    vip_waiting = api.ok(
        api.post("/api/v1/views", {"name": "VIP nobody has", "filters": {"label": "vip", "assignee": "none"}}), 201
    )
    # when
    counts = api.ok(api.get("/api/v1/views/counts"))["counts"]
    # then
    assert counts[f"saved-{vip_waiting['id']}"] == 0
    assert counts[f"team-{team['id']}"] == 1
    assert counts["status-pending"] == 0
    assert counts["all"] == 2
    assert counts["mine"] == 1
    assert counts["unassigned"] == 1
    assert counts["label-vip"] == 1
    assert counts[f"saved-{saved['id']}"] == 1
    assert counts[f"channel-{channel['id']}"] == 2
    assert counts["status-open"] == 2
    # when: the admin reads the first conversation
    assert api.ok(api.post(f"/api/v1/conversations/{first['id']}/read"))["changed"] is True
    assert api.ok(api.post(f"/api/v1/conversations/{first['id']}/read"))["changed"] is False
    # then
    counts = api.ok(api.get("/api/v1/views/counts"))["counts"]
    assert (counts["all"], counts["mine"], counts["label-vip"]) == (1, 0, 0)
    # when: the customer writes again later
    clock.advance(minutes=5)
    api.inbound(channel, "c1", "are you there?")
    # then: unread again, for this agent only
    assert api.ok(api.get("/api/v1/views/counts"))["counts"]["mine"] == 1
    other = api.as_new_agent("sara@example.com", role="supervisor")
    assert other.ok(other.get("/api/v1/views/counts"))["counts"]["all"] == 2


def test_unread_counts_respect_conversation_access(api: Api) -> None:
    # given: a team conversation an outside agent may not see
    channel = api.api_channel()
    team = api.ok(api.post("/api/v1/teams", {"name": "Billing"}), 201)
    api.inbound(channel, "c1", "invoice please")
    [conversation] = api.conversations()
    api.ok(api.patch(f"/api/v1/conversations/{conversation['id']}", {"team_id": team["id"]}))
    outsider = api.as_new_agent("out@example.com")
    # when
    counts = outsider.ok(outsider.get("/api/v1/views/counts"))["counts"]
    # then
    assert counts["all"] == 0
    assert outsider.post(f"/api/v1/conversations/{conversation['id']}/read").status_code == 404


def test_mention_assignment_and_reply_notify_the_right_agents(api: Api, clock: FrozenClock) -> None:
    # given
    channel = api.api_channel()
    bea = api.as_new_agent("bea@example.com")
    team = api.ok(api.post("/api/v1/teams", {"name": "Closed team"}), 201)
    outsider = api.as_new_agent("outsider@example.com")
    api.inbound(channel, "c1", "hello", name="Carmen")
    [conversation] = api.conversations()
    path = f"/api/v1/conversations/{conversation['id']}"
    # when: the admin mentions Bea (and themselves), then assigns the conversation to Bea
    api.ok(api.post(f"{path}/notes", {"body": "@Bea can you look?", "mentions": [bea.agent_id, api.agent_id]}), 201)
    api.ok(api.patch(path, {"assignee_id": bea.agent_id}))
    # then: Bea has a mention and an assignment; nobody notifies themselves
    kinds = [(n["kind"], n["actor_agent_id"]) for n in notifications(bea)]
    assert kinds == [("assigned", api.agent_id), ("mention", api.agent_id)]
    assert notifications(api) == []
    mention = notifications(bea)[1]
    assert mention["data"] == {
        "contact_name": "Carmen",
        "contact_id": conversation["contact_id"],
        "preview": "@Bea can you look?",
    }
    # when: the customer replies in Bea's conversation; a team change alone notifies nobody new
    clock.advance(minutes=1)
    api.inbound(channel, "c1", "thanks!")
    api.ok(api.patch(path, {"team_id": team["id"]}))
    # then
    assert [n["kind"] for n in notifications(bea)] == ["reply", "assigned", "mention"]
    # when: an agent who cannot see the (now team) conversation is mentioned
    api.ok(api.post(f"{path}/notes", {"body": "fyi", "mentions": [outsider.agent_id]}), 201)
    # then: they are not told about a conversation they could not open
    assert notifications(outsider) == []
    # when: Bea reads one, then all
    first = notifications(bea)[0]["id"]
    assert bea.ok(bea.post("/api/v1/notifications/read", {"ids": [first]}))["changed"] == 1
    assert bea.ok(bea.get("/api/v1/notifications", params={"unread": True}))["unread"] == 2
    assert bea.ok(bea.post("/api/v1/notifications/read", {}))["changed"] == 2
    # then
    assert bea.ok(bea.get("/api/v1/notifications"))["unread"] == 0


def test_reply_with_attachments_uses_the_reply_rules(api: Api, app_client: TestClient) -> None:
    # given: a conversation, and the admin signed in with the session cookie
    channel = api.api_channel()
    api.inbound(channel, "c1", "send me the invoice")
    [conversation] = api.conversations()
    seen = api.timeline(conversation["id"])[-1]["id"]
    csrf = sign_in(app_client)
    url = f"/api/v1/conversations/{conversation['id']}/messages/files"
    files = {"files": ("invoice.pdf", b"%PDF-1.4 fake", "application/pdf")}
    # when: without the CSRF header
    refused = app_client.post(url, data={"body": "Here it is"}, files=files)
    # then
    assert refused.status_code == 403
    # when: with it
    sent = app_client.post(
        url, data={"body": "Here it is", "seen_message_id": str(seen)}, files=files, headers={"X-CSRF-Token": csrf}
    )
    # then: an outbound message with its attachment, downloadable by agents
    assert sent.status_code == 201, sent.text
    [attachment] = sent.json()["attachments"]
    assert (attachment["kind"], attachment["filename"], attachment["size"]) == ("document", "invoice.pdf", 13)
    assert app_client.get(attachment["url"]).content == b"%PDF-1.4 fake"
    # when: another agent replied since `seen`
    other = api.as_new_agent("rival@example.com")
    other.ok(other.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Done already"}), 201)
    clash = app_client.post(
        url, data={"body": "Again", "seen_message_id": str(seen)}, files=files, headers={"X-CSRF-Token": csrf}
    )
    # then: the same collision check as the JSON endpoint
    assert clash.status_code == 409
    assert clash.json()["error"]["code"] == "collision"


def test_pages_need_a_session_and_the_right_role(app_client: TestClient, api: Api) -> None:
    # when: nobody is signed in
    home = app_client.get("/", follow_redirects=False)
    page = app_client.get("/inbox?view=all", follow_redirects=False)
    fragment = app_client.get("/ui/list", headers={"HX-Request": "true"}, follow_redirects=False)
    login = app_client.get("/login?next=//evil.example/x")
    # then
    assert (home.status_code, home.headers["location"]) == (303, "/login")
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=%2Finbox%3Fview%3Dall")
    assert (fragment.status_code, fragment.headers["hx-redirect"]) == (401, "/login")
    assert next_on_page(login.text) == "/inbox"
    # when: a plain agent signs in
    api.as_new_agent("plain@example.com")
    sign_in(app_client, "plain@example.com")
    # then
    assert app_client.get("/", follow_redirects=False).headers["location"] == "/inbox"
    assert app_client.get("/admin/channels").status_code == 403
    assert app_client.get("/inbox?view=saved-999", follow_redirects=False).headers["location"] == "/inbox"
    assert app_client.get("/ui/list?view=saved-999").json()["error"]["code"] == "view_not_found"
    assert "Content-Security-Policy" in app_client.get("/inbox").headers


def test_pages_speak_the_agents_language(app_client: TestClient, api: Api) -> None:
    # given: an agent who chose Spanish
    agent = api.as_new_agent("lucia@example.com")
    agent.ok(agent.patch("/api/v1/auth/me", {"locale": "es"}))
    sign_in(app_client, "lucia@example.com")
    # when
    page = app_client.get("/inbox").text
    # then
    assert '<html lang="es">' in page
    assert "Bandeja" in page
    assert "Mías" in page
    assert "Escribe una respuesta" not in page  # no conversation open: no composer


def test_timeline_fragments_show_one_thread_across_channels(app_client: TestClient, api: Api) -> None:
    # given: one customer on two channels, a note, a failed reply
    shop = api.api_channel("Shop")
    app = api.api_channel("App")
    api.inbound(shop, "s-1", "Where is my parcel?", phone="+34 600 000 777")
    api.inbound(app, "a-1", "Also, <b>bold</b> question https://example.com/track?id=1&x=2", phone="600000777")
    [conversation] = api.conversations()
    api.ok(api.post(f"/api/v1/conversations/{conversation['id']}/notes", {"body": "Check with @Admin"}), 201)
    sign_in(app_client)
    # when
    pane = app_client.get(f"/ui/conversations/{conversation['id']}").text
    # then: both messages, the switch of channel, the note and safe text
    assert "Where is my parcel?" in pane
    assert "Continued on App" in pane
    assert "&lt;b&gt;bold&lt;/b&gt;" in pane
    assert '<a href="https://example.com/track?id=1&amp;x=2"' in pane
    assert '<span class="mention">@Admin</span>' in pane
    # when: the page asks for what is newer than the first message
    first = api.timeline(conversation["id"])[0]["id"]
    newer = app_client.get(f"/ui/conversations/{conversation['id']}/messages", params={"after": first}).text
    # then
    assert "Where is my parcel?" not in newer
    assert "Continued on App" in newer
