"""The widget follows a routing business-hours calendar and agents' routing presence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hilo.clock import FrozenClock
from tests.support import Api
from tests.widget.widget_support import (
    ORIGIN,
    agent_online,
    business_hours,
    open_widget,
    token_of,
    widget_channel,
)


def _config(client: TestClient, channel: dict[str, Any], locale: str = "en") -> dict[str, Any]:
    response = client.get(f"/widget/{token_of(channel)}/config", params={"locale": locale}, headers={"origin": ORIGIN})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("timezone", "holidays", "now", "opens", "english", "spanish"),
    [
        pytest.param(
            # Friday 19:30 in Mexico City is already Saturday in UTC.
            "America/Mexico_City",
            {},
            datetime(2026, 3, 7, 1, 30, tzinfo=UTC),
            "2026-03-09T09:00:00-06:00",
            "We're back Monday at 09:00",
            "Volvemos el lunes a las 09:00",
            id="weekend",
        ),
        pytest.param(
            # Friday 18:30 in Madrid; Monday 12 October is Spain's national holiday.
            "Europe/Madrid",
            {"holiday_country": "ES"},
            datetime(2026, 10, 9, 16, 30, tzinfo=UTC),
            "2026-10-13T09:00:00+02:00",
            "We're back Tuesday at 09:00",
            "Volvemos el martes a las 09:00",
            id="weekend-and-holiday",
        ),
    ],
)
def test_outside_business_hours_the_config_says_closed_until_the_next_opening(
    api: Api,
    app_client: TestClient,
    clock: FrozenClock,
    timezone: str,
    holidays: dict[str, str],
    now: datetime,
    opens: str,
    english: str,
    spanish: str,
) -> None:
    # given: a widget following a calendar, with the free-text hours left as they were
    hours = business_hours(api, timezone, **holidays)
    channel = widget_channel(api, business_hours_id=hours["id"], business_hours="Mon-Fri 9-18", reply_time="minutes")
    clock.set(now)
    # when
    with agent_online(app_client, api):
        config = _config(app_client, channel)
        spanish_config = _config(app_client, channel, "es")
    # then: closed, whoever is online; the visitor reads when the team is back, in the calendar's zone
    assert config["open_now"] is False
    assert config["agents_online"] is True
    assert datetime.fromisoformat(config["next_open"]) == datetime.fromisoformat(opens)
    assert config["next_open"] == opens
    assert config["timezone"] == timezone
    assert config["next_open_text"] == english
    assert config["reply_time"] == english
    assert config["business_hours"] == ""
    assert spanish_config["next_open_text"] == spanish and spanish_config["reply_time"] == spanish


def test_inside_business_hours_with_an_available_agent_the_team_is_open(
    api: Api, app_client: TestClient, clock: FrozenClock
) -> None:
    # given: Monday 10:00 in Madrid
    hours = business_hours(api, "Europe/Madrid")
    channel = widget_channel(api, business_hours_id=hours["id"], reply_time="minutes")
    clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    # when
    nobody = _config(app_client, channel)
    with agent_online(app_client, api):
        config = _config(app_client, channel, "es")
    # then
    assert nobody["open_now"] is True and nobody["agents_online"] is False
    assert config["open_now"] is True and config["agents_online"] is True
    assert config["next_open"] is None and config["next_open_text"] == ""
    assert config["reply_time"] == "Suele responder en unos minutos"


def test_inside_business_hours_an_agent_who_is_away_leaves_the_widget_offline(
    api: Api, app_client: TestClient, clock: FrozenClock
) -> None:
    # given: open hours, and the only agent has Hilo open
    hours = business_hours(api, "Europe/Madrid")
    channel = widget_channel(api, business_hours_id=hours["id"])
    clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with open_widget(app_client, token_of(channel)) as widget:
        assert widget.next_of("welcome")["agents_online"] is False
        with agent_online(app_client, api):
            widget.next_of("agents", online=True)
            # when: the agent sets themselves away
            api.ok(api.put("/api/v1/presence/me", {"availability": "away"}))
            config = _config(app_client, channel)
            # then: the config and the open widget both say nobody is available
            live = widget.next_of("agents", online=False)
    assert config["open_now"] is True
    assert config["agents_online"] is False
    assert live == {"type": "agents", "online": False}


def test_a_calendar_that_does_not_exist_is_refused_and_none_falls_back_to_the_text(
    api: Api, app_client: TestClient
) -> None:
    # given
    hours = business_hours(api, "Europe/Madrid")
    channel = widget_channel(api, business_hours={"en": "Mon-Fri 9-18", "es": "L-V 9-18 h"}, reply_time="day")
    url = f"/api/v1/channels/{channel['id']}"
    # when
    unknown = api.post(
        "/api/v1/channels", {"kind": "widget", "name": "Other", "settings": {"business_hours_id": hours["id"] + 1}}
    )
    not_an_id = api.patch(url, {"settings": {"business_hours_id": "office"}})
    chosen = api.patch(url, {"settings": {"business_hours_id": str(hours["id"])}})
    unset = api.patch(url, {"settings": {"business_hours_id": None}})
    fallback = _config(app_client, channel, "es")
    # then
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "business_hours_unknown"
    assert str(hours["id"] + 1) in unknown.json()["error"]["message"]
    assert unknown.json()["error"]["details"] == [{"field": "settings.business_hours_id"}]
    assert not_an_id.status_code == 422 and not_an_id.json()["error"]["code"] == "business_hours_unknown"
    # the admin page sends the id as text; it is stored as the number it names
    assert chosen.status_code == 200 and chosen.json()["config"]["business_hours_id"] == hours["id"]
    assert unset.status_code == 200 and "business_hours_id" not in unset.json()["config"]
    assert fallback["open_now"] is True and fallback["next_open"] is None
    assert fallback["business_hours"] == "L-V 9-18 h"
    assert fallback["reply_time"] == "Suele responder en menos de un día"
    assert len(api.ok(api.get("/api/v1/channels"))) == 1
