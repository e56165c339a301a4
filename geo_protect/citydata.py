"""A city's layers in memory, with the report of how they were made."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd

from geo_protect.schema import SOURCE_LAYERS, empty_layer

__all__ = ["CityData", "IngestReport"]


@dataclass
class IngestReport:
    """What an ingest found, dropped and could not find, per layer.

    Attributes
    ----------
    counts
        Features stored per layer.
    dropped
        ``{(layer, reason): n}``, e.g. ``("street", "way with nodes outside the extract"): 171``.
    missing
        Plain-language notes for classes the city's data lacks, each saying what to do.
    sources
        Files (or ``overpass``) read, with their data date.
    """

    counts: dict[str, int] = field(default_factory=dict)
    dropped: dict[tuple[str, str], int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    sources: list[tuple[str, str | None]] = field(default_factory=list)

    def drop(self, layer: str, reason: str, n: int = 1) -> None:
        """Count ``n`` features of ``layer`` dropped for ``reason``."""
        if n:
            self.dropped[(layer, reason)] = self.dropped.get((layer, reason), 0) + n


@dataclass
class CityData:
    """The source layers of one city (WGS84 GeoDataFrames, see :mod:`geo_protect.schema`)."""

    city: str
    layers: dict[str, gpd.GeoDataFrame]
    report: IngestReport = field(default_factory=IngestReport)

    def __post_init__(self) -> None:
        for name in SOURCE_LAYERS:
            self.layers.setdefault(name, empty_layer(name))

    def __getitem__(self, layer: str) -> gpd.GeoDataFrame:
        return self.layers[layer]
