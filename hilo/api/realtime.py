"""The agents' websocket: /api/v1/ws pushes every event the agent may see."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlparse

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from hilo.http.deps import load_principal, session_token
from hilo.http.hub import Connection

router = APIRouter()


def _same_origin(websocket: WebSocket, base_url: str) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser: it authenticates with a token or a cookie it holds
    host = urlparse(origin).netloc
    return host in (websocket.headers.get("host"), urlparse(base_url).netloc)


@router.websocket("/api/v1/ws")
async def agent_socket(websocket: WebSocket) -> None:
    runtime = websocket.app.state.runtime
    token = websocket.query_params.get("token")
    headers = {"authorization": f"Bearer {token}"} if token else {}
    cookie_token = session_token(websocket)
    if not token and not _same_origin(websocket, runtime.settings.base_url):
        await websocket.close(code=4403)
        return
    principal = await asyncio.to_thread(load_principal, runtime, headers, None if token else cookie_token)
    if principal is None:
        await websocket.close(code=4401)
        return
    if principal.must_enrol:
        await websocket.close(code=4403)
        return
    await websocket.accept()
    hub = websocket.app.state.hub
    connection = Connection(websocket=websocket, principal=principal)
    sender = asyncio.create_task(hub.serve(connection))
    await websocket.app.state.presence.joined(connection)
    await websocket.send_json({"type": "hello", "agent_id": principal.id})
    try:
        while True:
            message = await websocket.receive_json()
            if isinstance(message, dict) and message.get("type") == "ping":
                await websocket.app.state.presence.heartbeat(connection)
                await websocket.send_json({"type": "pong"})
            else:
                await websocket.app.state.presence.handle(connection, message)
    except (WebSocketDisconnect, RuntimeError, ValueError):
        pass
    finally:
        sender.cancel()
        # The sender may already have stopped on its own because the client went away.
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await sender
        hub.connections.discard(connection)
        await websocket.app.state.presence.left(connection)
