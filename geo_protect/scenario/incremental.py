"""Re-analyse only what a barrier edit can change (issue 10).

A :class:`ScenarioContext` keeps a city's baseline in memory: metric layers, the noded
network with its closures, the through-road lengths, the baseline layers, a speed field
(the search labels of every class and parameter set on the whole network), the
approach targets and their worst-case walks, the run-up each flying start needs and
the POI attractiveness.
:func:`rescore` applies edits and recomputes:

* **closures** only on the streets within reach of an edited barrier (a closure depends
  on the barriers within half the street's width plus the row search distance); the
  **through-road lengths** only when a closure changed (they are cut at closures only);
* **entries** only of the spaces an edit can touch: within ``ENTRY_REACH_M`` of an
  edited barrier, or along a street whose closures changed (a closed street is no longer
  a frontage road; its crossings change class);
* **approach speeds** only of the entries within the longest run-up of any vehicle class
  (to its top speed from rest, in the slowest parameter set) of a street whose closures
  changed or whose through-road change gives or takes a flying start, and of the entries
  that are new or moved (an approach reads nothing else of the barriers). Every walk
  that sets such an entry's speed lies within that run-up of it (the traced run-up is
  never longer), so the search runs on the streets within that distance of those
  entries only, with the through-road lengths of the whole network. When the edits
  only *add* barriers, speeds can only fall, and an entry's speeds fall only if one of
  its baseline worst-case walks (every class, every parameter set:
  :func:`~geo_protect.analysis.approach.walks.approach_walks`) runs on a street whose
  closures or flying starts changed: each untouched walk is still drivable at the same
  speed. Only those entries are searched again;
* **speeds at the planned barriers** read from the speed field (a lookup, no search);
* space metrics, stand-off and scores only of the spaces whose inputs changed (a
  stand-off row whose point cannot move only adds the change of the people around it);
  the before/after tables compare the rows of those spaces only (every other row is the
  baseline's own).

:func:`~geo_protect.scenario.engine.apply_scenario` (a full re-analysis) is the
reference; ``tests/test_scenario_incremental.py`` compares the two on random edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.analysis.approach import (
    WholeNetwork,
    approach_speeds,
    through_lengths,
)
from geo_protect.analysis.approach.field import SpeedField, speed_field
from geo_protect.analysis.approach.walks import Walks, approach_walks
from geo_protect.analysis.city import _targets, in_metric_crs
from geo_protect.analysis.entries import entry_points
from geo_protect.analysis.network import StreetNetwork, street_network, with_barriers
from geo_protect.analysis.space_metrics import worst_per_entry
from geo_protect.analysis.standoff import parking_streets
from geo_protect.analysis.vehicles import SpeedCurve, parameter_sets
from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.reference import parameter
from geo_protect.scenario.downstream import downstream, spaces_near, streets_around
from geo_protect.scenario.engine import (
    ENTRY_COLUMNS,
    SCORE_COLUMNS,
    ScenarioResult,
    _changed,
    _evaluate,
    edited_data,
)
from geo_protect.schema import conform

__all__ = ["ENTRY_REACH_M", "ScenarioContext", "rescore", "scenario_context"]

#: How far from a space's outline a barrier can change its entries, m: a superset of
#: the entry rules' distances (barrier on an entry's way 3 m, frontage offset 5 m plus
#: the shielding between a road and the outline), not a threshold of the analysis.
ENTRY_REACH_M = 25.0
#: Added to an entry's old run-up when it bounds the streets searched again, m: room for
#: rounding only (the bound is exact), not a parameter of the analysis.
_REACH_SLACK_M = 1.0


@dataclass
class ScenarioContext:
    """A city's baseline, kept in memory for :func:`rescore`."""

    city: City
    data: CityData  # WGS84 source layers
    metric: CityData  # the shared layers in the metric CRS
    spaces_m: gpd.GeoDataFrame
    network: StreetNetwork
    through: pd.DataFrame
    layers: dict[str, gpd.GeoDataFrame]
    reach_m: float
    edge_tree: shapely.STRtree  # of network.edges (same order), for the streets around
    parking: pd.Series  # per street uid: a parking street (stand-off reach)
    field: SpeedField  # the baseline's speeds everywhere (speeds at planned barriers)
    targets: pd.DataFrame  # the baseline's approach targets (entries on the network)
    target_keys: pd.Series  # their keys (every column that sets an approach) -> uid
    starts: pd.DataFrame  # per edge and (set, class): the run-up its flying start needs
    attractiveness: pd.DataFrame | None  # POI attractiveness per space (no barrier in it)
    walks: Walks  # the edges of each target's worst-case walks, and their reach
    surveillance_m: gpd.GeoDataFrame  # the cameras in the metric CRS (existing measures)


def longest_run_up() -> float:
    """The longest run-up any vehicle class uses: to its top speed from rest (m)."""
    return max(
        float(SpeedCurve.of(row).run_up(float(row["top_speed_kmh"]) / 3.6))
        for fleet in parameter_sets().values()
        for _, row in fleet.iterrows()
    )


def scenario_context(city: City, data: CityData) -> ScenarioContext:
    """Analyse the baseline once and keep what :func:`rescore` reuses."""
    metric = in_metric_crs(data, city.crs)
    network = street_network(metric["street"], metric["barrier"], crs=city.crs)
    through = through_lengths(network)
    layers = _evaluate(city, data)
    targets = _targets(layers["entry_point"])
    spaces_m = data["public_space"].to_crs(city.crs)
    for frame in (metric["building"], metric["entrance"], network.edges):
        frame.sindex  # noqa: B018  (built now, kept with the frame: the first edit is not slower)
    return ScenarioContext(
        city=city,
        data=data,
        metric=metric,
        spaces_m=spaces_m,
        network=network,
        through=through,
        layers=layers,
        reach_m=longest_run_up(),
        edge_tree=shapely.STRtree(network.edges.geometry.values),
        parking=parking_streets(metric["street"]),
        field=speed_field(network, through_m=through),
        targets=targets,
        target_keys=_first_by_key(targets),
        starts=_start_run_ups(network),
        attractiveness=_attractiveness(city, data),
        surveillance_m=data["surveillance"].to_crs(city.crs),
        walks=approach_walks(network, targets, spaces=spaces_m),
    )


def _attractiveness(city: City, data: CityData) -> pd.DataFrame | None:
    from geo_protect.assess.evidence import poi_attractiveness

    pois = data["poi"]
    if pois.empty:
        return None
    return poi_attractiveness(data["public_space"], pois, crs=city.crs)


def rescore(ctx: ScenarioContext, edits: list[Any], *, name: str = "scenario") -> ScenarioResult:
    """The scenario's result, recomputing entries and speeds near the edits only."""
    city = ctx.city
    after_data, added = edited_data(city, ctx.data, edits)
    barriers_m = _barriers_m(ctx, after_data["barrier"], added)
    edited = _edit_geometry(ctx, added, edits)
    net = with_barriers(ctx.network, barriers_m, near=edited)
    closed = _closures_differ(ctx.network, net)
    # the through-road pieces are cut at closures only: none changed, none to measure
    through = through_lengths(net) if len(closed) else ctx.through
    changed_edges = _changed_edges(ctx, closed, through)
    changed = net.edges.geometry.reindex(changed_edges).to_numpy()  # their geometries
    touched = spaces_near(ctx.spaces_m, edited, ENTRY_REACH_M) | spaces_near(
        ctx.spaces_m, changed, ENTRY_REACH_M
    )
    metric = CityData(ctx.data.city, {**ctx.metric.layers, "barrier": barriers_m}, ctx.data.report)
    entries = _entries(ctx, net, metric, touched)
    # approaches read the closures and through-road lengths only: a barrier that changes
    # neither (a post beside the road, a gate on a footway) changes no approach
    cut = changed_edges if _adds_only(edits) else None
    approach, searched = _approach(ctx, net, through, entries, changed, touched, cut)
    worst = _worst(entries, approach, searched)
    # of the spaces searched again, those whose entries or approaches actually differ
    redone = _differs(ctx.layers["entry_point"], worst, searched) | _differs(
        ctx.layers["approach"], approach, searched
    )
    layers, rescored = downstream(
        ctx, after_data, net, worst, approach, redone, edited, changed, barriers_m=barriers_m
    )
    base = ctx.layers
    # every other space keeps the baseline's rows: only these can differ
    return ScenarioResult(
        name=name,
        barriers=added,
        entries=_changed_in(base["entry_point"], layers["entry_point"], searched, ENTRY_COLUMNS),
        scores=_changed_in(base["assessment"], layers["assessment"], rescored, SCORE_COLUMNS),
        layers=layers,
        checks=_barrier_checks(ctx, added, net),
    )


def _barriers_m(
    ctx: ScenarioContext, barriers: gpd.GeoDataFrame, added: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """The edited ``barrier`` layer in the metric CRS: the baseline's projected rows (the
    same projection of the same points), the added ones projected now."""
    base = ctx.metric["barrier"]
    kept = barriers.index.isin(base.index) & ~barriers.index.isin(added.index)
    if not kept.all():
        fresh = barriers[~kept].to_crs(ctx.city.crs)
        out = pd.concat([base.reindex(barriers.index[kept]), fresh])
        return gpd.GeoDataFrame(out.loc[barriers.index], crs=ctx.city.crs)
    return base.loc[barriers.index]


def _changed_in(
    before: pd.DataFrame, after: pd.DataFrame, spaces: set[str], columns: tuple[str, ...]
) -> pd.DataFrame:
    """:func:`~geo_protect.scenario.engine._changed` of the rows of ``spaces`` (the rows
    of every other space are the baseline's own, unchanged)."""
    keep = sorted(spaces)
    return _changed(
        before[before["space_uid"].astype(str).isin(keep).to_numpy()],
        after[after["space_uid"].astype(str).isin(keep).to_numpy()],
        columns,
    )


def _worst(
    entries: gpd.GeoDataFrame, approach: gpd.GeoDataFrame, spaces: set[str]
) -> gpd.GeoDataFrame:
    """:func:`worst_per_entry` of the entries of ``spaces``; the others keep their values
    (their entries and approaches are the baseline's)."""
    if not spaces:
        return entries
    mine = entries["space_uid"].astype(str).isin(spaces).to_numpy()
    rows = approach[approach["space_uid"].astype(str).isin(spaces).to_numpy()]
    fresh = worst_per_entry(entries[mine], rows if len(rows) else approach)
    return conform("entry_point", pd.concat([entries[~mine], fresh]))


def _barrier_checks(
    ctx: ScenarioContext, added: gpd.GeoDataFrame, net: StreetNetwork
) -> pd.DataFrame:
    """The planned barriers' checks, the speeds read from the baseline's speed field."""
    from geo_protect.scenario.checks import CHECK_COLUMNS, barrier_checks

    if added.empty:
        return pd.DataFrame(columns=list(CHECK_COLUMNS))
    # the checks look at the streets a planned barrier stands on only
    at = added.to_crs(ctx.city.crs).geometry.values
    d = parameter("barrier_on_edge_tolerance_m") + _REACH_SLACK_M
    before, after = (streets_around(n, ctx.edge_tree, at, d) for n in (ctx.network, net))
    return barrier_checks(added, before, after, field=ctx.field)


def _edit_geometry(ctx: ScenarioContext, added: gpd.GeoDataFrame, edits: list[Any]) -> np.ndarray:
    """Metric geometries of the added barriers and of the removed or opened ones."""
    gone = [str(e.osm_id) for e in edits if e.action in ("remove", "open")]
    parts = [added.to_crs(ctx.city.crs).geometry.to_numpy()] if len(added) else []
    if gone:
        parts.append(ctx.metric["barrier"].geometry.reindex(gone).to_numpy())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=object)


def _closures_differ(before: StreetNetwork, after: StreetNetwork) -> np.ndarray:
    """Edges whose closures differ (a closing barrier added, dropped or moved)."""
    cols = ["edge", "at_m", "barrier_uid"]
    both = pd.concat([before.barriers[cols], after.barriers[cols]]).round({"at_m": 6})
    return np.unique(both.drop_duplicates(cols, keep=False)["edge"].to_numpy())


def _through_differ(before: pd.DataFrame, after: pd.DataFrame) -> np.ndarray:
    """Edges with a through-road piece (``edge``, ``lo``, ``hi``, ``through_m``) in one
    of the two tables and not in the other (values rounded to 1e-6)."""
    cols = ["edge", "lo", "hi", "through_m"]
    if after is before:
        return np.zeros(0, dtype=np.int64)
    if len(after) == len(before):  # the same pieces, row for row: compare in place
        a, b = (np.round(t[cols].to_numpy(dtype=float), 6) for t in (before, after))
        if (a[:, 0] == b[:, 0]).all():
            return np.unique(a[(a != b).any(axis=1), 0]).astype(np.int64)
    tb = pd.concat([before[cols], after[cols]]).round(6)
    return np.unique(tb.drop_duplicates(cols, keep=False)["edge"].to_numpy())


def _changed_edges(ctx: ScenarioContext, diff: np.ndarray, t_after: pd.DataFrame) -> np.ndarray:
    """Edges whose closures differ (``diff``), or whose through-road pieces differ in a
    way that gives or takes a flying start of some class under some parameter set."""
    diff_t = _through_differ(ctx.through, t_after)
    diff_t = diff_t[~np.isin(diff_t, diff)]
    if len(diff_t):
        diff_t = diff_t[_start_differs(ctx, t_after, diff_t)]
    return np.unique(np.r_[diff, diff_t]).astype(np.int64)


def _start_differs(ctx: ScenarioContext, t_after: pd.DataFrame, edges: np.ndarray) -> np.ndarray:
    """Per edge: do its pieces differ, or does any class gain or lose a flying start?

    A class starts at road speed on a piece when the piece's through route covers the
    run-up to that speed (:attr:`ScenarioContext.starts`); a through length that
    changes on both sides of no such run-up changes no label.
    """
    old = ctx.through[ctx.through["edge"].isin(edges)].sort_values(["edge", "lo"])
    new = t_after[t_after["edge"].isin(edges)].sort_values(["edge", "lo"])
    if len(old) != len(new) or not (
        (old["edge"].to_numpy() == new["edge"].to_numpy()).all()
        and np.allclose(old[["lo", "hi"]].to_numpy(float), new[["lo", "hi"]].to_numpy(float))
    ):
        return np.ones(len(edges), dtype=bool)  # cut differently: look again
    need = ctx.starts.reindex(old["edge"].to_numpy()).to_numpy(dtype=float)
    eps = 1e-9
    before = old["through_m"].to_numpy(float)[:, None] >= need - eps
    after = new["through_m"].to_numpy(float)[:, None] >= need - eps
    flips = pd.Series((before != after).any(axis=1), index=old["edge"].to_numpy())
    return np.asarray(flips.groupby(level=0).any().reindex(edges).fillna(True), dtype=bool)


def _start_run_ups(network: StreetNetwork) -> pd.DataFrame:
    """Per vehicle edge and (parameter set, class): the run-up of its flying start, m
    (-inf where there is none to have: not a through-road)."""
    from geo_protect.analysis.vehicles import SpeedCurve

    edges = network.edges
    road = edges["through_road"].to_numpy(dtype=bool, na_value=False)
    v = edges["speed_kmh"].to_numpy(dtype=float, na_value=0.0) / 3.6
    out = {}
    for name, fleet in parameter_sets().items():
        for code, row in fleet.iterrows():
            q = SpeedCurve.of(row).run_up(v * float(row["road_speed_factor"]))
            out[f"{name}:{code}"] = np.where(road & (v > 0), q, -np.inf)
    return pd.DataFrame(out, index=edges.index)


def _entries(
    ctx: ScenarioContext, net: StreetNetwork, metric: CityData, touched: set[str]
) -> gpd.GeoDataFrame:
    """Baseline entries, those of the touched spaces found again on the edited network."""
    base = ctx.layers["entry_point"]
    keep = base[~base["space_uid"].astype(str).isin(touched)]
    if not touched:
        return keep
    mine = ctx.spaces_m.loc[ctx.spaces_m.index.isin(sorted(touched))]
    found = entry_points(
        mine,
        net,
        entrances=metric["entrance"],
        barriers=metric["barrier"],
        buildings=metric["building"],
        crs=ctx.city.crs,
    )
    cols = [c for c in keep.columns if c in found.columns]
    return conform("entry_point", pd.concat([keep, found[cols]]))


def _approach(
    ctx: ScenarioContext,
    net: StreetNetwork,
    through: pd.DataFrame,
    entries: gpd.GeoDataFrame,
    zone: np.ndarray,
    touched: set[str],
    cut: np.ndarray | None = None,
) -> tuple[gpd.GeoDataFrame, set[str]]:
    """Baseline approaches, those the edits can change searched again on the streets
    around them; and the spaces whose approaches were looked at again.

    ``cut``: when the edits only add barriers, the edges whose closures or flying starts
    changed (an entry is searched again only if they cut one of its walks).
    """
    base = ctx.layers["approach"]
    if cut is not None:  # barriers only added: the entries whose walks they cut
        walks = ctx.walks.edges
        hit = set(walks.loc[walks["edge"].isin(cut), "entry_uid"].unique())
        near = np.asarray(entries.index.astype(str).isin(sorted(hit)), dtype=bool)
    else:
        hit, near = set(), _within(ctx, entries, zone)
    spaces = set(entries["space_uid"].astype(str)[near]) | touched
    mine = _targets(entries[entries["space_uid"].astype(str).isin(spaces)])
    twin = _twins(ctx, mine)
    # new or moved targets (and, to be safe, two targets that match one old one)
    again = (twin.isna() | twin.duplicated(keep=False)).to_numpy(copy=True)
    again |= twin.isin(hit).to_numpy() if cut is not None else mine.index.isin(entries.index[near])
    redo, reuse = mine[again], twin[~again]
    keep = pd.concat(
        [base[~base["space_uid"].astype(str).isin(spaces)], _renamed(base, reuse.astype(str))]
    )
    if redo.empty:
        return conform("approach", keep), spaces
    where = entries.to_crs(ctx.city.crs).geometry.reindex(redo.index).values
    reach = np.full(len(redo), ctx.reach_m)
    if cut is not None:  # speeds only fall: the new walks lie within the old run-ups
        old = twin[again].notna().to_numpy()
        reach[old] = ctx.walks.reach_m.reindex(twin[again][old].astype(str)).to_numpy()
        reach = np.fmin(np.nan_to_num(reach, nan=ctx.reach_m) + _REACH_SLACK_M, ctx.reach_m)
    sub = streets_around(net, ctx.edge_tree, where, reach)
    every = tuple(sorted(set(_targets(entries)["space_uid"].astype(str))))
    whole = WholeNetwork(through_m=through, cut_spaces=every)
    found = approach_speeds(sub, redo, spaces=ctx.spaces_m, whole=whole)
    return conform("approach", pd.concat([keep, found])), spaces


def _within(ctx: ScenarioContext, entries: gpd.GeoDataFrame, zone: np.ndarray) -> np.ndarray:
    """Per entry: within the longest run-up of any of ``zone`` (the changed streets)."""
    near = np.zeros(len(entries), dtype=bool)
    zone = zone[~pd.isna(zone)] if len(zone) else zone
    if len(zone):
        pts = entries.to_crs(ctx.city.crs).geometry.values
        hit, _ = shapely.STRtree(zone).query(pts, predicate="dwithin", distance=ctx.reach_m)
        near[np.unique(hit)] = True
    return near


def _adds_only(edits: list[Any]) -> bool:
    """Whether every edit adds a barrier (no removal, no opening)."""
    return all(getattr(e, "action", "add") == "add" for e in edits)


def _target_key(frame: pd.DataFrame) -> pd.Series:
    """One text per target of every column that sets its approach (exact floats)."""
    parts = [frame[c].astype(str) for c in ("space_uid", "edge", "towards")]
    parts += [frame[c].astype(float).map(repr) for c in ("at_m", "impact_angle_deg")]
    return parts[0].str.cat(parts[1:], sep="|")


def _first_by_key(targets: pd.DataFrame) -> pd.Series:
    """Per target key: the uid of the first baseline target with it."""
    keys = _target_key(targets)
    return pd.Series(targets.index.astype(str), index=keys).groupby(level=0).first()


def _twins(ctx: ScenarioContext, targets: pd.DataFrame) -> pd.Series:
    """Per target: the uid of the baseline target identical to it in every column (the
    same entry, perhaps numbered differently after an edit), NA when there is none."""
    twin = _target_key(targets).map(ctx.target_keys)
    return pd.Series(twin.to_numpy(), index=targets.index, dtype=object)


def _renamed(base: gpd.GeoDataFrame, twins: pd.Series) -> gpd.GeoDataFrame:
    """The baseline approach rows of each twin, under the uid of its new target."""
    rows = base[base["entry_uid"].astype(str).isin(twins.to_numpy())]
    new_of = pd.Series(twins.index.astype(str), index=twins.to_numpy())
    entry = rows["entry_uid"].astype(str).map(new_of)
    out = rows.assign(entry_uid=entry.to_numpy())
    out.index = pd.Index(entry.str.cat(rows["vehicle"].astype(str), sep="|"), name="uid")
    return out


def _differs(before: gpd.GeoDataFrame, after: gpd.GeoDataFrame, spaces: set[str]) -> set[str]:
    """Of ``spaces``, those with a row added, dropped or changed in any column."""
    if not spaces:
        return set()
    a = before[before["space_uid"].astype(str).isin(spaces)]
    b = after[after["space_uid"].astype(str).isin(spaces)]
    out = set(a["space_uid"].astype(str)[~a.index.isin(b.index)])
    out |= set(b["space_uid"].astype(str)[~b.index.isin(a.index)])
    both = a.index.intersection(b.index)
    a, b = a.loc[both], b.loc[both]
    same = np.asarray(shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0))
    for col in a.columns:
        if col in b.columns and col not in ("geometry", "method"):
            same &= _same_values(a[col], b[col])
    return out | set(a["space_uid"].astype(str)[~same])


def _same_values(x: pd.Series, y: pd.Series) -> np.ndarray:
    """Per row: equal values (floats within 1e-9, missing equal to missing)."""
    if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
        u, v = (s.to_numpy(dtype=float, na_value=np.nan) for s in (x, y))
        return np.asarray((np.abs(u - v) <= 1e-9) | (np.isnan(u) & np.isnan(v)))
    u, v = (s.astype("string").fillna("<NA>").to_numpy(dtype=object) for s in (x, y))
    return np.asarray(u == v, dtype=bool)
