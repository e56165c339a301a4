"""geo_protect: protect crowded public spaces, from OpenStreetMap to interactive risk maps.

The package follows the data path, each layer depending only on those above it:

* foundation: :mod:`~geo_protect.errors`, :mod:`~geo_protect.settings`, :mod:`~geo_protect.atomic`,
  :mod:`~geo_protect.cities`, :mod:`~geo_protect.reference`, :mod:`~geo_protect.schema`,
  :mod:`~geo_protect.citydata`;
* :mod:`geo_protect.osm`: OpenStreetMap in (readers, taxonomy, derived spaces, ingest);
* :mod:`geo_protect.analysis`: street network, barriers, entries, vehicles, approach
  speeds, crowd capacity, space metrics;
* :mod:`geo_protect.assess`: questionnaire, evidence and pre-fill, risk scores;
* :mod:`geo_protect.live`: pure live-density, alert and live-risk functions;
* :mod:`geo_protect.outputs`: maps, comparison, exports, site reports;
* :mod:`geo_protect.store`: GeoPackage and PostGIS (beneath everything, foundation only);
* surfaces: :mod:`geo_protect.pipeline` and :mod:`geo_protect.cli`.

The names below are importable from the top level; the heavier ones are loaded on first
use, so ``import geo_protect`` stays cheap.

Examples
--------
>>> import geo_protect
>>> geo_protect.get_city("brasov").name
'Brașov'
>>> callable(geo_protect.analyse_city)
True
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

from geo_protect import reference
from geo_protect.cities import City, Source, get_city, load_cities
from geo_protect.citydata import CityData, IngestReport
from geo_protect.errors import (
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
from geo_protect.settings import Settings

if TYPE_CHECKING:
    from geo_protect.analysis.city import analyse_city
    from geo_protect.analysis.vehicles import vehicle_classes
    from geo_protect.osm.ingest import ingest_city

try:
    __version__ = _version("geo-protect")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

#: Public names loaded on first access: name -> module that defines it.
_LAZY = {
    "analyse_city": "geo_protect.analysis.city",
    "ingest_city": "geo_protect.osm.ingest",
    "vehicle_classes": "geo_protect.analysis.vehicles",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'geo_protect' has no attribute {name!r}")


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
    "Source",
    "StoreError",
    "StoreUnavailableError",
    "UnknownCityError",
    "ValidationError",
    "__version__",
    "analyse_city",
    "get_city",
    "ingest_city",
    "load_cities",
    "reference",
    "vehicle_classes",
]
