"""Typed settings, read from the environment (prefix ``GEO_PROTECT_``) or a ``.env`` file.

Library functions never read the environment; only the delivery surfaces (CLI, service,
notebooks) build a :class:`Settings` and pass plain values down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["REPO_ROOT", "Settings"]

#: The checkout (or install) root: ``data/`` and ``maps/`` live next to the package.
REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Run-time settings of geo_protect.

    Attributes
    ----------
    data_dir
        Folder with ``cities.toml``, ``reference/`` and the OSM extracts.
    store
        ``gpkg`` (embedded, one GeoPackage per city, no server) or ``postgis``.
    store_dir
        Where the GeoPackage store keeps its files.
    database_url
        SQLAlchemy URL of the PostGIS database (``postgresql+psycopg://...``).
    maps_dir
        Where the interactive maps and reports are written.
    tile_url
        Optional XYZ tile URL for deployments that run a tile server; without it the
        maps draw their basemap from the city's own OSM data.
    http_timeout
        Seconds before a request to a remote service (Overpass) is abandoned.
    mqtt_host, mqtt_port
        The MQTT broker the live service subscribes to (``mqtt_host`` empty: no MQTT).
    mqtt_topic
        Topic pattern of sensor readings; ``+`` stands for the city slug. Workers share
        one subscription (``$share/<group>/...``), so each message is ingested once.
    mqtt_group
        Name of the shared subscription.
    ingest_concurrency
        Batches one worker ingests at once; more get 429 (bounded work, not a queue).
    sse_queue
        Events buffered per browser connection; a client that falls further behind is
        disconnected and resumes from its ``Last-Event-ID``.
    """

    model_config = SettingsConfigDict(env_prefix="GEO_PROTECT_", env_file=".env", extra="ignore")

    data_dir: Path = REPO_ROOT / "data"
    store: Literal["gpkg", "postgis"] = "gpkg"
    store_dir: Path = REPO_ROOT / "store"
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/geo_protect"
    maps_dir: Path = REPO_ROOT / "maps"
    tile_url: str | None = None
    tile_attribution: str | None = None
    overpass_url: str = "https://overpass-api.de/api/interpreter"
    http_timeout: float = Field(default=60.0, gt=0)
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, gt=0, lt=65536)
    mqtt_topic: str = "geo_protect/+/readings"
    mqtt_group: str = "geo_protect"
    ingest_concurrency: int = Field(default=8, gt=0)
    sse_queue: int = Field(default=1000, gt=0)
