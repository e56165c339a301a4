"""Helpers shared by the store backends: the city record, slugs, layer order, dtypes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import geopandas as gpd
import pandas as pd

from geo_protect.citydata import IngestReport
from geo_protect.errors import StoreError
from geo_protect.schema import LAYERS, WGS84, LayerSpec, all_layers

__all__ = [
    "CityInfo",
    "check_slug",
    "layer_frame",
    "order_layers",
    "report_from_json",
    "report_to_json",
    "spec_of",
]

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


@dataclass(frozen=True)
class CityInfo:
    """What a store records about a city besides its layers.

    Attributes
    ----------
    slug
        The city's slug.
    ingested_at
        When ``replace_city`` stored it (UTC, timezone-aware).
    reference_version
        Version of the reference tables in force at that time.
    layers
        Names of the stored layers, empty ones included.
    """

    slug: str
    ingested_at: datetime
    reference_version: str
    layers: list[str] = field(default_factory=list)


def check_slug(city: str) -> str:
    """Return ``city`` if it is a valid slug (lower-case letters, digits, ``-``, ``_``)."""
    if not isinstance(city, str) or not _SLUG.fullmatch(city):
        raise StoreError(
            f"city slug {city!r} is invalid: use lower-case letters, digits, '-' and '_' "
            "(as in data/cities.toml)"
        )
    return city


def spec_of(layer: str) -> LayerSpec:
    """The registered spec of ``layer``, or a :class:`StoreError` listing the known ones."""
    spec = all_layers().get(layer)
    if spec is None:
        raise StoreError(
            f"layer {layer!r} is not registered in geo_protect.schema.LAYERS "
            f"(known: {', '.join(LAYERS)})"
        )
    return spec


def order_layers(names: Iterable[str]) -> list[str]:
    """Layer names in registry order, unregistered ones last (alphabetically)."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    return sorted(set(names), key=lambda n: (rank.get(n, len(rank)), n))


def report_to_json(report: IngestReport) -> str:
    """An ingest report as a JSON document (tuple keys become lists)."""
    doc = {
        "counts": {str(k): int(v) for k, v in report.counts.items()},
        "dropped": [[layer, reason, int(n)] for (layer, reason), n in report.dropped.items()],
        "missing": list(report.missing),
        "sources": [[name, date] for name, date in report.sources],
    }
    return json.dumps(doc, ensure_ascii=False)


def report_from_json(doc: str | dict[str, Any]) -> IngestReport:
    """The inverse of :func:`report_to_json` (accepts the text or the parsed document)."""
    data = json.loads(doc) if isinstance(doc, str) else doc
    return IngestReport(
        counts={str(k): int(v) for k, v in data.get("counts", {}).items()},
        dropped={(layer, reason): int(n) for layer, reason, n in data.get("dropped", [])},
        missing=[str(m) for m in data.get("missing", [])],
        sources=[(str(name), date) for name, date in data.get("sources", [])],
    )


def layer_frame(
    spec: LayerSpec, uid: Any, columns: dict[str, Any], geometry: Any
) -> gpd.GeoDataFrame:
    """Build a layer with the canonical dtypes of :func:`geo_protect.schema.empty_layer`.

    ``columns`` maps every column of ``spec`` to array-likes of plain values (``None``
    or NaN for missing); rows are sorted by ``uid``.
    """
    index = pd.Index(pd.array(uid, dtype="string"), name="uid")
    frame = pd.DataFrame(
        {col: _typed(columns[col], dt) for col, dt in spec.columns.items()}, index=index
    )
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, index=index, crs=WGS84))
    return gdf if gdf.index.is_monotonic_increasing else gdf.sort_index()


def _typed(values: Any, dtype: str) -> Any:
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    series = series.reset_index(drop=True)
    if dtype == "float64":
        return pd.to_numeric(series, errors="raise").astype("float64").to_numpy()
    if dtype in ("Int64", "boolean") and series.dtype.kind == "f":
        # GeoPackage reads integer and boolean columns with NULLs as floats (NaN)
        return series.astype("Float64").astype(dtype).array
    plain = series.astype(object).where(series.notna(), None).to_numpy()
    return pd.array(plain, dtype="string" if dtype == "json" else dtype)
