"""Re-analyse only what a barrier edit can change (issue 10).

A :class:`ScenarioContext` keeps a city's baseline in memory: metric layers, the noded
network with its closures, the through-road lengths, the baseline layers, a speed field
(the search labels of every class and parameter set on the whole network), the
approach targets, the run-up each flying start needs and the POI attractiveness.
:func:`rescore` applies edits and recomputes:

* **closures** only on the streets within reach of an edited barrier (a closure depends
  on the barriers within half the street's width plus the row search distance);
* **entries** only of the spaces an edit can touch: within ``ENTRY_REACH_M`` of an
  edited barrier, or along a street whose closures changed (a closed street is no longer
  a frontage road; its crossings change class);
* **approach speeds** only of the entries within the longest run-up of any vehicle class
  (to its top speed from rest, in the slowest parameter set) of an edited barrier or of a
  street whose closures changed or whose through-road change gives or takes a flying
  start, and of the entries that are new or moved. Every walk that sets such an entry's
  speed lies within that run-up of it (the traced run-up is never longer), so the search
  runs on the streets within that distance of those entries only, with the through-road
  lengths of the whole network;
* **speeds at the planned barriers** read from the speed field (a lookup, no search);
* space metrics, stand-off and scores only of the spaces whose inputs changed.

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

from geo_protect.analysis.approach import WholeNetwork, approach_speeds, through_lengths
from geo_protect.analysis.approach.field import SpeedField, speed_field
from geo_protect.analysis.city import _targets, in_metric_crs
from geo_protect.analysis.entries import entry_points
from geo_protect.analysis.network import StreetNetwork, street_network, with_barriers
from geo_protect.analysis.space_metrics import space_metrics, worst_per_entry
from geo_protect.analysis.standoff import crowd_persons, parking_streets, standoff
from geo_protect.analysis.vehicles import SpeedCurve, parameter_sets
from geo_protect.cities import City
from geo_protect.citydata import CityData
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
    starts: pd.DataFrame  # per edge and (set, class): the run-up its flying start needs
    attractiveness: pd.DataFrame | None  # POI attractiveness per space (no barrier in it)


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
    return ScenarioContext(
        city=city,
        data=data,
        metric=metric,
        spaces_m=data["public_space"].to_crs(city.crs),
        network=network,
        through=through,
        layers=layers,
        reach_m=longest_run_up(),
        edge_tree=shapely.STRtree(network.edges.geometry.values),
        parking=parking_streets(metric["street"]),
        field=speed_field(network, through_m=through),
        targets=_targets(layers["entry_point"]),
        starts=_start_run_ups(network),
        attractiveness=_attractiveness(city, data),
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
    barriers_m = after_data["barrier"].to_crs(city.crs)
    edited = _edit_geometry(ctx, added, edits)
    net = with_barriers(ctx.network, barriers_m, near=edited)
    through = through_lengths(net)
    changed_edges = _changed_edges(ctx, net, through)
    touched = _spaces_near(ctx.spaces_m, edited, ENTRY_REACH_M) | _spaces_near(
        ctx.spaces_m, net.edges.geometry.reindex(changed_edges).to_numpy(), ENTRY_REACH_M
    )
    metric = CityData(ctx.data.city, {**ctx.metric.layers, "barrier": barriers_m}, ctx.data.report)
    entries = _entries(ctx, net, metric, touched)
    zone = np.r_[edited, net.edges.geometry.reindex(changed_edges).to_numpy()]
    approach, redone = _approach(ctx, net, through, entries, zone, touched)
    worst = worst_per_entry(entries, approach)
    # of the spaces searched again, those whose entries or approaches actually differ
    redone = _differs(ctx.layers["entry_point"], worst, redone) | _differs(
        ctx.layers["approach"], approach, redone
    )
    changed = net.edges.geometry.reindex(changed_edges).to_numpy()
    layers = _downstream(ctx, after_data, net, worst, approach, redone, edited, changed)
    base = ctx.layers
    return ScenarioResult(
        name=name,
        barriers=added,
        entries=_changed(base["entry_point"], layers["entry_point"], ENTRY_COLUMNS),
        scores=_changed(base["assessment"], layers["assessment"], SCORE_COLUMNS),
        layers=layers,
        checks=_barrier_checks(ctx, added, net),
    )


def _barrier_checks(
    ctx: ScenarioContext, added: gpd.GeoDataFrame, net: StreetNetwork
) -> pd.DataFrame:
    """The planned barriers' checks, the speeds read from the baseline's speed field."""
    from geo_protect.scenario.checks import CHECK_COLUMNS, barrier_checks

    if added.empty:
        return pd.DataFrame(columns=list(CHECK_COLUMNS))
    return barrier_checks(added, ctx.network, net, field=ctx.field)


def _edit_geometry(ctx: ScenarioContext, added: gpd.GeoDataFrame, edits: list[Any]) -> np.ndarray:
    """Metric geometries of the added barriers and of the removed or opened ones."""
    gone = [str(e.osm_id) for e in edits if e.action in ("remove", "open")]
    parts = [added.to_crs(ctx.city.crs).geometry.to_numpy()] if len(added) else []
    if gone:
        parts.append(ctx.metric["barrier"].geometry.reindex(gone).to_numpy())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=object)


def _changed_edges(ctx: ScenarioContext, after: StreetNetwork, t_after: pd.DataFrame) -> np.ndarray:
    """Edges whose closures differ, or whose through-road pieces differ in a way that
    gives or takes a flying start of some class under some parameter set."""
    cols = ["edge", "at_m", "barrier_uid"]
    a = ctx.network.barriers[cols].assign(_side="before")
    b = after.barriers[cols].assign(_side="after")
    both = pd.concat([a, b]).round({"at_m": 6})
    diff = np.unique(both.drop_duplicates(cols, keep=False)["edge"].to_numpy())
    cols_t = ["edge", "lo", "hi", "through_m"]
    tb = pd.concat([ctx.through[cols_t], t_after[cols_t]]).round(6)
    diff_t = np.unique(tb.drop_duplicates(cols_t, keep=False)["edge"].to_numpy())
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


def _spaces_near(spaces_m: gpd.GeoDataFrame, geoms: np.ndarray, distance: float) -> set[str]:
    geoms = geoms[~pd.isna(geoms)] if len(geoms) else geoms
    if len(geoms) == 0:
        return set()
    si, _ = shapely.STRtree(geoms).query(
        spaces_m.geometry.values, predicate="dwithin", distance=distance
    )
    return set(spaces_m.index[np.unique(si)].astype(str))


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
) -> tuple[gpd.GeoDataFrame, set[str]]:
    """Baseline approaches, those near the edits searched again on the streets around
    them; and the spaces whose approaches were searched again."""
    base = ctx.layers["approach"]
    pts = entries.to_crs(ctx.city.crs).geometry.values
    near = np.zeros(len(entries), dtype=bool)
    zone = zone[~pd.isna(zone)] if len(zone) else zone
    if len(zone):
        hit, _ = shapely.STRtree(zone).query(pts, predicate="dwithin", distance=ctx.reach_m)
        near[np.unique(hit)] = True
    spaces = set(entries["space_uid"].astype(str)[near]) | touched
    mine = _targets(entries[entries["space_uid"].astype(str).isin(spaces)])
    # an entry beyond the reach of every edit keeps its approach if its target is the same
    again = entries.index[near].intersection(mine.index).union(_moved_targets(ctx, mine))
    redo = mine.loc[mine.index.isin(again)]
    kept = mine.index.difference(redo.index)
    keep = base[
        ~base["space_uid"].astype(str).isin(spaces)
        | base["entry_uid"].astype(str).isin(kept.astype(str))
    ]
    if redo.empty:
        return keep, spaces
    where = entries.to_crs(ctx.city.crs).geometry.reindex(redo.index).values
    sub = _streets_around(net, ctx.edge_tree, where, ctx.reach_m)
    every = tuple(sorted(set(_targets(entries)["space_uid"].astype(str))))
    whole = WholeNetwork(through_m=through, cut_spaces=every)
    found = approach_speeds(sub, redo, spaces=ctx.spaces_m, whole=whole)
    return conform("approach", pd.concat([keep, found])), spaces


def _moved_targets(ctx: ScenarioContext, targets: pd.DataFrame) -> pd.Index:
    """Targets that are new or differ from the baseline's in any column."""
    base = ctx.targets.reindex(targets.index)
    same = base["space_uid"].notna().to_numpy().copy()
    for col in ("space_uid", "edge", "towards"):
        same &= (base[col].astype(str) == targets[col].astype(str)).to_numpy()
    for col in ("at_m", "impact_angle_deg"):
        a, b = (f[col].to_numpy(dtype=float, na_value=np.nan) for f in (base, targets))
        same &= np.isclose(a, b, rtol=0, atol=1e-9, equal_nan=True)
    return targets.index[~same]


def _streets_around(
    net: StreetNetwork, tree: shapely.STRtree, points: np.ndarray, distance: float
) -> StreetNetwork:
    """The network's edges within ``distance`` of the points, with their closures."""
    ei = tree.query(shapely.multipoints(points), predicate="dwithin", distance=distance)
    edges = net.edges.iloc[np.sort(ei)]
    closures = net.barriers[net.barriers["edge"].isin(edges.index)]
    return StreetNetwork(nodes=net.nodes, edges=edges, crs=net.crs, barriers=closures)


def _downstream(
    ctx: ScenarioContext,
    data: CityData,
    net: StreetNetwork,
    entries: gpd.GeoDataFrame,
    approach: gpd.GeoDataFrame,
    redone: set[str],
    edited: np.ndarray,
    changed: np.ndarray,
) -> dict[str, gpd.GeoDataFrame]:
    """Space metrics, stand-off and scores of the spaces that can have changed.

    A space's metrics follow from its own entries and approaches (``redone``: those
    recomputed). Its scores also from the barriers within ``measure_buffer_m`` (existing
    measures) and from its stand-off (:func:`_standoff`).
    """
    from geo_protect.assess.evidence import prefill_layers
    from geo_protect.assess.scores import score
    from geo_protect.reference import table

    base = ctx.layers
    metrics = _replace(base["space_metric"], _metrics(ctx, data, entries, approach, redone))
    reach = _standoff(ctx, net, metrics, changed)
    buffer = float(table("risk_parameters").set_index("name").at["measure_buffer_m", "value"])
    rescored = redone | _spaces_near(ctx.spaces_m, edited, buffer) | _moved(base["standoff"], reach)
    mine = data["public_space"].loc[data["public_space"].index.isin(sorted(rescored))]
    scores = base["assessment"]
    if len(mine):
        mine_so = reach[reach["space_uid"].isin(mine.index)]
        draft = prefill_layers(
            ctx.city,
            data,
            metrics.loc[mine.index],
            mine_so,
            spaces=mine,
            attractiveness=ctx.attractiveness,
        )
        fresh = score(draft, mine)
        scores = conform(
            "assessment", pd.concat([scores[~scores["space_uid"].isin(mine.index)], fresh])
        )
    return {
        "entry_point": entries,
        "approach": approach,
        "space_metric": metrics,
        "standoff": reach,
        "assessment": scores,
    }


def _standoff(
    ctx: ScenarioContext, net: StreetNetwork, metrics: gpd.GeoDataFrame, changed: np.ndarray
) -> gpd.GeoDataFrame:
    """The stand-off layer, recomputed for the spaces whose rows can change.

    A space's closest reachable point can move only if a street whose closures changed
    lies within its baseline stand-off distance (or carries its closest point); the people
    it counts change only if a space within the largest hazard distance changed its
    people. Every other row is the baseline's.
    """
    base = ctx.layers["standoff"]
    persons = crowd_persons(metrics)
    old = crowd_persons(ctx.layers["space_metric"]).reindex(persons.index)
    moved = persons.index[~np.isclose(persons.fillna(-1), old.fillna(-1), rtol=0, atol=1e-9)]
    only = _near_reach(ctx, base, changed)
    if len(moved):
        far = float(base["preferred_m"].max()) if len(base) else 0.0
        spaces = ctx.spaces_m.geometry.reindex(moved).to_numpy()
        only |= _spaces_near(ctx.spaces_m, spaces, far)
    if not only:
        return base
    fresh = standoff(net, ctx.spaces_m, persons, parking=ctx.parking, only=sorted(only))
    keep = base[~base["space_uid"].astype(str).isin(only)]
    return conform("standoff", pd.concat([keep, fresh]))


def _near_reach(ctx: ScenarioContext, base: gpd.GeoDataFrame, changed: np.ndarray) -> set[str]:
    """Spaces a changed street can give a closer point, or take their closest point from."""
    changed = changed[~pd.isna(changed)] if len(changed) else changed
    if len(changed) == 0:
        return set()
    tree = shapely.STRtree(changed)
    within = base.groupby("space_uid")["closest_m"].max()
    spaces = ctx.spaces_m.geometry.reindex(within.index).values
    near, _ = tree.query(spaces, predicate="dwithin", distance=float(within.max()) + 1.0)
    out = set()
    if len(near):
        cand = np.unique(near)
        d = shapely.distance(spaces[cand], shapely.union_all(changed))
        out |= set(within.index[cand][d <= within.to_numpy()[cand] + 1e-6].astype(str))
    points = base.to_crs(ctx.city.crs).geometry.values
    on, _ = tree.query(points, predicate="dwithin", distance=1e-6)
    out |= set(base["space_uid"].astype(str).to_numpy()[np.unique(on)])
    # a space no vehicle reached may be reached once a barrier is removed
    return out | set(ctx.spaces_m.index.astype(str)) - set(within.index.astype(str))


def _metrics(
    ctx: ScenarioContext,
    data: CityData,
    entries: gpd.GeoDataFrame,
    approach: gpd.GeoDataFrame,
    redone: set[str],
) -> gpd.GeoDataFrame:
    """Space metrics of the ``redone`` spaces, from the edited entries and approaches."""
    spaces = ctx.spaces_m.loc[ctx.spaces_m.index.isin(sorted(redone))]
    if spaces.empty:
        return ctx.layers["space_metric"].iloc[:0]
    return space_metrics(
        spaces,
        entries[entries["space_uid"].isin(spaces.index)],
        buildings=ctx.metric["building"],
        has_streets=True,
        approach=approach[approach["space_uid"].isin(spaces.index)],
        pois=data["poi"],
        streets=ctx.metric["street"],
    )


def _replace(base: gpd.GeoDataFrame, fresh: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``base`` with the rows of ``fresh`` (same uids) replaced, in ``base``'s order."""
    if fresh.empty:
        return base
    out = pd.concat([base[~base.index.isin(fresh.index)], fresh])
    return gpd.GeoDataFrame(out.loc[base.index.union(fresh.index, sort=False)], crs=base.crs)


def _differs(before: gpd.GeoDataFrame, after: gpd.GeoDataFrame, spaces: set[str]) -> set[str]:
    """Of ``spaces``, those with a row added, dropped or changed in any column."""
    a = before[before["space_uid"].astype(str).isin(spaces)]
    b = after[after["space_uid"].astype(str).isin(spaces)]
    cols = [c for c in a.columns if c != "geometry" and c in b.columns and c != "method"]

    def canon(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(frame[cols]).copy()
        for c in cols:
            if pd.api.types.is_float_dtype(out[c]):
                out[c] = out[c].round(9)
        out["_wkb"] = shapely.to_wkb(frame.geometry.values, hex=True)
        return out.astype("string").fillna("<NA>").reset_index()

    both = pd.concat([canon(a), canon(b)]).drop_duplicates(keep=False)
    return set(both["space_uid"].astype(str))


def _moved(before: gpd.GeoDataFrame, after: gpd.GeoDataFrame) -> set[str]:
    """Spaces whose stand-off rows differ."""
    cols = ["closest_m", "persons_mandatory", "persons_preferred", "reach"]
    a = pd.DataFrame(before[["space_uid", *cols]]).round(6)
    b = pd.DataFrame(after[["space_uid", *cols]]).round(6)
    both = pd.concat([a.reset_index(), b.reset_index()]).drop_duplicates(keep=False)
    return set(both["space_uid"].astype(str))
