"""The storage contract shared by the GeoPackage and PostGIS backends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import geopandas as gpd

from geo_protect.citydata import IngestReport

__all__ = ["Store"]


@runtime_checkable
class Store(Protocol):
    """Where layers live. Every write is atomic: readers see the old or the new state.

    Layers are the GeoDataFrames of :mod:`geo_protect.schema` (WGS84, ``uid`` index);
    a store returns them with the same columns, dtypes, index and CRS it was given.
    """

    def replace_city(
        self, city: str, layers: Mapping[str, gpd.GeoDataFrame], report: IngestReport
    ) -> None:
        """Replace everything stored for ``city`` (all layers, analysis included) at once."""
        ...

    def write_layers(self, city: str, layers: Mapping[str, gpd.GeoDataFrame]) -> None:
        """Replace the given layers of an already ingested city, in one transaction."""
        ...

    def read_layer(self, city: str, layer: str) -> gpd.GeoDataFrame:
        """One layer of a city (an empty layer if the city has none of it)."""
        ...

    def report(self, city: str) -> IngestReport:
        """The ingest report stored with the city."""
        ...

    def cities(self) -> list[str]:
        """Slugs of the cities in the store."""
        ...

    def layers(self, city: str) -> list[str]:
        """Names of the layers stored for ``city``."""
        ...
