"""The risk layers of a city: entry points, vehicle approaches and space metrics.

:func:`analyse_city` wires the library together: street network → entry points →
crowd capacity (per time profile) → hostile-vehicle approach speeds
(:func:`geo_protect.analysis.approach.approach_speeds`) → per-entry worst case → the
``space_metric`` layer. It holds no geometry or scoring logic of its own.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.analysis.approach import approach_speeds
from geo_protect.analysis.entries import entry_points
from geo_protect.analysis.network import StreetNetwork, street_network
from geo_protect.analysis.space_metrics import space_metrics, worst_per_entry
from geo_protect.analysis.standoff import crowd_persons, parking_streets, standoff
from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.errors import MissingDataError
from geo_protect.reference import parameter
from geo_protect.schema import empty_layer

__all__ = ["analyse_city", "in_metric_crs", "network_and_entries"]

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
    data = in_metric_crs(data, city.crs)
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


#: Metres per degree of latitude (mean; a unit conversion, not a threshold).
_M_PER_DEGREE = 111_320.0

#: Source layers several analysis steps read: projected once per run, not per step.
_SHARED_LAYERS = ("street", "barrier", "building")


def in_metric_crs(data: CityData, crs: str) -> CityData:
    """``data`` with the layers several steps read (streets, barriers, buildings) in the
    metric CRS, projected once; every step accepts any CRS and projects what it gets, so
    this only saves the repeated projections. Only buildings near a space are kept (the
    only ones any step uses). The other layers are shared as they are.

    Examples
    --------
    >>> from geo_protect.schema import empty_layer
    >>> d = in_metric_crs(CityData("x", {"street": empty_layer("street")}), "EPSG:32635")
    >>> str(d["street"].crs), str(d["poi"].crs)
    ('EPSG:32635', 'EPSG:4326')
    """
    layers = dict(data.layers)
    layers["building"] = _near_spaces(layers["building"], layers["public_space"])
    for name in _SHARED_LAYERS:
        if name in layers:
            layers[name] = layers[name].to_crs(crs)
    return CityData(data.city, layers, data.report)


def _near_spaces(buildings: gpd.GeoDataFrame, spaces: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The buildings the analysis can use: those near a space.

    Buildings count only inside a space (usable area) or between a road within
    ``frontage_max_offset_m`` and the outline (frontage shielding), so nothing beyond
    twice that offset (plus the boundary tolerance) of a space matters; four times is
    kept, measured in degrees at the study area's highest latitude (a superset).
    """
    if buildings.empty or spaces.empty:
        return buildings
    reach_m = 4 * (parameter("frontage_max_offset_m") + parameter("entry_boundary_tolerance_m"))
    lat = float(np.abs(spaces.total_bounds[[1, 3]]).max())
    margin = reach_m / (_M_PER_DEGREE * max(np.cos(np.radians(lat)), 1e-6))
    box = shapely.box(*np.asarray(spaces.bounds).T)
    near = shapely.STRtree(buildings.geometry.values).query(
        shapely.buffer(box, margin, join_style="mitre")
    )
    return buildings.iloc[np.unique(near[1])]


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
