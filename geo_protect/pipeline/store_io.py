"""Store access shared by the steps of the main job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd

from geo_protect.cities import City
from geo_protect.citydata import CityData, IngestReport
from geo_protect.schema import SOURCE_LAYERS
from geo_protect.store.base import Store

if TYPE_CHECKING:
    from geo_protect.assess.merge import MergeReport

__all__ = ["CityOutcome", "Progress", "load_city_data", "load_outcome"]


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class CityOutcome:
    """What the main job produced for one city (for the summary and the maps index)."""

    city: City
    report: IngestReport = field(default_factory=IngestReport)
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kept: MergeReport | None = None
    kept_from: Path | None = None

    @property
    def has_spaces(self) -> bool:
        """True when the city has public spaces to analyse."""
        spaces = self.layers.get("public_space")
        return spaces is not None and not spaces.empty


def load_city_data(store: Store, city: City) -> CityData:
    """The source layers and ingest report of a city, read from a store.

    The layers come from one :meth:`~geo_protect.store.base.Store.read_layers` call: one
    version of the city, even while another process rewrites it.
    """
    layers = store.read_layers(city.slug, SOURCE_LAYERS)
    return CityData(city.slug, layers, store.report(city.slug))


def load_outcome(store: Store, city: City) -> CityOutcome:
    """What the store holds for a city (every stored layer and the ingest report)."""
    outcome = CityOutcome(city)
    if city.slug in store.cities():
        outcome.report = store.report(city.slug)
        outcome.layers = store.read_layers(city.slug)  # one consistent read of every layer
    else:
        outcome.notes.append(f"{city.name_en}: not ingested yet")
    return outcome
