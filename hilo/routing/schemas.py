"""Routing's request and response models, shared by its REST routes, its queries and the pages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from hilo.http.schemas import ConversationOut

Strategy = Literal["round_robin", "least_loaded", "skills"]
Locale = Literal["en", "es"]
ChannelClass = Literal["call", "chat", "email"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class TeamRoutingIn(BaseModel):
    strategy: Strategy = "round_robin"
    auto_assign: bool = True
    reassign_when_offline: bool = False
    business_hours_id: int | None = None


class TeamRoutingOut(BaseModel):
    team_id: int
    name: str
    configured: bool
    strategy: str
    auto_assign: bool
    reassign_when_offline: bool
    business_hours_id: int | None
    queued: int


class AgentRoutingIn(BaseModel):
    skills: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=50)
    capacity: dict[ChannelClass, Annotated[int, Field(ge=0, le=1000)]] | None = None


class AgentRoutingOut(BaseModel):
    agent_id: int
    name: str
    skills: list[str]
    capacity: dict[str, int]
    availability: str
    presence: str
    load: dict[str, int]


class PresenceIn(BaseModel):
    availability: Literal["available", "away"]


class PresenceOut(BaseModel):
    agent_id: int
    name: str
    availability: str
    presence: str


class BusinessHoursIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    timezone: str = Field(max_length=64)
    periods: dict[Weekday, list[tuple[str, str]]]
    holiday_country: str | None = Field(default=None, max_length=8)
    holiday_subdivision: str | None = Field(default=None, max_length=16)
    closed_dates: list[date] = Field(default_factory=list, max_length=1000)
    out_of_office_message: dict[Locale, Annotated[str, Field(max_length=4000)]] | None = None
    is_default: bool = False


class BusinessHoursOut(BaseModel):
    id: int
    name: str
    timezone: str
    periods: dict[str, list[list[str]]]
    holiday_country: str | None
    holiday_subdivision: str | None
    closed_dates: list[str]
    out_of_office_message: dict[str, str] | None
    is_default: bool
    open_now: bool
    next_open: datetime


class SlaConditions(BaseModel):
    priorities: list[Literal["none", "low", "medium", "high", "urgent"]] = Field(default_factory=list)
    channel_kinds: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list)
    team_ids: list[int] = Field(default_factory=list)
    contact_attributes: dict[str, Any] = Field(default_factory=dict)


class SlaPolicyIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    # These columns are 32-bit integers.
    position: int = Field(default=0, ge=-(2**31), le=2**31 - 1)
    active: bool = True
    conditions: SlaConditions = Field(default_factory=SlaConditions)
    first_response_seconds: int | None = Field(default=None, ge=1, le=2**31 - 1)
    next_response_seconds: int | None = Field(default=None, ge=1, le=2**31 - 1)
    resolution_seconds: int | None = Field(default=None, ge=1, le=2**31 - 1)
    business_hours_id: int | None = None
    warning_share: float = Field(default=0.8, gt=0, le=1)


class SlaPolicyOut(SlaPolicyIn):
    id: int


class TimerOut(BaseModel):
    kind: str
    state: str
    target_seconds: int
    consumed_seconds: float
    started_at: datetime
    due_at: datetime | None
    warn_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None
    stopped_at: datetime | None
    business_hours_id: int | None


class EventOut(BaseModel):
    id: int
    kind: str
    data: dict[str, Any]
    created_at: datetime


class ConversationSlaOut(BaseModel):
    conversation_id: int
    policy_id: int | None
    status: str | None
    due_at: datetime | None
    due_kind: str | None
    timers: list[TimerOut]
    events: list[EventOut]


class ConversationRoutingOut(BaseModel):
    conversation_id: int
    required_skills: list[str]
    queued: bool
    queue_reason: str | None
    decisions: list[EventOut]


class SlaSummary(BaseModel):
    status: str | None
    due_at: datetime | None
    due_kind: str | None


class SlaConversationOut(ConversationOut):
    sla: SlaSummary


class SlaConversationList(BaseModel):
    items: list[SlaConversationOut]
    next_cursor: str | None


class QueueItemOut(BaseModel):
    position: int
    conversation_id: int
    team_id: int | None
    priority_rank: int
    sla_due_at: datetime | None
    waiting_since: datetime | None
    queued_at: datetime | None
    channel_class: str
    required_skills: list[str]
    reason: str | None


class DeadlineOut(BaseModel):
    start: datetime
    seconds: float
    due: datetime


class ElapsedOut(BaseModel):
    start: datetime
    end: datetime
    seconds: float
