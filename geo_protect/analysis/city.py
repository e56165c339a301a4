"""The risk layers of a city: entry points, vehicle approaches and space metrics.

:func:`analyse_city` wires the library together: street network → entry points →
crowd capacity (per time profile) → hostile-vehicle approach speeds
(:func:`geo_protect.analysis.approach.approach_speeds`) → per-entry worst case → the
``space_metric`` layer. It holds no geometry or scoring logic of its own.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import pandas as pd

from geo_protect.analysis.approach import approach_speeds
from geo_protect.analysis.entries import entry_points
from geo_protect.analysis.network import StreetNetwork, street_network
from geo_protect.analysis.space_metrics import space_metrics, worst_per_entry
from geo_protect.analysis.standoff import crowd_persons, parking_streets, standoff
from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.errors import MissingDataError
from geo_protect.schema import empty_layer

__all__ = ["analyse_city", "network_and_entries"]

log = logging.getLogger(__name__)


def analyse_city(
    city: City,
    data: CityData,
    *,
    vehicles: pd.DataFrame | None = None,
    profile: str = "event",
    exposure_thresholds_kmh: tuple[float, float] | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Compute a city's risk layers.

    Parameters
    ----------
    city
        The city (its ``crs`` is used for every length and area).
    data
        Its source layers (from :func:`geo_protect.osm.ingest.ingest_city`).
    vehicles
        Passed to :func:`geo_protect.analysis.approach.approach_speeds` (the threat vehicle
        classes); its default when ``None``.
    profile
        Time profile whose capacity is ``capacity_persons`` (``event``: the safe
        maximum, 2 p/m² standing; see ``design_density.csv``).
    exposure_thresholds_kmh
        The speeds counted by ``n_entries_over_30`` / ``n_entries_over_48``;
        ``exposure_medium_kmh`` / ``exposure_high_kmh`` of ``risk_map.csv`` by default.

    Returns
    -------
    dict
        ``entry_point``, ``approach``, ``space_metric`` and ``standoff`` (VBIED stand-off,
        :func:`geo_protect.analysis.standoff.standoff`) layers (WGS84). A city without
        streets still gets its space metrics (capacity by density only, with a
        ``note``); a space without entries gets zero counts and a note.

    Raises
    ------
    MissingDataError
        If the city has no public spaces.
    """
    spaces = data["public_space"]
    if spaces.empty:
        raise MissingDataError(
            f"{city.slug}: no public spaces to analyse; ingest the city's OSM data or add a "
            "register of spaces (geo_protect.osm.register)"
        )
    network, spaces_m, entries = network_and_entries(city, data)
    approach = empty_layer("approach")
    targets = _targets(entries)
    if network is not None and len(targets):
        approach = approach_speeds(network, targets, spaces=spaces_m, vehicles=vehicles)
    entries = worst_per_entry(entries, approach)
    metrics = space_metrics(
        spaces_m,
        entries,
        buildings=data["building"],
        profile=profile,
        has_streets=network is not None,
        exposure_thresholds_kmh=exposure_thresholds_kmh,
        approach=approach,
        pois=data["poi"],
        streets=data["street"],
    )
    reach = standoff(
        network,
        spaces_m,
        crowd_persons(metrics),
        vehicles=vehicles,
        parking=parking_streets(data["street"]),
    )
    return {
        "entry_point": entries,
        "approach": approach,
        "space_metric": metrics,
        "standoff": reach,
    }


def network_and_entries(
    city: City, data: CityData
) -> tuple[StreetNetwork | None, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The street network (None without streets), the spaces in the metric CRS and their
    entry points: the first half of :func:`analyse_city`."""
    spaces_m = data["public_space"].to_crs(city.crs)
    network: StreetNetwork | None = None
    if not data["street"].empty:
        network = street_network(data["street"], data["barrier"], crs=city.crs)
    entries = entry_points(
        spaces_m,
        network,
        entrances=data["entrance"],
        barriers=data["barrier"],
        buildings=data["building"],
        crs=city.crs,
    )
    return network, spaces_m, entries


def _targets(entries: gpd.GeoDataFrame) -> pd.DataFrame:
    """Vehicle-permeable entries located on the network (the approach contract)."""
    open_ = entries[
        (entries["entry_class"] == "vehicle_permeable").to_numpy(dtype=bool)
        & entries["edge"].notna().to_numpy()
    ]
    return pd.DataFrame(open_[["space_uid", "edge", "at_m", "towards", "impact_angle_deg"]])
