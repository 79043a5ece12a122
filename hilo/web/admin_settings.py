"""The administration's settings page: what this installation's environment settings do and hold."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from babel import Locale
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from hilo.http.deps import RuntimeDep
from hilo.normalize import normalize_phone
from hilo.web.admin_pages import admin_page
from hilo.web.views import UiAgent

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class RegionSetting:
    """HILO_DEFAULT_REGION as the page explains it: its value, the country, and an example number."""

    value: str
    country: str | None
    example: str | None
    normalized: str | None


def region_setting(value: str, locale: str) -> RegionSetting:
    """Describe the default phone region: `country` is None when Hilo does not know the code."""
    if value not in phonenumbers.SUPPORTED_REGIONS:
        return RegionSetting(value, None, None, None)
    country = Locale(locale).territories.get(value, value)
    number = phonenumbers.example_number_for_type(value, phonenumbers.PhoneNumberType.MOBILE)
    if number is None:
        return RegionSetting(value, country, None, None)
    example = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return RegionSetting(value, country, example, normalize_phone(example, value))


@router.get("/admin/settings")
def admin_settings(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    """Settings that come from the environment, each with what it does and how to change it."""
    return admin_page(
        request,
        principal,
        runtime,
        "admin/settings.html",
        page="settings",
        region=region_setting(runtime.settings.default_region, principal.locale),
    )


def install(app: FastAPI) -> None:
    """Add the settings page to the app."""
    app.include_router(router)
