"""Checks of a scenario's planned barriers: do they close the streets they cross, and does
each one's crash rating cover the vehicles that can reach it?

For every planned barrier and every hostile-vehicle street it stands on or crosses:
whether the edited network is closed there (a row of posts whose clear gaps exceed
``max_bollard_gap_m``, or a line that stops short of a kerb, leaves it open), and the
speed each vehicle class can reach *at that barrier* on the baseline network, from
either side (the barrier itself is not there yet when the vehicle approaches it). A
rated barrier covers a class when its rating covers the class's test mass at that speed
(high parameter set) times the safety factor
(:func:`~geo_protect.analysis.crash_ratings.covers`).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.analysis.approach import approach_speeds
from geo_protect.analysis.approach.field import SpeedField
from geo_protect.analysis.crash_ratings import covers, parse_rating
from geo_protect.analysis.network import StreetNetwork
from geo_protect.analysis.vehicles import vehicle_classes
from geo_protect.reference import parameter

__all__ = ["CHECK_COLUMNS", "barrier_checks"]

#: Columns of :func:`barrier_checks`.
CHECK_COLUMNS = (
    "barrier_uid",
    "kind",
    "edge",
    "street_uid",
    "closes",
    "vehicle",
    "speed_kmh",
    "speed_high_kmh",
    "rating",
    "covers",
)


def barrier_checks(
    added: gpd.GeoDataFrame,
    before: StreetNetwork,
    after: StreetNetwork,
    *,
    field: SpeedField | None = None,
) -> pd.DataFrame:
    """One row per (planned barrier, street it crosses, vehicle class).

    Parameters
    ----------
    added : GeoDataFrame
        The planned barriers (``scenario.engine.edited_data``), WGS84.
    before, after : StreetNetwork
        The baseline and the edited street networks (same streets, same metric CRS).
    field : SpeedField, optional
        The speed field of ``before`` (:func:`~geo_protect.analysis.approach.field.speed_field`),
        kept by the incremental path: speeds are read from it instead of a new search
        of ``before``.

    Returns
    -------
    DataFrame
        :data:`CHECK_COLUMNS`; ``covers`` is NA without a rating.
    """
    pairs = _crossings(added.to_crs(before.crs), before)
    if pairs.empty:
        return pd.DataFrame(columns=list(CHECK_COLUMNS))
    closed = set(zip(after.barriers["edge"], after.barriers["barrier_uid"], strict=True))
    pairs["closes"] = [
        (e, b) in closed for e, b in zip(pairs["edge"], pairs["barrier_uid"], strict=True)
    ]
    speeds = _speeds_at(pairs, before, field)
    out = pairs.merge(speeds, on="pair")
    classes = vehicle_classes(include_all=True)
    sf = parameter("hvm_safety_factor")
    ratings = {b: added.at[b, "tags"] for b in added.index}
    out["rating"] = [_rating_of(ratings[b]) for b in out["barrier_uid"]]
    out["covers"] = [
        pd.NA
        if r is None
        else covers(parse_rating(r), mass_kg=float(classes.at[v, "test_mass_kg"]), speed_kmh=s * sf)
        for r, v, s in zip(out["rating"], out["vehicle"], out["speed_high_kmh"], strict=True)
    ]
    return out[list(CHECK_COLUMNS)].reset_index(drop=True)


def _rating_of(tags: object) -> str | None:
    import json

    value = json.loads(tags).get("plan:rating") if isinstance(tags, str) else None
    return None if value is None else str(value)


def _crossings(added_m: gpd.GeoDataFrame, network: StreetNetwork) -> pd.DataFrame:
    """Each (planned barrier, vehicle edge) it stands on or crosses, with the position."""
    edges = network.vehicle_edges
    tol = parameter("barrier_on_edge_tolerance_m")
    lines = edges.geometry.values
    bi, ei = shapely.STRtree(lines).query(
        added_m.geometry.values, predicate="dwithin", distance=tol
    )
    if len(bi) == 0:
        return pd.DataFrame()
    geom = added_m.geometry.values[bi]
    hit = shapely.intersection(geom, lines[ei])
    where = np.where(shapely.is_empty(hit), geom, hit)
    at = shapely.line_locate_point(lines[ei], shapely.centroid(where))
    return pd.DataFrame(
        {
            "pair": np.arange(len(bi)),
            "barrier_uid": added_m.index.to_numpy()[bi],
            "kind": added_m["kind"].astype(str).to_numpy()[bi],
            "edge": edges.index.to_numpy()[ei],
            "street_uid": edges["street_uid"].astype(object).to_numpy()[ei],
            "at_m": at,
        }
    )


def _speeds_at(
    pairs: pd.DataFrame, network: StreetNetwork, field: SpeedField | None
) -> pd.DataFrame:
    """Per pair and class: the fastest arrival at the barrier from either side."""
    both = pd.concat([pairs.assign(towards="v"), pairs.assign(towards="u")], ignore_index=True)
    cols = ["speed_kmh", "speed_high_kmh"]
    if field is not None:
        found = field.at(both["edge"].to_numpy(), both["at_m"].to_numpy(), both["towards"])
        found["pair"] = both["pair"].to_numpy()[found["point"].to_numpy()]
        return found.groupby(["pair", "vehicle"])[cols].max().reset_index()
    targets = pd.DataFrame(
        {
            "space_uid": both["pair"].astype(str).to_numpy(),
            "edge": both["edge"].to_numpy(),
            "at_m": both["at_m"].to_numpy(),
            "towards": both["towards"].to_numpy(),
            "impact_angle_deg": 90.0,
        },
        index=pd.Index([f"t{i}" for i in range(len(both))]),
    )
    found = approach_speeds(network, targets)
    found["pair"] = found["space_uid"].astype(int)
    return found.groupby(["pair", "vehicle"])[cols].max().reset_index()
