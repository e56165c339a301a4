"""Typed settings, read from the environment (prefix ``GEO_PROTECT_``) or a ``.env`` file.

Library functions never read the environment; only the delivery surfaces (CLI, service,
notebooks) build a :class:`Settings` and pass plain values down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo_protect.errors import ConfigError

__all__ = ["DEV_SECRET", "REPO_ROOT", "Settings"]

#: The development secret: fine on a laptop, refused in production.
DEV_SECRET = "geo-protect-development-secret-do-not-deploy"

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
    environment
        ``development`` or ``production``. In production the service refuses to start
        with the default or a short ``secret_key`` and sets its cookies ``Secure``.
    secret_key
        Keys the digests under which sessions and API tokens are stored; from the
        environment (``GEO_PROTECT_SECRET_KEY``), at least 32 characters in production.
        Changing it logs everybody out and voids every token.
    session_lifetime_s
        A session ends this many seconds after login (``POST /auth/refresh`` swaps it
        for a new one while it is still valid).
    token_lifetime_days
        Default lifetime of a personal API token.
    api_token
        The API token commands send to the service (``replay --via http``).
    login_failures_per_user, login_failures_per_address, login_window_s
        Failed logins let through per user and per address within the window; beyond,
        logins are refused (429) until the window has passed.
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
    environment: Literal["development", "production"] = "development"
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    session_lifetime_s: int = Field(default=12 * 3600, gt=0)
    token_lifetime_days: int = Field(default=90, gt=0)
    login_failures_per_user: int = Field(default=5, gt=0)
    login_failures_per_address: int = Field(default=20, gt=0)
    login_window_s: int = Field(default=900, gt=0)
    api_token: SecretStr | None = None

    def checked_secret(self) -> str:
        """The secret key, refused in production when it is the default or too short.

        Raises
        ------
        ConfigError
            In production with the development default, an empty or a short secret.
        """
        secret = self.secret_key.get_secret_value()
        if self.environment == "production" and (secret == DEV_SECRET or len(secret) < 32):
            raise ConfigError(
                "GEO_PROTECT_SECRET_KEY: production needs a secret of at least 32 "
                "characters of its own (not the development default); e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return secret
