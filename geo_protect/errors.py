"""One exception hierarchy for the whole package.

Every error that a user can cause (a bad file, an unknown city, a database that is
down) derives from :class:`GeoProtectError` and carries a message that names the file,
field or setting at fault. The CLI turns them into a message and a non-zero exit code;
the service will turn them into HTTP responses through :data:`HTTP_STATUS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = [
    "HTTP_STATUS",
    "AnalysisError",
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "DataSourceError",
    "ForbiddenError",
    "GeoProtectError",
    "ItemProblem",
    "ItemsValidationError",
    "MissingDataError",
    "StoreError",
    "StoreUnavailableError",
    "ThrottledError",
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


@dataclass(frozen=True)
class ItemProblem:
    """One problem of one item of a batch or one row of a file, for a 422 body.

    ``index`` is the item's 0-based position in the batch (or the row/feature number of a
    file, as its message says); ``None`` for a problem of the whole batch or file.
    """

    index: int | None
    field: str
    reason: str
    sensor_id: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The problem as a JSON-ready dict (``index, field, reason, sensor_id``)."""
        return asdict(self)


class ItemsValidationError(ValidationError):
    """A batch (of readings) or a file (of sensors) with problems in some of its items.

    The message lists every problem in plain language; :attr:`problems` holds them as
    :class:`ItemProblem` for a structured answer (HTTP 422).
    """

    def __init__(self, message: str, problems: Sequence[ItemProblem] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[ItemProblem, ...] = tuple(problems)

    def as_dicts(self) -> list[dict[str, object]]:
        """Every problem as a JSON-ready dict, in order."""
        return [p.as_dict() for p in self.problems]


class MissingDataError(GeoProtectError):
    """A city lacks the data a step needs (no street network, no spaces)."""


class AnalysisError(GeoProtectError):
    """An analysis cannot run on the given input (empty network, unknown vehicle class)."""


class StoreError(GeoProtectError):
    """Reading from or writing to a store failed; the store is left unchanged."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached or lacks a prerequisite (server down, no PostGIS)."""


class NotFoundError(GeoProtectError):
    """A named record (an alert, a sensor, a scenario) does not exist."""


class AlertStateError(StoreError):
    """An alert cannot make the transition asked for (it is resolved already, say)."""


class AuthenticationError(GeoProtectError):
    """No valid credentials: wrong name or password, an expired or revoked token."""


class ForbiddenError(GeoProtectError):
    """The user is known but their grants do not allow what was asked, where."""


class ThrottledError(GeoProtectError):
    """Too many failed logins for a user or from an address; ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConflictError(StoreError):
    """The record exists already (a user of that name, a scenario saved under that name)."""


#: HTTP status code for each error class, most specific first (used by the service).
HTTP_STATUS: dict[type[GeoProtectError], int] = {
    UnknownCityError: 404,
    NotFoundError: 404,
    AlertStateError: 409,
    ConflictError: 409,
    AuthenticationError: 401,
    ForbiddenError: 403,
    ThrottledError: 429,
    ValidationError: 422,
    DataSourceError: 422,
    AnalysisError: 422,
    MissingDataError: 409,
    StoreUnavailableError: 503,
    StoreError: 500,
    ConfigError: 500,
    GeoProtectError: 500,
}
