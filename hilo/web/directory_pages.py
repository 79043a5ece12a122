"""The contacts directory pages."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Add the directory pages to the app."""
    app.include_router(router)
