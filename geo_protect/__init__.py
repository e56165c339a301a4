"""geo_protect: protect crowded public spaces, from OpenStreetMap to interactive risk maps."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from geo_protect._errors import (
    AnalysisError,
    ConfigError,
    DataSourceError,
    GeoProtectError,
    MissingDataError,
    StoreError,
    StoreUnavailableError,
    UnknownCityError,
    ValidationError,
)
from geo_protect.cities import City, get_city, load_cities
from geo_protect.citydata import CityData, IngestReport
from geo_protect.settings import Settings

try:
    __version__ = _version("geo-protect")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = [
    "AnalysisError",
    "City",
    "CityData",
    "ConfigError",
    "DataSourceError",
    "GeoProtectError",
    "IngestReport",
    "MissingDataError",
    "Settings",
    "StoreError",
    "StoreUnavailableError",
    "UnknownCityError",
    "ValidationError",
    "__version__",
    "get_city",
    "load_cities",
]
