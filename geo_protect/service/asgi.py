"""The entry point uvicorn imports in each worker: the app built from the environment."""

from __future__ import annotations

import os

from fastapi import FastAPI

from geo_protect.service.app import create_app
from geo_protect.settings import Settings

__all__ = ["app_from_environment"]


def app_from_environment() -> FastAPI:
    """The service app with :class:`Settings` from ``GEO_PROTECT_*`` (a uvicorn factory).

    ``GEO_PROTECT_SERVICE_MQTT=0`` leaves the MQTT consumer out.
    """
    mqtt = os.environ.get("GEO_PROTECT_SERVICE_MQTT", "1") != "0"
    return create_app(Settings(), mqtt=mqtt)
