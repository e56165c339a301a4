"""Per-space metrics: capacity, level of service, entries and vehicle exposure."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_protect.analysis.crowd import PROFILES, capacity, usable_area
from geo_protect.reference import table, version
from geo_protect.schema import WGS84, conform

__all__ = ["space_metrics", "worst_per_entry"]


_NO_STREETS = "no street data: entries from mapped entrances only, capacity by density only"


_NO_ENTRIES = "no entries found: capacity by density only"


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
