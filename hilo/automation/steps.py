"""What rules and macros do to a conversation: the steps, checked when saved and run in order.

Each step calls the core actions (assign, set_priority, set_labels, reply, add_note,
set_status) inside a savepoint, so one step that is refused (a channel that cannot be
used now, an agent who left) is reported and skipped without undoing the others.
Webhooks are called after the commit, never inside a transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from hilo.agents.models import Agent, Team
from hilo.automation.models import CannedResponse
from hilo.automation.variables import render
from hilo.conversations import actions as conv_actions
from hilo.conversations.models import Conversation
from hilo.errors import ActionError
from hilo.i18n import N_, normalize_locale
from hilo.outbox import reply as reply_actions
from hilo.routing import actions as routing_actions
from hilo.runtime import Tx

Locale = Literal["en", "es"]
Text = Annotated[str, Field(min_length=1, max_length=8000)]
LocalizedText = Text | dict[Locale, Text]


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssignAgent(_Step):
    type: Literal["assign_agent"]
    agent_id: int


class AssignTeam(_Step):
    type: Literal["assign_team"]
    team_id: int


class Unassign(_Step):
    type: Literal["unassign"]


class SetPriority(_Step):
    type: Literal["set_priority"]
    priority: Literal["none", "low", "medium", "high", "urgent"]


class AddLabels(_Step):
    type: Literal["add_labels"]
    labels: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=20)


class RemoveLabels(_Step):
    type: Literal["remove_labels"]
    labels: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=20)


class Reply(_Step):
    """Reply with a text (one per language), a canned response, or a channel template."""

    type: Literal["reply"]
    body: LocalizedText | None = None
    canned_response_id: int | None = None
    template: dict[str, Any] | None = None
    channel_account_id: int | None = None

    @model_validator(mode="after")
    def one_content(self) -> Reply:
        given = [x for x in (self.body, self.canned_response_id, self.template) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of body, canned_response_id or template")
        return self


class AddNote(_Step):
    type: Literal["add_note"]
    body: Text


class Snooze(_Step):
    type: Literal["snooze"]
    hours: float = Field(gt=0, le=24 * 90)


class Resolve(_Step):
    type: Literal["resolve"]


class RequireSkills(_Step):
    type: Literal["require_skills"]
    skills: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=20)


class Webhook(_Step):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://", max_length=2048)
    secret: str = Field(min_length=8, max_length=255)


Step = Annotated[
    AssignAgent
    | AssignTeam
    | Unassign
    | SetPriority
    | AddLabels
    | RemoveLabels
    | Reply
    | AddNote
    | Snooze
    | Resolve
    | RequireSkills
    | Webhook,
    Field(discriminator="type"),
]
STEPS: TypeAdapter[list[Step]] = TypeAdapter(list[Step])
MAX_STEPS = 20


def parse(raw: Any, *, allow_webhook: bool = True) -> list[Step]:
    """Check steps as given by a client; raise ActionError with the first problem."""
    try:
        steps = STEPS.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ActionError(
            "actions_invalid", N_("The actions are not valid: {problem}"), 422, problem=f"{where}: {first['msg']}"
        ) from exc
    if not steps or len(steps) > MAX_STEPS:
        raise ActionError("actions_invalid", N_("Give between 1 and 20 actions."), 422)
    if not allow_webhook and any(isinstance(s, Webhook) for s in steps):
        raise ActionError("webhook_not_allowed", N_("Only automation rules can call webhooks."), 422)
    return steps


def dump(steps: list[Step]) -> list[dict[str, Any]]:
    return [s.model_dump(exclude_none=True) for s in steps]


def stored(raw: list[dict[str, Any]]) -> list[Step]:
    """Steps as stored (validated when saved); a step a newer version dropped is skipped."""
    return STEPS.validate_python(raw)


@dataclass(frozen=True)
class PendingWebhook:
    url: str
    secret: str
    payload: dict[str, Any]
    # The rule that calls it: each attempt signs with the rule's secret of that moment.
    rule_id: int | None = None


@dataclass
class RunContext:
    """What a run knows beyond the conversation: who acts, the language, the trigger."""

    # The language to answer in, worked out the first time an answer needs it.
    language: Callable[[], str]
    variables: Callable[[str], Any]
    # Never answer automatically to an auto-reply, a bounce or an out-of-office message.
    trigger_auto_generated: bool = False
    dry_run: bool = False
    webhooks: list[PendingWebhook] = field(default_factory=list)
    event: str = ""

    @functools.cached_property
    def locale(self) -> str:
        return self.language()


def localized(text: str | Mapping[Any, str], locale: str) -> str:
    """Pick the text in `locale`, else English, else whichever is there."""
    if isinstance(text, str):
        return text
    wanted = normalize_locale(locale)
    return text.get(wanted) or text.get("en") or next(iter(text.values()))


def _reply_body(tx: Tx, step: Reply, ctx: RunContext) -> str | None:
    if step.body is not None:
        return render(localized(step.body, ctx.locale), ctx.variables)
    if step.canned_response_id is not None:
        canned = tx.session.get(CannedResponse, step.canned_response_id)
        if canned is None:
            raise ActionError("canned_response_not_found", N_("Canned response not found."), 422)
        text = (canned.translations or {}).get(normalize_locale(ctx.locale)) or canned.body
        return render(text, ctx.variables)
    return None


def describe(tx: Tx, conversation: Conversation, step: Step, ctx: RunContext) -> dict[str, Any]:
    """What a step would do to this conversation, for dry runs (nothing is written)."""
    out: dict[str, Any] = step.model_dump(exclude_none=True)
    if isinstance(step, Webhook):
        out.pop("secret", None)
    change = True
    if isinstance(step, AssignAgent):
        change = conversation.assignee_id != step.agent_id
    elif isinstance(step, AssignTeam):
        change = conversation.team_id != step.team_id
    elif isinstance(step, Unassign):
        change = conversation.assignee_id is not None
    elif isinstance(step, SetPriority):
        change = conversation.priority != step.priority
    elif isinstance(step, AddLabels | RemoveLabels):
        have = {label.name for label in conversation.labels}
        wanted = {name.strip().lower() for name in step.labels}
        change = bool(wanted - have) if isinstance(step, AddLabels) else bool(wanted & have)
    elif isinstance(step, Resolve):
        change = conversation.status != "resolved"
    elif isinstance(step, Reply):
        if ctx.trigger_auto_generated:
            out["skipped"] = "auto_generated"
            change = False
        else:
            out["text"] = _reply_body(tx, step, ctx)
    out["would_change"] = change
    return out


def run(tx: Tx, conversation: Conversation, steps: list[Step], ctx: RunContext) -> list[dict[str, Any]]:
    """Apply the steps in order; return one outcome per step."""
    outcomes = []
    for step in steps:
        published = len(tx.published)
        try:
            with tx.session.begin_nested():
                detail = _apply(tx, conversation, step, ctx)
            outcomes.append({"type": step.type, "done": True, **detail})
        except ActionError as exc:
            # The savepoint is rolled back; so must be the realtime payloads it queued.
            del tx.published[published:]
            tx.session.expire(conversation)
            outcomes.append({"type": step.type, "done": False, "code": exc.code})
    return outcomes


def _apply(tx: Tx, conversation: Conversation, step: Step, ctx: RunContext) -> dict[str, Any]:
    if isinstance(step, AssignAgent):
        agent = tx.session.get(Agent, step.agent_id)
        if agent is None or not agent.active:
            raise ActionError("agent_not_found", N_("Agent not found."), 422)
        conv_actions.assign(tx, conversation, agent_id=step.agent_id)
    elif isinstance(step, AssignTeam):
        if tx.session.get(Team, step.team_id) is None:
            raise ActionError("team_not_found", N_("Team not found."), 422)
        conv_actions.assign(tx, conversation, team_id=step.team_id)
    elif isinstance(step, Unassign):
        conv_actions.assign(tx, conversation, agent_id=None)
    elif isinstance(step, SetPriority):
        conv_actions.set_priority(tx, conversation, step.priority)
    elif isinstance(step, AddLabels | RemoveLabels):
        have = [label.name for label in conversation.labels]
        wanted = {name.strip().lower() for name in step.labels}
        names = sorted(set(have) | wanted) if isinstance(step, AddLabels) else [n for n in have if n not in wanted]
        conv_actions.set_labels(tx, conversation, names)
    elif isinstance(step, Reply):
        if ctx.trigger_auto_generated:
            return {"skipped": "auto_generated"}
        body = _reply_body(tx, step, ctx)
        message = reply_actions.reply(
            tx, conversation, body, channel_account_id=step.channel_account_id, template=step.template
        )
        return {"message_id": message.id}
    elif isinstance(step, AddNote):
        reply_actions.add_note(tx, conversation, render(step.body, ctx.variables))
    elif isinstance(step, Snooze):
        conv_actions.set_status(tx, conversation, "snoozed", tx.now + timedelta(hours=step.hours))
    elif isinstance(step, Resolve):
        conv_actions.set_status(tx, conversation, "resolved")
    elif isinstance(step, RequireSkills):
        routing_actions.require_skills(tx, conversation, step.skills)
    elif isinstance(step, Webhook):
        ctx.webhooks.append(
            PendingWebhook(
                step.url,
                step.secret,
                {"event": ctx.event, "conversation_id": conversation.id, "contact_id": conversation.contact_id},
            )
        )
    return {}
