"""The risk layers of a city: entry points, vehicle approaches and space metrics.

:func:`analyse_city` wires the library together: street network → entry points →
crowd capacity (per time profile) → hostile-vehicle approach speeds
(:func:`geo_protect.approach.approach_speeds`) → per-entry worst case → the
``space_metric`` layer. It holds no geometry or scoring logic of its own.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_protect._errors import MissingDataError
from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.crowd import PROFILES, capacity, usable_area
from geo_protect.entries import entry_points
from geo_protect.network import StreetNetwork, street_network
from geo_protect.reference import table, version
from geo_protect.schema import WGS84, LayerSpec, conform, register_layer

__all__ = [
    "APPROACH_COLUMNS",
    "SPACE_METRIC",
    "analyse_city",
    "network_and_entries",
    "space_metrics",
    "worst_per_entry",
]

log = logging.getLogger(__name__)

SPACE_METRIC = register_layer(
    LayerSpec(
        "space_metric",
        "Point",
        {
            "name": "string",
            "kind": "string",
            "area_m2": "float64",
            "usable_area_m2": "float64",
            "design_density": "float64",
            "capacity_density": "float64",
            "capacity_egress": "float64",
            "capacity_persons": "float64",
            "limited_by": "string",
            "los": "string",
            "capacity_ordinary": "float64",
            "capacity_peak": "float64",
            "capacity_event": "float64",
            "n_entries": "Int64",
            "n_pedestrian_only": "Int64",
            "n_vehicle_permeable": "Int64",
            "n_blocked": "Int64",
            "worst_speed_kmh": "float64",
            "worst_vehicle": "string",
            "worst_entry_uid": "string",
            "n_entries_over_30": "Int64",
            "n_entries_over_48": "Int64",
            "required_rating": "string",
            "reference_version": "string",
            "note": "string",
        },
        description="Per public space: capacity, level of service, entries and vehicle exposure.",
        analysis=True,
    )
)

#: Columns of the ``approach`` layer (owned by :mod:`geo_protect.approach`).
APPROACH_COLUMNS = (
    "entry_uid",
    "space_uid",
    "vehicle",
    "speed_kmh",
    "start_speed_kmh",
    "run_up_m",
    "impact_angle_deg",
    "energy_kj",
    "test_speed_kmh",
    "required_rating",
)

_NO_STREETS = "no street data: entries from mapped entrances only, capacity by density only"
_NO_ENTRIES = "no entries found: capacity by density only"
_NO_APPROACH = "vehicle analysis not available (geo_protect.approach missing)"


def analyse_city(
    city: City,
    data: CityData,
    *,
    vehicles: Any = None,
    profile: str = "event",
    exposure_thresholds_kmh: tuple[float, float] | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Compute a city's risk layers.

    Parameters
    ----------
    city
        The city (its ``crs`` is used for every length and area).
    data
        Its source layers (from :func:`geo_protect.ingest.ingest_city`).
    vehicles
        Passed to :func:`geo_protect.approach.approach_speeds` (the threat vehicle
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
        ``entry_point``, ``approach`` and ``space_metric`` layers (WGS84). A city without
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
            "register of spaces (geo_protect.register)"
        )
    network, spaces_m, entries = network_and_entries(city, data)
    approach = _empty_approach()
    approach_note = ""
    targets = _targets(entries)
    if network is not None and len(targets):
        try:
            module = importlib.import_module("geo_protect.approach")
        except ModuleNotFoundError as exc:
            if exc.name != "geo_protect.approach":
                raise
            log.warning("%s: %s", city.slug, _NO_APPROACH)
            approach_note = _NO_APPROACH
        else:
            kwargs: dict[str, Any] = {"spaces": spaces_m}
            if vehicles is not None:
                kwargs["vehicles"] = vehicles
            approach = module.approach_speeds(network, targets, **kwargs)
            if approach.crs is not None and not approach.crs.equals(WGS84):
                approach = approach.to_crs(WGS84)
    entries = worst_per_entry(entries, approach)
    metrics = space_metrics(
        spaces_m,
        entries,
        buildings=data["building"],
        profile=profile,
        has_streets=network is not None,
        exposure_thresholds_kmh=exposure_thresholds_kmh,
        extra_note=approach_note,
    )
    return {"entry_point": entries, "approach": approach, "space_metric": metrics}


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


def _empty_approach() -> gpd.GeoDataFrame:
    from geo_protect.schema import LAYERS, empty_layer

    if "approach" in LAYERS:
        return empty_layer("approach")
    frame = pd.DataFrame(
        {
            c: pd.Series(dtype="float64" if c.endswith(("_kmh", "_m", "_deg", "_kj")) else "string")
            for c in APPROACH_COLUMNS
        }
    )
    frame.index = pd.Index([], dtype="string", name="uid")
    return gpd.GeoDataFrame(
        frame, geometry=gpd.GeoSeries([], crs=WGS84, index=frame.index), crs=WGS84
    )


def worst_per_entry(entries: gpd.GeoDataFrame, approach: pd.DataFrame) -> gpd.GeoDataFrame:
    """Fill each entry's ``worst_speed_kmh``, ``worst_vehicle`` and ``required_rating``.

    The worst approach of an entry is its fastest (ties: the most energetic); its
    vehicle and required rating go with it.
    """
    out = entries.copy()
    if approach.empty:
        return out
    ordered = pd.DataFrame(approach).sort_values(
        ["entry_uid", "speed_kmh", "energy_kj"], ascending=[True, False, False]
    )
    worst = ordered.drop_duplicates("entry_uid").set_index("entry_uid")
    idx = out.index
    out["worst_speed_kmh"] = worst["speed_kmh"].reindex(idx).astype(float).to_numpy()
    out["worst_vehicle"] = worst["vehicle"].reindex(idx).astype("string").to_numpy()
    out["required_rating"] = worst["required_rating"].reindex(idx).astype("string").to_numpy()
    return conform("entry_point", out)


def space_metrics(
    spaces: gpd.GeoDataFrame,
    entries: gpd.GeoDataFrame,
    *,
    buildings: gpd.GeoDataFrame | None = None,
    obstacles: gpd.GeoDataFrame | None = None,
    profile: str = "event",
    has_streets: bool = True,
    exposure_thresholds_kmh: tuple[float, float] | None = None,
    extra_note: str = "",
) -> gpd.GeoDataFrame:
    """The ``space_metric`` layer from spaces (metric CRS) and their entries.

    Returns
    -------
    GeoDataFrame
        One row per space (uid = space uid, representative point, WGS84).
    """
    if exposure_thresholds_kmh is None:
        risk = table("risk_map").set_index("name")["value"]
        low, high = float(risk["exposure_medium_kmh"]), float(risk["exposure_high_kmh"])
    else:
        low, high = exposure_thresholds_kmh
    usable = usable_area(spaces, buildings=buildings, obstacles=obstacles)
    exits = entries if has_streets or len(entries) else None
    caps = {p: capacity(spaces, exits, profile=p, usable_area_m2=usable) for p in PROFILES}
    main = (
        caps[profile]
        if profile in caps
        else capacity(spaces, exits, profile=profile, usable_area_m2=usable)
    )
    uid = entries["space_uid"].astype(str)
    cls = entries["entry_class"].astype(str)
    counts = pd.crosstab(uid, cls).reindex(spaces.index.astype(str)).fillna(0).astype(int)
    for c in ("pedestrian_only", "vehicle_permeable", "blocked"):
        if c not in counts:
            counts[c] = 0
    speed = entries["worst_speed_kmh"].astype(float)
    over = (
        pd.DataFrame({"low": speed > low, "high": speed > high, "space": uid})
        .groupby("space")
        .sum()
    )
    ranked = entries.assign(_s=speed).sort_values("_s", ascending=False, na_position="last")
    ranked = ranked[ranked["_s"].notna()].drop_duplicates("space_uid").set_index("space_uid")
    idx = spaces.index.astype(str)
    n_entries = counts.sum(axis=1).to_numpy()
    note = np.where(n_entries == 0, _NO_ENTRIES, "")
    if not has_streets:
        note = np.full(len(spaces), _NO_STREETS, dtype=object)
    if extra_note:
        note = np.array([f"{n}; {extra_note}" if n else extra_note for n in note], dtype=object)
    out = pd.DataFrame(
        {
            "name": spaces["name"].to_numpy(),
            "kind": spaces["kind"].to_numpy(),
            "area_m2": main["area_m2"].to_numpy(),
            "usable_area_m2": main["usable_area_m2"].to_numpy(),
            "design_density": main["design_density"].to_numpy(),
            "capacity_density": main["capacity_density"].to_numpy(),
            "capacity_egress": main["capacity_egress"].to_numpy(),
            "capacity_persons": main["capacity_persons"].to_numpy(),
            "limited_by": main["limited_by"].to_numpy(),
            "los": main["los"].to_numpy(),
            "capacity_ordinary": caps["ordinary"]["capacity_persons"].to_numpy(),
            "capacity_peak": caps["peak"]["capacity_persons"].to_numpy(),
            "capacity_event": caps["event"]["capacity_persons"].to_numpy(),
            "n_entries": n_entries,
            "n_pedestrian_only": counts["pedestrian_only"].to_numpy(),
            "n_vehicle_permeable": counts["vehicle_permeable"].to_numpy(),
            "n_blocked": counts["blocked"].to_numpy(),
            "worst_speed_kmh": ranked["_s"].reindex(idx).to_numpy(dtype=float),
            "worst_vehicle": ranked["worst_vehicle"].reindex(idx).to_numpy(),
            "worst_entry_uid": _worst_uid(entries, speed, idx),
            "n_entries_over_30": over["low"].reindex(idx).fillna(0).astype(int).to_numpy(),
            "n_entries_over_48": over["high"].reindex(idx).fillna(0).astype(int).to_numpy(),
            "required_rating": ranked["required_rating"].reindex(idx).to_numpy(),
            "reference_version": version(),
            "note": pd.array(note, dtype="string"),
        },
        index=pd.Index(idx, name="uid"),
    )
    points = gpd.GeoSeries(
        spaces.geometry.representative_point().to_numpy(), crs=spaces.crs, index=out.index
    )
    return conform("space_metric", gpd.GeoDataFrame(out, geometry=points.to_crs(WGS84)))


def _worst_uid(entries: gpd.GeoDataFrame, speed: pd.Series, idx: pd.Index) -> np.ndarray:
    frame = pd.DataFrame(
        {
            "space": entries["space_uid"].astype(str),
            "speed": speed,
            "uid": entries.index.astype(str),
        }
    )
    frame = (
        frame[frame["speed"].notna()].sort_values("speed", ascending=False).drop_duplicates("space")
    )
    return np.asarray(frame.set_index("space")["uid"].reindex(idx).to_numpy())
