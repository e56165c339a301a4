"""Entry points of public spaces: where people and hostile vehicles can get in.

An entry is a point of a space's outline where a way of the walk or the hostile-vehicle
network gets in (domain brief §6.3: every intersection of the outline with a passable
way is an entrance), plus mapped ``entrance=*`` nodes and gates on the outline.

How the outline is read (:mod:`geo_protect.analysis.crossings`), for every way piece (network
edge) that reaches it:

* each point where an edge meets the outline is looked at from both sides, a few metres
  along the edge (``entry_probe_m``): the edge is *inside* the space there, *outside*,
  or *along* the outline (within ``entry_boundary_tolerance_m``);
* a point is an entry when some edge there goes inside and some other side is outside
  or along the outline (a street crossing the outline, or continuing into the space
  from a node on it), or when every edge there comes from outside and ends on the
  outline (OSM pedestrian areas are often not in the street layer: streets end on
  their outline); edges that only run along the outline, or touch it from inside, are
  not;
* entry points closer than ``entry_merge_m`` are one entry.

The vehicle class follows the hostile-vehicle network (:mod:`geo_protect.analysis.network`): an
entry is ``vehicle_permeable`` when a hostile-vehicle edge reaches it from outside and
no physical barrier closes that edge between its outer end and the entry (bollard rows
close an edge only when every clear gap is at most ``max_bollard_gap_m``); ``blocked``
when every such edge is closed; ``pedestrian_only`` when no hostile-vehicle edge reaches
it.

Optionally, *frontage breaches*: stretches of the outline along which a hostile-vehicle
edge runs within ``frontage_max_offset_m`` with no mapped barrier or building in between
(a vehicle can mount the kerb anywhere there) become ``vehicle_permeable`` entries of
kind ``frontage`` at the middle of the stretch (:mod:`geo_protect.analysis.frontage`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Geod

from geo_protect.analysis.crossings import network_crossings
from geo_protect.analysis.frontage import frontage_breaches
from geo_protect.analysis.network import StreetNetwork
from geo_protect.errors import AnalysisError, ValidationError
from geo_protect.reference import parameter, table
from geo_protect.schema import ENTRY_POINT, WGS84, conform

__all__ = ["ENTRY_POINT", "entry_points"]


_GEOD = Geod(ellps="WGS84")
_CLASS_RANK = {"pedestrian_only": 0, "blocked": 1, "vehicle_permeable": 2}


def entry_points(
    spaces: gpd.GeoDataFrame,
    network: StreetNetwork | None,
    *,
    entrances: gpd.GeoDataFrame | None = None,
    barriers: gpd.GeoDataFrame | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    crs: str | None = None,
    frontage: bool = True,
    merge_m: float | None = None,
    tolerance_m: float | None = None,
    probe_m: float | None = None,
    barrier_tolerance_m: float | None = None,
    street_end_depth_ratio: float | None = None,
    entrance_width_m: float | None = None,
    frontage_max_offset_m: float | None = None,
    frontage_min_length_m: float | None = None,
    max_bollard_gap_m: float | None = None,
) -> gpd.GeoDataFrame:
    """Entry points of every public space (the ``entry_point`` layer).

    Parameters
    ----------
    spaces : GeoDataFrame
        The ``public_space`` layer (any CRS; measured in ``network.crs``).
    network : StreetNetwork or None
        The city's :class:`~geo_protect.analysis.network.StreetNetwork`; ``None`` when the city
        has no streets (only mapped entrances and gates are then found).
    entrances : GeoDataFrame, optional
        The ``entrance`` layer: nodes on an outline become entries of kind ``entrance``.
    barriers : GeoDataFrame, optional
        The ``barrier`` layer: gates on an outline become entries of kind ``gate``;
        barriers stop frontage breaches. Which barriers close network edges, and where
        along them, is the network's ``barriers`` table (every one of them counts:
        an entry is closed by any of them between it and the edge's outer end).
    buildings : GeoDataFrame, optional
        The ``building`` layer; buildings between a road and an outline stop frontage
        breaches.
    crs : str, optional
        Metric CRS; the network's by default (required when ``network`` is ``None``).
    frontage : bool, default True
        Also report frontage breaches (kind ``frontage``).
    merge_m, tolerance_m, probe_m, barrier_tolerance_m, street_end_depth_ratio, entrance_width_m, \
frontage_max_offset_m, frontage_min_length_m, max_bollard_gap_m : float, optional
        Override the reference values ``entry_merge_m``, ``entry_boundary_tolerance_m``,
        ``entry_probe_m``, ``entry_barrier_tolerance_m``, ``street_end_depth_ratio``,
        ``min_exit_width_m``, ``frontage_max_offset_m``, ``frontage_min_length_m``,
        ``max_bollard_gap_m`` (posts between a road and an outline shield this far on
        either side). Whether a bollard row closes a *network edge* is decided when the
        network is built (:func:`geo_protect.analysis.network.street_network`).

    Returns
    -------
    GeoDataFrame
        The ``entry_point`` layer in WGS84, uid ``"{space_uid}#{n}"`` numbered along
        each outline. ``edge``, ``at_m`` and ``towards`` locate vehicle-permeable
        entries on the hostile-vehicle network (``at_m`` from the edge's ``u`` end,
        ``towards`` the end a vehicle drives to in order to enter); ``bearing_deg`` is
        the direction into the space (0 = north, clockwise); ``impact_angle_deg`` the
        angle between the way and the outline (90 = perpendicular). The
        ``worst_*`` and ``required_rating`` columns are left empty for the vehicle
        analysis (:func:`geo_protect.analysis.city.analyse_city`). A space without entries
        simply has no rows.

    Raises
    ------
    ValidationError
        If ``spaces`` holds non-polygon geometries.
    AnalysisError
        If no metric CRS is known (``network`` is ``None`` and ``crs`` is not given).
    """
    p = _Params.resolve(locals())  # only the arguments are local yet
    metric = _metric_crs(network, crs)
    if spaces.empty:
        return conform("entry_point", _empty())
    polys = _polygons(spaces, metric)
    found = _found_entries(polys, network, entrances, barriers, buildings, frontage, p)
    if found.empty:
        return conform("entry_point", _empty())
    return conform("entry_point", _finish(_merge_mapped(found, p.merge), polys, metric, p))


def _metric_crs(network: StreetNetwork | None, crs: str | None) -> str:
    """The CRS entries are measured in: ``crs``, else the network's."""
    metric = crs or (network.crs if network is not None else None)
    if metric is None:
        raise AnalysisError("entry points: no metric CRS (pass crs= when there is no network)")
    return metric


def _polygons(spaces: gpd.GeoDataFrame, metric: str) -> gpd.GeoDataFrame:
    """The space outlines in ``metric``; every one must be a (multi)polygon."""
    polys = spaces.to_crs(metric)
    types = shapely.get_type_id(polys.geometry.values)
    if not np.isin(types, (3, 6)).all():
        raise ValidationError("entry points: the public_space layer holds non-polygon geometries")
    return polys


def _found_entries(
    polys: gpd.GeoDataFrame,
    network: StreetNetwork | None,
    entrances: gpd.GeoDataFrame | None,
    barriers: gpd.GeoDataFrame | None,
    buildings: gpd.GeoDataFrame | None,
    frontage: bool,
    p: _Params,
) -> pd.DataFrame:
    """Every entry found, network and mapped, before merging (empty frame when none)."""
    frames = _network_frames(polys, network, barriers, buildings, frontage, p)
    frames.append(_mapped_entries(polys, entrances, barriers, p))
    if not any(len(f) for f in frames):
        return pd.DataFrame()
    return pd.concat([f for f in frames if len(f)], ignore_index=True)


def _network_frames(
    polys: gpd.GeoDataFrame,
    network: StreetNetwork | None,
    barriers: gpd.GeoDataFrame | None,
    buildings: gpd.GeoDataFrame | None,
    frontage: bool,
    p: _Params,
) -> list[pd.DataFrame]:
    """Network crossings of the outlines and (optionally) frontage breaches."""
    if network is None or network.edges.empty:
        return []
    edges = network.edges[network.edges["walk"] | network.edges["hostile_vehicle"]]
    crossings = network_crossings(
        polys,
        edges,
        network.barriers,
        tolerance_m=p.tol,
        probe_m=p.probe,
        merge_m=p.merge,
        barrier_tolerance_m=p.barrier_tol,
    )
    frames = [crossings]
    if frontage:
        frames.append(
            frontage_breaches(
                polys,
                edges,
                barriers=barriers,
                buildings=buildings,
                crossings=crossings,
                max_offset_m=p.front_offset,
                min_length_m=p.front_length,
                tolerance_m=p.tol,
                merge_m=p.merge,
                max_bollard_gap_m=p.max_gap,
            )
        )
    return frames


#: :class:`_Params` attribute ← (keyword argument of :func:`entry_points`, reference parameter)
_OVERRIDES = {
    "merge": ("merge_m", "entry_merge_m"),
    "tol": ("tolerance_m", "entry_boundary_tolerance_m"),
    "probe": ("probe_m", "entry_probe_m"),
    "barrier_tol": ("barrier_tolerance_m", "entry_barrier_tolerance_m"),
    "end_ratio": ("street_end_depth_ratio", "street_end_depth_ratio"),
    "entrance_width": ("entrance_width_m", "min_exit_width_m"),
    "front_offset": ("frontage_max_offset_m", "frontage_max_offset_m"),
    "front_length": ("frontage_min_length_m", "frontage_min_length_m"),
    "max_gap": ("max_bollard_gap_m", "max_bollard_gap_m"),
}


class _Params:
    def __init__(self, **values: float) -> None:
        self.merge = values["merge"]
        self.tol = values["tol"]
        self.probe = values["probe"]
        self.barrier_tol = values["barrier_tol"]
        self.end_ratio = values["end_ratio"]
        self.entrance_width = values["entrance_width"]
        self.front_offset = values["front_offset"]
        self.front_length = values["front_length"]
        self.max_gap = values["max_gap"]

    @classmethod
    def resolve(cls, arguments: Mapping[str, Any]) -> _Params:
        """The values given among ``arguments`` (by keyword), else the reference ones."""
        return cls(
            **{
                attr: _value(arguments[keyword], reference)
                for attr, (keyword, reference) in _OVERRIDES.items()
            }
        )


def _value(given: float | None, name: str) -> float:
    return parameter(name) if given is None else float(given)


def _empty() -> gpd.GeoDataFrame:
    from geo_protect.schema import empty_layer

    return empty_layer("entry_point")


def _mapped_entries(
    polys: gpd.GeoDataFrame,
    entrances: gpd.GeoDataFrame | None,
    barriers: gpd.GeoDataFrame | None,
    p: _Params,
) -> pd.DataFrame:
    """Mapped entrance nodes and gates standing on an outline."""
    parts = []
    if entrances is not None and not entrances.empty:
        parts.append(entrances.assign(_kind="entrance"))
    if barriers is not None and not barriers.empty:
        gates = table("entry_gates")["barrier"].astype(str).tolist()
        pts = barriers[
            (shapely.get_type_id(barriers.geometry.values) == 0) & barriers["kind"].isin(gates)
        ]
        if not pts.empty:
            parts.append(pts.assign(_kind="gate"))
    if not parts:
        return pd.DataFrame()
    nodes = gpd.GeoDataFrame(
        pd.concat([x[["_kind", "tags", "geometry"]].to_crs(polys.crs) for x in parts]),
        geometry="geometry",
    )
    bnd = shapely.boundary(polys.geometry.values)
    ni, si = shapely.STRtree(bnd).query(nodes.geometry.values, predicate="dwithin", distance=p.tol)
    if len(ni) == 0:
        return pd.DataFrame()
    xy = shapely.get_coordinates(nodes.geometry.values[ni])
    width = _tag_width(nodes["tags"].to_numpy()[ni])
    return pd.DataFrame(
        {
            "space": si,
            "x": xy[:, 0],
            "y": xy[:, 1],
            "kind": nodes["_kind"].to_numpy()[ni],
            "mapped": True,
            "walk": True,
            "vehicle": False,
            "networks": "walk",
            "entry_class": "pedestrian_only",
            "width_m": np.where(np.isnan(width), p.entrance_width, width),
            "width_source": np.where(np.isnan(width), "entrance", "width"),
            "in_dx": np.nan,
            "in_dy": np.nan,
            "way_dx": np.nan,
            "way_dy": np.nan,
        }
    )


def _tag_width(tags: np.ndarray) -> np.ndarray:
    """``width=*`` in metres from tags (JSON text or dicts); NaN when absent or not numeric."""
    out = np.full(len(tags), np.nan)
    for i, t in enumerate(tags):  # tags are small dicts; no geometry work here
        d = json.loads(t) if isinstance(t, str) and t else (t if isinstance(t, dict) else {})
        raw = str(d.get("width", "")).strip().removesuffix("m").strip()
        try:
            out[i] = float(raw)
        except ValueError:
            continue
    return out


def _merge_mapped(found: pd.DataFrame, merge: float) -> pd.DataFrame:
    """Fold mapped entrances and gates into network entries closer than ``merge``."""
    found = found.reset_index(drop=True)
    mapped = found["mapped"].to_numpy(dtype=bool)
    if not mapped.any() or mapped.all():
        return found.drop_duplicates(["space", "x", "y"]).reset_index(drop=True)
    net, own = found[~mapped], found[mapped]
    a, b = shapely.STRtree(shapely.points(net[["x", "y"]].to_numpy())).query(
        shapely.points(own[["x", "y"]].to_numpy()), predicate="dwithin", distance=merge
    )
    same = own["space"].to_numpy()[a] == net["space"].to_numpy()[b]
    a, b = a[same], b[same]
    # the network entry keeps its geometry, width and class; it takes the mapped kind
    kinds = pd.Series(own["kind"].to_numpy()[a], index=net.index[b])
    kinds = kinds[~kinds.index.duplicated()]
    found.loc[kinds.index, "kind"] = kinds.to_numpy()
    drop = own.index[np.unique(a)]
    return found.drop(index=drop).drop_duplicates(["space", "x", "y"]).reset_index(drop=True)


def _finish(
    entries: pd.DataFrame, polys: gpd.GeoDataFrame, crs: str, p: _Params
) -> gpd.GeoDataFrame:
    """Directions, angles, kinds of corridor entries, uids; WGS84 frame."""
    space = entries["space"].to_numpy()
    geom = polys.geometry.values[space]
    bnd = shapely.boundary(geom)
    pts = shapely.points(entries[["x", "y"]].to_numpy())
    # outline direction at the entry
    pos = shapely.line_locate_point(bnd, pts)
    total = shapely.length(bnd)
    ahead = shapely.line_interpolate_point(bnd, np.minimum(pos + 1.0, total))
    back = shapely.line_interpolate_point(bnd, np.maximum(pos - 1.0, 0.0))
    t = shapely.get_coordinates(ahead) - shapely.get_coordinates(back)
    t /= np.hypot(t[:, 0], t[:, 1])[:, None]
    # inward normal of the outline: the side of the tangent that is inside
    n = np.c_[-t[:, 1], t[:, 0]]
    xy = entries[["x", "y"]].to_numpy()
    flip = ~shapely.contains(geom, shapely.points(xy + n * p.tol * 2))
    n[flip] *= -1
    in_d = entries[["in_dx", "in_dy"]].to_numpy(dtype=float, copy=True)
    missing = np.isnan(in_d).any(axis=1)
    in_d[missing] = n[missing]
    way = entries[["way_dx", "way_dy"]].to_numpy(dtype=float, copy=True)
    cos = np.abs(way[:, 0] * t[:, 0] + way[:, 1] * t[:, 1])
    impact = np.degrees(np.arccos(np.clip(cos, 0.0, 1.0)))

    kind = entries["kind"].to_numpy(dtype=object).copy()
    corridor = (polys["kind"].astype(str).to_numpy()[space] == "pedestrian_street") & (
        kind == "crossing"
    )
    if corridor.any():
        kind[corridor] = _corridor_kind(geom[corridor], xy[corridor], n[corridor], p.end_ratio)

    # WGS84 bearings (true north) from the entry a metre into the space
    here = gpd.GeoSeries(shapely.points(xy), crs=crs).to_crs(WGS84)
    there = gpd.GeoSeries(shapely.points(xy + in_d), crs=crs).to_crs(WGS84)
    az, _, _ = _GEOD.inv(
        here.x.to_numpy(), here.y.to_numpy(), there.x.to_numpy(), there.y.to_numpy()
    )
    bearing = np.mod(np.asarray(az), 360.0)

    uids = polys.index.to_numpy()[space].astype(str)
    order = np.lexsort((pos / np.where(total > 0, total, 1), uids))
    number = np.empty(len(order), dtype=np.int64)
    ranks = pd.Series(uids[order]).groupby(uids[order]).cumcount().to_numpy() + 1
    number[order] = ranks
    out = pd.DataFrame(
        {
            "space_uid": uids,
            "kind": kind,
            "networks": entries["networks"].to_numpy(),
            "bearing_deg": np.round(bearing, 1),
            "width_m": entries["width_m"].to_numpy(dtype=float),
            "width_source": entries["width_source"].to_numpy(),
            "entry_class": entries["entry_class"].to_numpy(),
            "street_uid": _col(entries, "street_uid"),
            "edge": entries["edge"].astype("Int64").to_numpy() if "edge" in entries else pd.NA,
            "at_m": entries["at_m"].to_numpy(dtype=float) if "at_m" in entries else np.nan,
            "towards": _col(entries, "towards"),
            "impact_angle_deg": np.round(impact, 1),
            "worst_speed_kmh": np.nan,
            "worst_speed_low_kmh": np.nan,
            "worst_speed_high_kmh": np.nan,
            "worst_vehicle": pd.NA,
            "required_rating": pd.NA,
        },
        index=pd.Index([f"{u}#{k}" for u, k in zip(uids, number, strict=True)], name="uid"),
    )
    out = out.iloc[order]
    return gpd.GeoDataFrame(out, geometry=here.values[order], crs=WGS84)


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), None, dtype=object)
    return np.asarray(frame[name].astype(object).where(frame[name].notna(), None).to_numpy())


def _corridor_kind(
    geom: np.ndarray, xy: np.ndarray, normal: np.ndarray, ratio: float
) -> np.ndarray:
    """``street_end`` when the inward normal runs far along the corridor, else ``junction``."""
    width = 2 * shapely.area(geom) / shapely.length(shapely.boundary(geom))  # ≈ corridor width
    reach = width * (ratio + 1)
    ray = shapely.linestrings(
        np.stack([xy, xy + normal * reach[:, None]], axis=1).reshape(-1, 2),
        indices=np.repeat(np.arange(len(xy)), 2),
    )
    inside = shapely.length(shapely.intersection(ray, geom))
    return np.where(inside > width * ratio, "street_end", "junction")
