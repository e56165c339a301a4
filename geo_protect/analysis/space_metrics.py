"""Per-space metrics: capacity, expected occupancy, entries, vehicle exposure and a label."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_protect.analysis.crowd import (
    PROFILES,
    capacity,
    expected_occupancy,
    nearby_poi_score,
    usable_area,
)
from geo_protect.analysis.labels import space_labels
from geo_protect.reference import table, version
from geo_protect.schema import WGS84, conform

__all__ = ["space_metrics", "worst_per_entry"]


_NO_STREETS = "no street data: entries from mapped entrances only, capacity by density only"


_NO_ENTRIES = "no entries found: capacity by density only"


def worst_per_entry(entries: gpd.GeoDataFrame, approach: pd.DataFrame) -> gpd.GeoDataFrame:
    """Fill each entry's ``worst_speed_kmh``, ``worst_vehicle`` and ``required_rating``.

    The worst approach of an entry is its fastest (ties: the most energetic); its
    vehicle and required rating go with it.

    Parameters
    ----------
    entries : GeoDataFrame
        The ``entry_point`` layer.
    approach : DataFrame
        Vehicle approaches (``entry_uid``, ``speed_kmh``, ``energy_kj``, ``vehicle``,
        ``required_rating``).

    Returns
    -------
    GeoDataFrame
        A conformed copy of ``entries`` (unchanged when there is no approach).
    """
    out = entries.copy()
    if approach.empty:
        return out
    # ties (two trucks of one test mass at one capped speed): the later class of the
    # table, whatever the order of the rows
    ordered = pd.DataFrame(approach).sort_values(
        ["entry_uid", "speed_kmh", "energy_kj", "vehicle"],
        ascending=[True, False, False, False],
        kind="stable",
    )
    worst = ordered.drop_duplicates("entry_uid").set_index("entry_uid")
    idx = out.index
    out["worst_speed_kmh"] = worst["speed_kmh"].reindex(idx).astype(float).to_numpy()
    for col in ("speed_low_kmh", "speed_high_kmh"):  # the range of that same approach
        if col in worst.columns:
            out[f"worst_{col}"] = worst[col].reindex(idx).astype(float).to_numpy()
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
    approach: pd.DataFrame | None = None,
    pois: gpd.GeoDataFrame | None = None,
    streets: gpd.GeoDataFrame | None = None,
    usable_area_m2: pd.Series | None = None,
    labels: pd.Series | None = None,
) -> gpd.GeoDataFrame:
    """The ``space_metric`` layer from spaces (metric CRS) and their entries.

    Parameters
    ----------
    spaces : GeoDataFrame
        The ``public_space`` layer, in a metric CRS.
    entries : GeoDataFrame
        Their ``entry_point`` layer, with the worst approaches (:func:`worst_per_entry`).
    buildings, obstacles : GeoDataFrame, optional
        Footprints taken off the usable area (see :func:`~geo_protect.analysis.crowd.usable_area`).
    profile : str
        Time profile of the headline capacity (all of :data:`PROFILES` are also given).
    has_streets : bool
        Whether street data was available (without it, capacity is by density only).
    exposure_thresholds_kmh : tuple of float, optional
        Medium and high exposure speeds; the ``risk_map`` reference table's by default.
    extra_note : str
        Appended to every space's ``note``.
    approach : DataFrame, optional
        Vehicle approaches: ``worst_energy_kj`` is each space's most energetic one.
    pois, streets : GeoDataFrame, optional
        POIs set the attractiveness factor of ``expected_peak_persons``
        (:func:`~geo_protect.analysis.crowd.expected_occupancy`); named streets and POIs
        label unnamed spaces (:func:`~geo_protect.analysis.labels.space_labels`).
    usable_area_m2, labels : Series, optional
        Per space uid, when already known (neither depends on barriers); else computed.

    Returns
    -------
    GeoDataFrame
        One row per space (uid = space uid, representative point, WGS84).
    """
    low, high = _exposure_thresholds(exposure_thresholds_kmh)
    usable, label = _area_and_label(spaces, usable_area_m2, labels, buildings, obstacles)
    if labels is None:
        label = space_labels(spaces, streets, pois)
    exits = entries if has_streets or len(entries) else None
    caps = {
        p: capacity(spaces, exits, profile=p, usable_area_m2=usable) for p in {*PROFILES, profile}
    }
    main = caps[profile]
    idx = spaces.index.astype(str)
    occupancy = _occupancy(spaces, usable, main["capacity_persons"], pois)
    counted = _entry_columns(entries, idx)
    out = pd.DataFrame(
        {
            "name": spaces["name"].to_numpy(),
            "label": label.astype("string").to_numpy(),
            "kind": spaces["kind"].to_numpy(),
            **_capacity_columns(main, caps),
            "expected_peak_persons": occupancy["expected_peak_persons"].to_numpy(),
            "occupancy_rule": occupancy["occupancy_rule"].to_numpy(),
            **counted,
            **_exposure_columns(entries, idx, low, high),
            "worst_energy_kj": _worst_energy(approach, idx),
            "reference_version": version(),
            "note": pd.array(_notes(counted["n_entries"], has_streets, extra_note), dtype="string"),
        },
        index=pd.Index(idx, name="uid"),
    )
    points = gpd.GeoSeries(spaces.representative_point().to_numpy(), index=out.index)
    return conform(
        "space_metric", gpd.GeoDataFrame(out, geometry=points.set_crs(spaces.crs)).to_crs(WGS84)
    )


def _area_and_label(
    spaces: gpd.GeoDataFrame,
    usable_area_m2: pd.Series | None,
    labels: pd.Series | None,
    buildings: gpd.GeoDataFrame | None,
    obstacles: gpd.GeoDataFrame | None,
) -> tuple[pd.Series, pd.Series]:
    """The usable areas and labels given (aligned on ``spaces``), the areas computed when
    not given; labels not given are left empty for the caller to find."""
    usable = (
        usable_area(spaces, buildings=buildings, obstacles=obstacles)
        if usable_area_m2 is None
        else usable_area_m2.reindex(spaces.index).astype(float)
    )
    label = pd.Series(pd.NA, index=spaces.index) if labels is None else labels
    return usable, label.reindex(spaces.index)


def _occupancy(
    spaces: gpd.GeoDataFrame, usable: pd.Series, cap: pd.Series, pois: gpd.GeoDataFrame | None
) -> pd.DataFrame:
    """Expected peak occupancy by use, with the POI score within ``poi_radius_m``."""
    radius = float(table("risk_parameters").set_index("name").at["poi_radius_m", "value"])
    score = nearby_poi_score(spaces, pois, radius_m=radius)
    return expected_occupancy(spaces["kind"], usable, score, cap)


def _exposure_thresholds(thresholds_kmh: tuple[float, float] | None) -> tuple[float, float]:
    """Medium and high exposure speeds: as given, else from the ``risk_map`` table."""
    if thresholds_kmh is not None:
        return thresholds_kmh
    risk = table("risk_map").set_index("name")["value"]
    return float(risk["exposure_medium_kmh"]), float(risk["exposure_high_kmh"])


def _capacity_columns(main: pd.DataFrame, caps: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """The headline capacity of each space and its capacity under every profile."""
    return {
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
    }


def _entry_columns(entries: gpd.GeoDataFrame, idx: pd.Index) -> dict[str, np.ndarray]:
    """Per space (``idx``): its number of entries, and of each class."""
    counts = _entry_class_counts(entries, idx)
    return {
        "n_entries": counts.sum(axis=1).to_numpy(),
        "n_pedestrian_only": counts["pedestrian_only"].to_numpy(),
        "n_vehicle_permeable": counts["vehicle_permeable"].to_numpy(),
        "n_blocked": counts["blocked"].to_numpy(),
    }


def _entry_class_counts(entries: gpd.GeoDataFrame, idx: pd.Index) -> pd.DataFrame:
    """Per space (``idx``): its number of entries of each ``entry_class``."""
    uid = entries["space_uid"].astype(str)
    cls = entries["entry_class"].astype(str)
    counts = pd.crosstab(uid, cls).reindex(idx).fillna(0).astype(int)
    for c in ("pedestrian_only", "vehicle_permeable", "blocked"):
        if c not in counts:
            counts[c] = 0
    return counts


def _exposure_columns(
    entries: gpd.GeoDataFrame, idx: pd.Index, low: float, high: float
) -> dict[str, np.ndarray]:
    """Per space: its fastest approach (speed, vehicle, entry, rating), entries over each limit."""
    uid = entries["space_uid"].astype(str)
    speed = entries["worst_speed_kmh"].astype(float)
    over = (
        pd.DataFrame({"low": speed > low, "high": speed > high, "space": uid})
        .groupby("space")
        .sum()
    )
    ranked = entries.assign(_s=speed).sort_values("_s", ascending=False, na_position="last")
    ranked = ranked[ranked["_s"].notna()].drop_duplicates("space_uid").set_index("space_uid")
    return {
        "worst_speed_kmh": ranked["_s"].reindex(idx).to_numpy(dtype=float),
        **{
            f"worst_{c}": ranked[f"worst_{c}"].reindex(idx).to_numpy(dtype=float)
            for c in ("speed_low_kmh", "speed_high_kmh")
            if f"worst_{c}" in ranked.columns
        },
        "worst_vehicle": ranked["worst_vehicle"].reindex(idx).to_numpy(),
        "worst_entry_uid": _worst_uid(entries, speed, idx),
        "n_entries_over_30": over["low"].reindex(idx).fillna(0).astype(int).to_numpy(),
        "n_entries_over_48": over["high"].reindex(idx).fillna(0).astype(int).to_numpy(),
        "required_rating": ranked["required_rating"].reindex(idx).to_numpy(),
    }


def _worst_energy(approach: pd.DataFrame | None, idx: pd.Index) -> np.ndarray:
    """Per space: the kinetic energy (kJ) of its most energetic approach (NaN: none)."""
    if approach is None or approach.empty:
        return np.full(len(idx), np.nan)
    energy = pd.Series(approach["energy_kj"].to_numpy(dtype=float))
    by = energy.groupby(approach["space_uid"].astype(str).to_numpy()).max()
    return np.asarray(by.reindex(idx).to_numpy(dtype=float), dtype=float)


def _notes(n_entries: np.ndarray, has_streets: bool, extra_note: str) -> np.ndarray:
    """Per space: why its capacity is by density only, if it is, and ``extra_note``."""
    note = np.where(n_entries == 0, _NO_ENTRIES, "")
    if not has_streets:
        note = np.full(len(n_entries), _NO_STREETS, dtype=object)
    if extra_note:
        note = np.array([f"{n}; {extra_note}" if n else extra_note for n in note], dtype=object)
    return note


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
