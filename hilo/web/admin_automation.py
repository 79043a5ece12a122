"""Administration pages for routing, business hours, SLA policies and automation.

The pages only read, through the same functions the REST API serves (so they see what
the API shows and refuse whom it refuses); every change is made by `static/admin.js`
calling `/api/v1/routing/...`, `/api/v1/business-hours`, `/api/v1/sla-policies`,
`/api/v1/automation/...`, `/api/v1/macros` and `/api/v1/canned-responses`.
Administrators edit; supervisors, whom the API lets read all of it, see the pages
read-only; agents are refused.
"""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime
from functools import cache
from typing import Any

import holidays as holidays_lib
from babel import Locale
from babel.dates import format_date, format_time
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import select

from hilo.agents.access import Principal
from hilo.automation import queries as automation_queries
from hilo.automation.conditions import FIELDS, OPERATORS
from hilo.automation.models import AutomationRule, CannedResponse
from hilo.automation.schemas import CannedOut
from hilo.automation.variables import KNOWN
from hilo.channels.registry import kinds as channel_kinds
from hilo.contacts.models import Contact
from hilo.conversations.models import Conversation
from hilo.hours.calendars import cached
from hilo.hours.models import BusinessHours
from hilo.http.deps import RuntimeDep
from hilo.i18n import N_, N_plural, gettext
from hilo.routing import queries as routing_queries
from hilo.routing.access import is_supervisor
from hilo.routing.capacity import CHANNEL_CLASSES
from hilo.routing.models import RoutingTeam, SlaPolicy
from hilo.runtime import Runtime
from hilo.web.inbox import Directory, load_directory
from hilo.web.rendering import (
    CHANNEL_KINDS,
    FORMAT_LOCALES,
    PRIORITY_LABELS,
    STATUS_LABELS,
    js_plurals,
    render,
)
from hilo.web.views import UiAgent, base_context

router = APIRouter(include_in_schema=False)

EDITORS = ("admin",)
RUNS_SHOWN = 50
QUEUE_SHOWN = 500
HOLIDAYS_SHOWN = 3

WEEKDAYS = {
    "mon": N_("Monday"),
    "tue": N_("Tuesday"),
    "wed": N_("Wednesday"),
    "thu": N_("Thursday"),
    "fri": N_("Friday"),
    "sat": N_("Saturday"),
    "sun": N_("Sunday"),
}
STRATEGY_LABELS = {
    "round_robin": N_("Round robin"),
    "least_loaded": N_("Least loaded"),
    "skills": N_("By skills"),
}
STRATEGY_HINTS = {
    "round_robin": N_("Agents take turns."),
    "least_loaded": N_("The agent with the most room for this kind of channel."),
    "skills": N_("Only agents with every required skill, then the least loaded."),
}
PRESENCE_LABELS = {"online": N_("Online"), "away": N_("Away"), "offline": N_("Offline")}
CLASS_LABELS = {"call": N_("Calls"), "chat": N_("Chats"), "email": N_("E-mails")}
QUEUE_REASONS = {
    "no_agent_online": N_("Nobody of the team is online and available."),
    "no_capacity": N_("Everyone online is full for this kind of channel."),
    "no_skilled_agent": N_("Nobody online has the required skills."),
    "only_excluded_agents": N_("Only agents who gave it back could take it; they are held off it for a while."),
}
PRIORITY_OF_RANK = {0: "urgent", 1: "high", 2: "medium", 3: "low", 4: "none"}
EVENT_LABELS = {
    "conversation.created": N_("A conversation starts"),
    "message.received": N_("A customer's message arrives"),
    "conversation.status_changed": N_("The status changes"),
    "conversation.assigned": N_("The agent or team changes"),
    "conversation.reopened": N_("A customer writes to a resolved conversation"),
    "sla.warning": N_("An SLA target is near"),
    "sla.breached": N_("An SLA target is missed"),
    "conversation.idle": N_("No message for some hours"),
}
FIELD_GROUPS = {
    "conversation": N_("Conversation"),
    "contact": N_("Contact"),
    "message": N_("Message"),
    "other": N_("Other"),
}
FIELD_LABELS = {
    "conversation.status": N_("Status"),
    "conversation.priority": N_("Priority"),
    "conversation.team_id": N_("Team"),
    "conversation.assignee_id": N_("Assigned agent"),
    "conversation.labels": N_("Labels"),
    "conversation.channel": N_("Channel (the last one used)"),
    "conversation.channel_account_id": N_("Channel account"),
    "conversation.subject": N_("Subject"),
    "conversation.message_count": N_("Number of messages"),
    "conversation.idle_hours": N_("Hours without a message"),
    "contact.name": N_("Name"),
    "contact.locale": N_("Language"),
    "contact.email": N_("E-mail address"),
    "contact.phone": N_("Phone"),
    "contact.verified": N_("Has a verified identity"),
    "contact.attributes.": N_("Custom attribute…"),
    "message.text": N_("Text"),
    "message.language": N_("Language"),
    "message.channel": N_("Channel"),
    "message.channel_account_id": N_("Channel account"),
    "message.kind": N_("Kind"),
    "message.auto_generated": N_("Sent automatically (auto-reply, bounce)"),
    "business_hours.open": N_("Within business hours"),
    "event.sla_kind": N_("SLA target (for SLA events)"),
}
OPERATOR_LABELS = {
    "eq": N_("is"),
    "ne": N_("is not"),
    "in": N_("is one of"),
    "not_in": N_("is none of"),
    "contains": N_("contains"),
    "not_contains": N_("does not contain"),
    "starts_with": N_("starts with"),
    "matches": N_("matches the pattern"),
    "gt": N_("is more than"),
    "gte": N_("is at least"),
    "lt": N_("is less than"),
    "lte": N_("is at most"),
    "present": N_("is set"),
    "absent": N_("is not set"),
}
ACTION_LABELS = {
    "assign_agent": N_("Assign to an agent"),
    "assign_team": N_("Give to a team"),
    "unassign": N_("Unassign the agent"),
    "set_priority": N_("Set the priority"),
    "add_labels": N_("Add labels"),
    "remove_labels": N_("Remove labels"),
    "reply": N_("Reply to the customer"),
    "add_note": N_("Add a private note"),
    "snooze": N_("Snooze"),
    "resolve": N_("Resolve"),
    "require_skills": N_("Require skills"),
    "webhook": N_("Call a webhook"),
}
OUTCOME_LABELS = {"applied": N_("Applied"), "loop_stopped": N_("Stopped by loop protection")}
SLA_KIND_LABELS = {
    "first_response": N_("First response"),
    "next_response": N_("Next response"),
    "resolution": N_("Resolution"),
}
VARIABLE_HELP = {
    "contact.name": N_("the contact's full name"),
    "contact.first_name": N_("the contact's first name"),
    "contact.email": N_("the contact's e-mail address"),
    "contact.phone": N_("the contact's phone number"),
    "contact.attributes.<key>": N_("a custom attribute of the contact, e.g. contact.attributes.plan"),
    "agent.name": N_("the name of the agent who uses it"),
    "agent.first_name": N_("the first name of the agent who uses it"),
    "agent.email": N_("the e-mail address of the agent who uses it"),
    "conversation.id": N_("the conversation number"),
    "team.name": N_("the conversation's team"),
}

# Strings admin.js shows; the page carries their translation.
# Counts admin.js writes (see `tn` there).
JS_PLURALS = (
    N_plural("Scanned {n} conversation; {matched} would match.", "Scanned {n} conversations; {matched} would match."),
)
JS_STRINGS = (
    N_("Something went wrong; try again."),
    N_("Saved."),
    N_("Deleted."),
    N_("Delete {name}? This cannot be undone."),
    N_("Not valid JSON (line {line}, column {column}): check quotes and commas."),
    N_("Write times as HH:MM, for example 09:00 (24:00 is the end of the day)."),
    N_("A period must end after it starts."),
    N_("Periods of the same day cannot overlap."),
    N_("Add at least one open period."),
    N_("Enter a number."),
    N_("Enter a whole number of 0 or more."),
    N_("Fill this in."),
    N_("Set; leave empty to keep it"),
    N_("Write the text in English, Spanish or both."),
    N_("Choose a canned response."),
    N_("Add at least one action."),
    N_("This rule uses settings the editor cannot show; edit it as JSON."),
    N_('The conditions are an object with "all" and "any" lists.'),
    N_('The actions are a list of objects, each with a "type".'),
    N_("No conversation matches now."),
    N_("would change"),
    N_("no change"),
    N_("skipped: the last message was sent automatically"),
    N_("Open"),
    N_("Conversation #{id}"),
    N_("Give a name for the attribute."),
    N_("Choose an agent."),
    N_("Choose a team."),
)

# Suggestions offered for condition values (the API accepts any text).
VALUE_SUGGESTIONS = {
    "conversation.status": list(STATUS_LABELS),
    "conversation.priority": list(PRIORITY_LABELS),
    "contact.locale": ["en", "es"],
    "message.language": ["en", "es"],
    "event.sla_kind": list(SLA_KIND_LABELS),
    "message.kind": ["text", "image", "audio", "video", "document", "location", "sticker"],
}


def field_group(name: str) -> str:
    head = name.split(".", 1)[0]
    return head if head in FIELD_GROUPS else "other"


def translated(mapping: dict[str, str], locale: str) -> dict[str, str]:
    return {key: gettext(msgid, locale) for key, msgid in mapping.items()}


def duration_text(seconds: int | float | None, locale: str) -> str:
    """A target such as 5400 seconds as "1 h 30 min" (days, hours, minutes)."""
    if not seconds:
        return "—"
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = []
    if days:
        parts.append(gettext("{n} d", locale, n=days))
    if hours:
        parts.append(gettext("{n} h", locale, n=hours))
    if minutes or not parts:
        parts.append(gettext("{n} min", locale, n=minutes))
    return " ".join(parts)


def local_moment(moment: datetime, timezone: str, locale: str) -> str:
    """A moment as a weekday, day, month and time in a calendar's time zone (the UI's regional formats)."""
    zone = zoneinfo.ZoneInfo(timezone)
    regional = FORMAT_LOCALES.get(locale, FORMAT_LOCALES["en"])
    day = format_date(moment.astimezone(zone).date(), "full", locale=regional)
    return f"{day}, {format_time(moment, 'short', tzinfo=zone, locale=regional)}"


@cache
def supported_countries() -> dict[str, list[str]]:
    return {code: list(subdivisions) for code, subdivisions in holidays_lib.list_supported_countries().items()}


def country_names(locale: str) -> list[tuple[str, str]]:
    """Countries with public-holiday data, by their name in the agent's language."""
    territories = Locale.parse(locale).territories
    named = [(code, str(territories.get(code, code))) for code in supported_countries()]
    return sorted(named, key=lambda item: item[1].casefold())


def upcoming_holidays(row: Any, today: date, locale: str) -> list[tuple[date, str]]:
    """The next public holidays and extra closed dates of a calendar, soonest first."""
    found: list[tuple[date, str]] = []
    if row.holiday_country:
        years = [today.year, today.year + 1]
        days: dict[date, str] = {}
        try:
            country = holidays_lib.country_holidays(row.holiday_country, subdiv=row.holiday_subdivision, years=years)
            if locale in getattr(country, "supported_languages", ()):
                # The same days, named in the agent's language.
                country = holidays_lib.country_holidays(
                    row.holiday_country, subdiv=row.holiday_subdivision, years=years, language=locale
                )
            days = {day: str(name) for day, name in country.items()}
        except (NotImplementedError, ValueError):
            pass
        found.extend((day, name) for day, name in days.items() if day >= today)
    for text in row.closed_dates or []:
        day = date.fromisoformat(text)
        if day >= today:
            found.append((day, gettext("Closed", locale)))
    return sorted(found)[:HOLIDAYS_SHOWN]


# -- access and rendering ------------------------------------------------------------------


def forbidden(request: Request, principal: Principal) -> Response:
    return render(
        "forbidden.html", principal.locale, status_code=403, **base_context(request, principal), section="admin"
    )


def settings_page(
    request: Request, principal: Principal, template: str, page: str, data: dict[str, Any], **extra: Any
) -> Response:
    """Render an administration page; what admin.js needs goes in `data` (sent as JSON)."""
    can_edit = principal.role in EDITORS
    locale = principal.locale
    return render(
        template,
        locale,
        **base_context(request, principal),
        section="admin",
        page=page,
        can_edit=can_edit,
        admin_data={
            "page": page,
            "can_edit": can_edit,
            "strings": {msgid: gettext(msgid, locale) for msgid in JS_STRINGS},
            "plurals": js_plurals(locale, JS_PLURALS),
            **data,
        },
        duration=lambda seconds: duration_text(seconds, locale),
        **extra,
    )


def names(directory: Directory) -> dict[str, Any]:
    return {
        "agents": [{"id": a.id, "name": a.name} for a in directory.agents.values() if a.active],
        "teams": [{"id": t.id, "name": t.name} for t in directory.teams.values()],
        "channels": [{"id": c.id, "name": c.name, "kind": c.kind} for c in directory.channels.values()],
    }


def display_names(directory: Directory) -> dict[str, dict[int, str]]:
    """Names the rule and macro lists show instead of ids."""
    return {
        "agent_names": {a.id: a.name for a in directory.agents.values()},
        "team_names": {t.id: t.name for t in directory.teams.values()},
    }


def calendar_choices(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.db.read() as session:
        rows = session.execute(select(BusinessHours.id, BusinessHours.name).order_by(BusinessHours.name)).all()
    return [{"id": row.id, "name": row.name} for row in rows]


# -- routing ---------------------------------------------------------------------------------


@router.get("/admin/routing")
def admin_routing(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    """Each team's strategy and calendar, each agent's skills, capacity and load, and the queues."""
    if not is_supervisor(principal):
        return forbidden(request, principal)
    with runtime.db.read() as session:
        teams = routing_queries.list_team_routing(session, principal)
        agents = routing_queries.list_agent_routing(session, principal, runtime.clock.now())
        queue = routing_queries.queue(session, principal, limit=QUEUE_SHOWN)
        classes = routing_queries.capacity_classes(session)
        ids = [item.conversation_id for item in queue]
        contacts: dict[int, str | None] = {}
        if ids:
            found = session.execute(
                select(Conversation.id, Contact.name)
                .join(Contact, Contact.id == Conversation.contact_id)
                .where(Conversation.id.in_(ids))
            )
            contacts = {row.id: row.name for row in found}
    queues: dict[int | None, list[Any]] = {}
    for item in queue:
        queues.setdefault(item.team_id, []).append(item)
    return settings_page(
        request,
        principal,
        "admin/routing.html",
        "routing",
        {},
        teams=teams,
        agents=agents,
        queues=queues,
        contacts=contacts,
        calendars=calendar_choices(runtime),
        priority_of_rank=PRIORITY_OF_RANK,
        STRATEGY_LABELS=STRATEGY_LABELS,
        STRATEGY_HINTS=STRATEGY_HINTS,
        PRESENCE_LABELS=PRESENCE_LABELS,
        CLASS_LABELS=CLASS_LABELS,
        QUEUE_REASONS=QUEUE_REASONS,
        # Capacity only for the kinds of channel configured; a save keeps the others as they are.
        classes=classes,
        kept_classes=[k for k in CHANNEL_CLASSES if k not in classes],
    )


# -- business hours --------------------------------------------------------------------------


@router.get("/admin/business-hours")
def admin_business_hours(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    """Calendars: weekly periods in a time zone, public holidays, closed dates, out-of-office reply."""
    if not is_supervisor(principal):
        return forbidden(request, principal)
    locale = principal.locale
    now = runtime.clock.now()
    extra: dict[int, dict[str, Any]] = {}
    with runtime.db.read() as session:
        calendars = routing_queries.list_business_hours(session, now)
        directory = load_directory(session)
        rows = {row.id: row for row in session.execute(select(BusinessHours)).scalars()}
        team_uses = session.execute(
            select(RoutingTeam.business_hours_id, RoutingTeam.team_id).where(RoutingTeam.business_hours_id.is_not(None))
        ).all()
        policy_uses = session.execute(
            select(SlaPolicy.business_hours_id, SlaPolicy.name).where(SlaPolicy.business_hours_id.is_not(None))
        ).all()
        for item in calendars:
            row = rows[item.id]
            zone = zoneinfo.ZoneInfo(item.timezone)
            extra[item.id] = {
                "next_open": local_moment(item.next_open, item.timezone, locale),
                "closes": local_moment(cached(row).next_close(now), item.timezone, locale) if item.open_now else "",
                "holidays": [
                    (format_date(day, "medium", locale=FORMAT_LOCALES.get(locale, FORMAT_LOCALES["en"])), name)
                    for day, name in upcoming_holidays(row, now.astimezone(zone).date(), locale)
                ],
                "teams": [directory.teams[t].name for h, t in team_uses if h == item.id and t in directory.teams],
                "policies": [name for h, name in policy_uses if h == item.id],
            }
    data = {
        "items": [c.model_dump(mode="json") for c in calendars],
        "subdivisions": supported_countries(),
    }
    return settings_page(
        request,
        principal,
        "admin/business_hours.html",
        "business-hours",
        data,
        calendars=calendars,
        extra=extra,
        countries=country_names(locale),
        country_name=dict(country_names(locale)),
        timezones=sorted(zoneinfo.available_timezones()),
        WEEKDAYS=WEEKDAYS,
    )


# -- SLA policies ----------------------------------------------------------------------------


@router.get("/admin/sla")
def admin_sla(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    """SLA policies in the order they are tried, with their targets and conditions."""
    if not is_supervisor(principal):
        return forbidden(request, principal)
    with runtime.db.read() as session:
        policies = routing_queries.list_policies(session)
        directory = load_directory(session)
    calendars = calendar_choices(runtime)
    data = {"items": [p.model_dump(mode="json") for p in policies]}
    return settings_page(
        request,
        principal,
        "admin/sla.html",
        "sla",
        data,
        policies=policies,
        directory=directory,
        calendars=calendars,
        calendar_names={c["id"]: c["name"] for c in calendars},
        kinds=channel_kinds(),
        CHANNEL_KINDS=CHANNEL_KINDS,
        SLA_KIND_LABELS=SLA_KIND_LABELS,
    )


# -- rules -----------------------------------------------------------------------------------


def editor_data(directory: Directory, locale: str, canned: list[dict[str, Any]]) -> dict[str, Any]:
    """What the condition and action editors offer: fields, operators, names to pick from."""
    fields = [
        {"name": name, "kind": FIELDS.get(name, "any"), "group": field_group(name)}
        for name in (*FIELDS, "contact.attributes.")
    ]
    suggestions: dict[str, list[dict[str, str]]] = {
        name: [{"value": v, "label": v} for v in values] for name, values in VALUE_SUGGESTIONS.items()
    }
    kinds = [{"value": k, "label": f"{gettext(CHANNEL_KINDS.get(k, k), locale)} ({k})"} for k in channel_kinds()]
    suggestions["conversation.channel"] = suggestions["message.channel"] = kinds
    teams = [{"value": str(t.id), "label": t.name} for t in directory.teams.values()]
    agents = [{"value": str(a.id), "label": a.name} for a in directory.agents.values() if a.active]
    accounts = [{"value": str(c.id), "label": c.name} for c in directory.channels.values()]
    suggestions["conversation.team_id"] = teams
    suggestions["conversation.assignee_id"] = agents
    suggestions["conversation.channel_account_id"] = suggestions["message.channel_account_id"] = accounts
    return {
        "fields": fields,
        "operators": {kind: list(ops) for kind, ops in OPERATORS.items()},
        "suggestions": suggestions,
        "canned": canned,
        "labels": {
            "fields": translated(FIELD_LABELS, locale),
            "groups": translated(FIELD_GROUPS, locale),
            "operators": translated(OPERATOR_LABELS, locale),
            "actions": translated(ACTION_LABELS, locale),
            "events": translated(EVENT_LABELS, locale),
            "priorities": translated(PRIORITY_LABELS, locale),
            "statuses": translated(STATUS_LABELS, locale),
        },
        **names(directory),
    }


def canned_choices(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.db.read() as session:
        rows = session.execute(
            select(CannedResponse.id, CannedResponse.shortcut, CannedResponse.title).order_by(CannedResponse.shortcut)
        ).all()
    return [{"id": r.id, "shortcut": r.shortcut, "title": r.title} for r in rows]


@router.get("/admin/rules")
def admin_rules(request: Request, principal: UiAgent, runtime: RuntimeDep, rule_id: int | None = None) -> Response:
    """Automation rules by event, in the order they run; their dry run and recent runs; auto-resolve."""
    if not is_supervisor(principal):
        return forbidden(request, principal)
    locale = principal.locale
    with runtime.db.read() as session:
        rules = automation_queries.list_rules(session, principal)
        runs = automation_queries.list_runs(session, principal, rule_id=rule_id, limit=RUNS_SHOWN)
        settings = automation_queries.get_settings(session, principal)
        directory = load_directory(session)
        rule_names = {row.id: row.name for row in session.execute(select(AutomationRule.id, AutomationRule.name))}
    by_event: dict[str, list[Any]] = {}
    for rule in rules:
        by_event.setdefault(rule.event, []).append(rule)
    data = {
        "items": [r.model_dump(mode="json") for r in rules],
        "settings": settings.model_dump(mode="json"),
        **editor_data(directory, locale, canned_choices(runtime)),
    }
    return settings_page(
        request,
        principal,
        "admin/rules.html",
        "rules",
        data,
        by_event=by_event,
        runs=runs,
        rule_names=rule_names,
        run_filter=rule_id,
        settings=settings,
        EVENT_LABELS=EVENT_LABELS,
        ACTION_LABELS=ACTION_LABELS,
        OUTCOME_LABELS=OUTCOME_LABELS,
        FIELD_LABELS=FIELD_LABELS,
        OPERATOR_LABELS=OPERATOR_LABELS,
        FIELD_GROUPS=FIELD_GROUPS,
        PRIORITIES=PRIORITY_LABELS,
        VARIABLE_HELP=VARIABLE_HELP,
        variables=KNOWN,
        field_group=field_group,
        fields=[*FIELDS, "contact.attributes."],
        webhook=True,
        **display_names(directory),
    )


# -- macros and canned responses -------------------------------------------------------------


@router.get("/admin/macros")
def admin_macros(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    """Shared macros and your own: several actions an agent applies in one click."""
    if not is_supervisor(principal):
        return forbidden(request, principal)
    with runtime.db.read() as session:
        macros = automation_queries.list_macros(session, principal)
        directory = load_directory(session)
    data = {
        "items": [m.model_dump(mode="json") for m in macros],
        **editor_data(directory, principal.locale, canned_choices(runtime)),
    }
    return settings_page(
        request,
        principal,
        "admin/macros.html",
        "macros",
        data,
        macros=macros,
        directory=directory,
        ACTION_LABELS=ACTION_LABELS,
        PRIORITIES=PRIORITY_LABELS,
        VARIABLE_HELP=VARIABLE_HELP,
        variables=KNOWN,
        webhook=False,
        **display_names(directory),
    )


@router.get("/admin/canned-responses")
def admin_canned(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    """Saved answers agents insert by typing / and their shortcut, with variables."""
    if not is_supervisor(principal):
        return forbidden(request, principal)
    with runtime.db.read() as session:
        rows = list(session.execute(select(CannedResponse).order_by(CannedResponse.shortcut)).scalars())
        items = [CannedOut.model_validate(row, from_attributes=True) for row in rows]
    data = {"items": [c.model_dump(mode="json", exclude={"rendered"}) for c in items]}
    return settings_page(
        request,
        principal,
        "admin/canned_responses.html",
        "canned-responses",
        data,
        items=items,
        VARIABLE_HELP=VARIABLE_HELP,
        variables=KNOWN,
    )


def install(app: FastAPI) -> None:
    """Add the routing and automation administration pages to the app."""
    app.include_router(router)
