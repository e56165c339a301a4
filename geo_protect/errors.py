"""One exception hierarchy for the whole package.

Every error that a user can cause (a bad file, an unknown city, a database that is
down) derives from :class:`GeoProtectError` and carries a message that names the file,
field or setting at fault. The CLI turns them into a message and a non-zero exit code;
the service will turn them into HTTP responses through :data:`HTTP_STATUS`.
"""

from __future__ import annotations

__all__ = [
    "HTTP_STATUS",
    "AnalysisError",
    "ConfigError",
    "DataSourceError",
    "GeoProtectError",
    "MissingDataError",
    "StoreError",
    "StoreUnavailableError",
    "UnknownCityError",
    "ValidationError",
]


class GeoProtectError(Exception):
    """Base class of every error geo_protect raises on purpose."""


class ConfigError(GeoProtectError):
    """A setting, the city registry or a reference table is invalid."""


class UnknownCityError(GeoProtectError, KeyError):
    """A city slug that the registry does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown city"


class DataSourceError(GeoProtectError):
    """An input file (OSM extract, GeoJSON, GraphML...) is missing, corrupt or of the wrong kind."""


class ValidationError(GeoProtectError):
    """User-supplied data (a register of spaces, an assessment) fails validation."""


class MissingDataError(GeoProtectError):
    """A city lacks the data a step needs (no street network, no spaces)."""


class AnalysisError(GeoProtectError):
    """An analysis cannot run on the given input (empty network, unknown vehicle class)."""


class StoreError(GeoProtectError):
    """Reading from or writing to a store failed; the store is left unchanged."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached or lacks a prerequisite (server down, no PostGIS)."""


#: HTTP status code for each error class, most specific first (used by the service).
HTTP_STATUS: dict[type[GeoProtectError], int] = {
    UnknownCityError: 404,
    ValidationError: 422,
    DataSourceError: 422,
    AnalysisError: 422,
    MissingDataError: 409,
    StoreUnavailableError: 503,
    StoreError: 500,
    ConfigError: 500,
    GeoProtectError: 500,
}
