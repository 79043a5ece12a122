"""REST endpoints of the agent workspace: saved views, unread counts, read markers, notifications."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from hilo.conversations.access import access_conversation
from hilo.http.deps import CurrentAgent, RuntimeDep
from hilo.http.schemas import ERRORS
from hilo.web import actions
from hilo.web.access import access_saved_view
from hilo.web.inbox import label_names, load_directory, saved_views, sidebar_views, unread_counts
from hilo.web.models import Notification, SavedView

router = APIRouter(prefix="/api/v1", tags=["agent workspace"], responses=ERRORS)

Sort = Literal["last_activity", "waiting", "priority", "created", "sla_due"]


class ViewIn(BaseModel):
    name: str = Field(max_length=80)
    filters: dict[str, Any] = Field(default_factory=dict)
    sort: Sort = "last_activity"


class ViewPatch(BaseModel):
    name: str | None = Field(default=None, max_length=80)
    filters: dict[str, Any] | None = None
    sort: Sort | None = None
    position: int | None = Field(default=None, ge=0, le=10_000)


class NotificationsRead(BaseModel):
    # None marks every notification read.
    ids: list[int] | None = Field(default=None, max_length=500)


def view_payload(view: SavedView) -> dict[str, Any]:
    return {
        "id": view.id,
        "key": f"saved-{view.id}",
        "name": view.name,
        "filters": view.filters,
        "sort": view.sort,
        "position": view.position,
    }


@router.get("/views")
def list_views(principal: CurrentAgent, runtime: RuntimeDep) -> list[dict[str, Any]]:
    """The caller's saved inbox views, in sidebar order."""
    with runtime.db.read() as session:
        return [view_payload(v) for v in saved_views(session, principal.id)]


@router.post("/views", status_code=201)
def create_view(body: ViewIn, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    """Save an inbox view: filters as in GET /conversations (status, assignee, team, channel, label)."""
    with runtime.transaction(principal.id) as tx:
        return view_payload(actions.create_view(tx, principal.id, body.name, body.filters, body.sort))


@router.patch("/views/{view_id}")
def update_view(view_id: int, body: ViewPatch, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.transaction(principal.id) as tx:
        view = access_saved_view(tx.session, principal, view_id)
        actions.update_view(tx, view, name=body.name, filters=body.filters, sort=body.sort, position=body.position)
        return view_payload(view)


@router.delete("/views/{view_id}", status_code=204)
def delete_view(view_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> Response:
    with runtime.transaction(principal.id) as tx:
        actions.delete_view(tx, access_saved_view(tx.session, principal, view_id))
    return Response(status_code=204)


@router.get("/views/counts")
def view_counts(principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, dict[str, int]]:
    """Unread unresolved conversations per view key (built-in, team, channel, status, label, saved)."""
    with runtime.db.read() as session:
        directory = load_directory(session)
        groups = sidebar_views(principal, directory, label_names(session), saved_views(session, principal.id))
        return {"counts": unread_counts(session, principal, [v for views in groups.values() for v in views])}


@router.post("/conversations/{conversation_id}/read")
def mark_read(conversation_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, bool]:
    """Mark the conversation read for the caller (it stops counting as unread)."""
    with runtime.transaction(principal.id) as tx:
        conversation = access_conversation(tx.session, principal, conversation_id)
        return {"changed": actions.mark_read(tx, principal.id, conversation)}


def notification_payload(row: Notification) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "conversation_id": row.conversation_id,
        "message_id": row.message_id,
        "actor_agent_id": row.actor_agent_id,
        "data": row.data,
        "created_at": row.created_at,
        "read": row.read_at is not None,
    }


@router.get("/notifications")
def list_notifications(
    principal: CurrentAgent,
    runtime: RuntimeDep,
    unread: bool = False,
    limit: int = Query(default=20, ge=1, le=100),
    before: int | None = Query(default=None, description="notification id: page back from here"),
) -> dict[str, Any]:
    """The caller's notifications, newest first, and how many are unread."""
    with runtime.db.read() as session:
        query = select(Notification).where(Notification.agent_id == principal.id)
        if unread:
            query = query.where(Notification.read_at.is_(None))
        if before is not None:
            query = query.where(Notification.id < before)
        rows = session.execute(query.order_by(Notification.id.desc()).limit(limit)).scalars().all()
        unread_count = session.execute(
            select(func.count(Notification.id)).where(
                Notification.agent_id == principal.id, Notification.read_at.is_(None)
            )
        ).scalar_one()
        return {"items": [notification_payload(r) for r in rows], "unread": unread_count}


@router.post("/notifications/read")
def read_notifications(body: NotificationsRead, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, int]:
    """Mark notifications read: the ones listed in `ids`, or all of them."""
    with runtime.transaction(principal.id) as tx:
        return {"changed": actions.mark_notifications_read(tx, principal.id, body.ids)}
