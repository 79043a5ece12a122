"""Automation's request and response models, shared by its REST routes, its queries and the pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from hilo.http.schemas import ConversationOut

RuleEvent = Literal[
    "conversation.created",
    "message.received",
    "conversation.status_changed",
    "conversation.assigned",
    "conversation.reopened",
    "sla.warning",
    "sla.breached",
    "conversation.idle",
]
Locale = Literal["en", "es"]


class RuleIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    event: RuleEvent
    conditions: dict[str, Any] = Field(default_factory=dict)
    actions: list[dict[str, Any]] = Field(min_length=1, max_length=20)
    position: int = Field(default=0, ge=-(2**31), le=2**31 - 1)  # a 32-bit column
    active: bool = True
    stop_processing: bool = False
    idle_hours: float | None = Field(default=None, gt=0, le=24 * 365)


class RuleOut(RuleIn):
    id: int
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class DryRunIn(BaseModel):
    event: RuleEvent
    conditions: dict[str, Any] = Field(default_factory=dict)
    actions: list[dict[str, Any]] = Field(min_length=1, max_length=20)
    idle_hours: float | None = Field(default=None, gt=0)


class DryRunOut(BaseModel):
    scanned: int
    matched: list[dict[str, Any]]


class RunOut(BaseModel):
    id: int
    rule_id: int | None
    conversation_id: int
    event: str
    depth: int
    outcome: str
    detail: dict[str, Any]
    created_at: datetime


class MacroIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    actions: list[dict[str, Any]] = Field(min_length=1, max_length=20)
    shared: bool = False


class MacroOut(MacroIn):
    id: int
    owner_agent_id: int


class MacroRunIn(BaseModel):
    conversation_id: int


class MacroRunOut(BaseModel):
    conversation: ConversationOut
    actions: list[dict[str, Any]]


class CannedIn(BaseModel):
    shortcut: str = Field(min_length=1, max_length=65)
    title: str = Field(min_length=1, max_length=255)
    body: str = Field(min_length=1, max_length=8000)
    translations: dict[Locale, Annotated[str, Field(min_length=1, max_length=8000)]] = Field(default_factory=dict)


class CannedOut(CannedIn):
    id: int
    rendered: str | None = None


class ScheduledIn(BaseModel):
    conversation_id: int
    body: str = Field(min_length=1, max_length=65536)
    send_at: datetime
    channel_account_id: int | None = None


class ScheduledOut(BaseModel):
    id: int
    conversation_id: int
    created_by: int
    body: str
    channel_account_id: int | None
    send_at: datetime
    state: str
    message_id: int | None
    failure_code: str | None
    created_at: datetime


class SettingsIn(BaseModel):
    auto_resolve_after_hours: float | None = Field(default=None, gt=0, le=24 * 365)
    auto_resolve_message: dict[Locale, Annotated[str, Field(min_length=1, max_length=4000)]] | None = None


class SettingsOut(SettingsIn):
    pass
