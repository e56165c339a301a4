"""What follows a space's entries and approaches: its metrics, stand-off and scores.

The second half of :func:`~geo_protect.scenario.incremental.rescore`: given the entries
and approaches recomputed near the edits, recompute the space metrics, the stand-off
rows and the scores of the spaces whose inputs changed, and keep the baseline's rows for
every other space.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.analysis.network import StreetNetwork
from geo_protect.analysis.space_metrics import space_metrics
from geo_protect.analysis.standoff import crowd_persons, persons_within, standoff
from geo_protect.analysis.vehicles import vehicle_classes
from geo_protect.citydata import CityData
from geo_protect.schema import conform

if TYPE_CHECKING:
    from geo_protect.scenario.incremental import ScenarioContext

__all__ = ["downstream", "spaces_near", "streets_around"]

#: Beyond a space's old closest reachable point, how far its stand-off is first looked for,
#: m: only a search window (a farther result is looked for again on the whole network).
_STANDOFF_WINDOW_M = 100.0
#: Added to the measure buffer when the barriers and cameras near a space are picked, m:
#: room for rounding only (a superset of what the measures look at).
_MEASURE_SLACK_M = 1.0


def spaces_near(spaces_m: gpd.GeoDataFrame, geoms: np.ndarray, distance: float) -> set[str]:
    """Uids of the spaces within ``distance`` of any of ``geoms`` (missing ones ignored)."""
    geoms = geoms[~pd.isna(geoms)] if len(geoms) else geoms
    if len(geoms) == 0:
        return set()
    si, _ = shapely.STRtree(geoms).query(
        spaces_m.geometry.values, predicate="dwithin", distance=distance
    )
    return set(spaces_m.index[np.unique(si)].astype(str))


def streets_around(
    net: StreetNetwork, tree: shapely.STRtree, around: np.ndarray, distance: float | np.ndarray
) -> StreetNetwork:
    """The network's edges within ``distance`` (one, or one per geometry) of any of
    ``around``, with their closures; in the network's order.

    Each geometry is queried on its own (a collection of many outlines would make every
    candidate street measure its distance to all of them).
    """
    ei = np.unique(tree.query(around, predicate="dwithin", distance=distance)[1])
    edges = net.edges.iloc[ei]
    closures = net.barriers[net.barriers["edge"].isin(edges.index)]
    return StreetNetwork(nodes=net.nodes, edges=edges, crs=net.crs, barriers=closures)


def downstream(
    ctx: ScenarioContext,
    data: CityData,
    net: StreetNetwork,
    entries: gpd.GeoDataFrame,
    approach: gpd.GeoDataFrame,
    redone: set[str],
    edited: np.ndarray,
    changed: np.ndarray,
    *,
    barriers_m: gpd.GeoDataFrame,
) -> tuple[dict[str, gpd.GeoDataFrame], set[str]]:
    """Space metrics, stand-off and scores of the spaces that can have changed; and the
    spaces rescored (every other space keeps the baseline's scores).

    A space's metrics follow from its own entries and approaches (``redone``: those
    recomputed). Its scores also from the barriers within ``measure_buffer_m`` (existing
    measures) and from its stand-off (:func:`_standoff`). ``barriers_m``: the edited
    barrier layer in the metric CRS.
    """
    from geo_protect.assess.evidence import prefill_layers
    from geo_protect.assess.scores import score
    from geo_protect.reference import table

    base = ctx.layers
    metrics = _replace(base["space_metric"], _metrics(ctx, data, entries, approach, redone))
    reach = _standoff(ctx, net, metrics, changed)
    buffer = float(table("risk_parameters").set_index("name").at["measure_buffer_m", "value"])
    rescored = redone | spaces_near(ctx.spaces_m, edited, buffer) | _moved(base["standoff"], reach)
    mine = data["public_space"].loc[data["public_space"].index.isin(sorted(rescored))]
    scores = base["assessment"]
    if len(mine):
        mine_so = reach[reach["space_uid"].isin(mine.index)]
        draft = prefill_layers(
            ctx.city,
            _measures_near(ctx, data, barriers_m, mine.index, buffer),
            metrics.loc[mine.index],
            mine_so,
            spaces=mine,
            attractiveness=ctx.attractiveness,
        )
        fresh = score(draft, mine)
        scores = conform(
            "assessment", pd.concat([scores[~scores["space_uid"].isin(mine.index)], fresh])
        )
    layers = {
        "entry_point": entries,
        "approach": approach,
        "space_metric": metrics,
        "standoff": reach,
        "assessment": scores,
    }
    return layers, {str(uid) for uid in mine.index}


def _measures_near(
    ctx: ScenarioContext,
    data: CityData,
    barriers_m: gpd.GeoDataFrame,
    spaces: pd.Index,
    buffer: float,
) -> CityData:
    """``data`` with only the barriers and cameras within ``buffer`` of ``spaces`` (all
    their existing measures look at), in the layers' order."""
    outlines = ctx.spaces_m.geometry.reindex(spaces).values
    reach = buffer + _MEASURE_SLACK_M
    layers = dict(data.layers)
    for name, metric in (("barrier", barriers_m), ("surveillance", ctx.surveillance_m)):
        if len(metric):
            hit = metric.sindex.query(outlines, predicate="dwithin", distance=reach)[1]
            near = metric.index[np.unique(hit)]
            layers[name] = data[name][data[name].index.isin(near)]
    return CityData(data.city, layers, data.report)


def _standoff(
    ctx: ScenarioContext, net: StreetNetwork, metrics: gpd.GeoDataFrame, changed: np.ndarray
) -> gpd.GeoDataFrame:
    """The stand-off layer, recomputed for the spaces whose rows can change.

    A space's closest reachable point can move only if a street whose closures changed
    lies within its baseline stand-off distance (or carries its closest point): those
    spaces are looked for again. The people a row counts change only if a space within
    its hazard distance changed its people: those rows add that change, at the same
    point. Every other row is the baseline's.
    """
    base = ctx.layers["standoff"]
    persons = crowd_persons(metrics)
    old = crowd_persons(ctx.layers["space_metric"]).reindex(persons.index)
    moved = persons.index[~np.isclose(persons.fillna(-1), old.fillna(-1), rtol=0, atol=1e-9)]
    change = persons.reindex(moved).fillna(0.0) - old.reindex(moved).fillna(0.0)
    only = _near_reach(ctx, base, changed)
    fresh = _fresh_standoff(ctx, net, persons, sorted(only)) if only else base.iloc[:0]
    rest = base[~base["space_uid"].isin(only)]
    recount = _counting(ctx, rest, moved)
    if not only and not recount.any():
        return base
    parts = [rest[~recount], _recounted(ctx, rest[recount], change), fresh]
    return conform("standoff", pd.concat([p for p in parts if len(p)] or [base.iloc[:0]]))


def _counting(ctx: ScenarioContext, rows: gpd.GeoDataFrame, moved: pd.Index) -> np.ndarray:
    """Per row: does a space whose people changed lie within its preferred distance?"""
    out = np.zeros(len(rows), dtype=bool)
    if len(moved) == 0 or len(rows) == 0:
        return out
    tree = shapely.STRtree(ctx.spaces_m.geometry.reindex(moved).to_numpy())
    points = rows.to_crs(ctx.city.crs).geometry.values
    far = rows["preferred_m"].to_numpy(dtype=float)
    out[np.unique(tree.query(points, predicate="dwithin", distance=far)[0])] = True
    return out


def _recounted(ctx: ScenarioContext, rows: gpd.GeoDataFrame, change: pd.Series) -> gpd.GeoDataFrame:
    """``rows`` with the people within their hazard distances counted again.

    A count is a sum over the spaces of people × share of area inside the circle, so
    only the ``change`` of people (per space uid) is added: the others' shares are the
    same.
    """
    if rows.empty:
        return rows
    added = persons_within(
        rows.to_crs(ctx.city.crs).geometry.values,
        rows[["mandatory_m", "preferred_m"]].to_numpy(dtype=float),
        np.asarray(ctx.spaces_m.geometry.reindex(change.index).values),
        change.to_numpy(dtype=float),
    )
    return rows.assign(
        persons_mandatory=rows["persons_mandatory"].to_numpy(dtype=float) + added[:, 0],
        persons_preferred=rows["persons_preferred"].to_numpy(dtype=float) + added[:, 1],
    )


def _fresh_standoff(
    ctx: ScenarioContext, net: StreetNetwork, persons: pd.Series, only: list[str]
) -> gpd.GeoDataFrame:
    """The stand-off rows of ``only``, looked for first on the streets near them.

    A closest point found within the window is the closest on the whole network (every
    street farther away is outside the window); a space with no point found there, or
    one farther, is looked for again on the whole network.
    """
    base = ctx.layers["standoff"]
    old = base.loc[base["space_uid"].astype(str).isin(only), "closest_m"].astype(float)
    window = (float(old.max()) if len(old) else 0.0) + _STANDOFF_WINDOW_M
    outlines = ctx.spaces_m.geometry.reindex(only).values
    sub = streets_around(net, ctx.edge_tree, outlines, window)
    fresh = standoff(sub, ctx.spaces_m, persons, parking=ctx.parking, only=only)
    by_space = fresh.groupby(fresh["space_uid"].astype(str))
    far = by_space["closest_m"].max().reindex(only).to_numpy(dtype=float, na_value=np.inf)
    classes = by_space.size().reindex(only).fillna(0).to_numpy()
    if bool(((far <= window) & (classes == len(vehicle_classes(include_all=True)))).all()):
        return fresh
    return standoff(net, ctx.spaces_m, persons, parking=ctx.parking, only=only)


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
        usable_area_m2=ctx.layers["space_metric"]["usable_area_m2"],
        labels=ctx.layers["space_metric"]["label"],
    )


def _replace(base: gpd.GeoDataFrame, fresh: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``base`` with the rows of ``fresh`` (same uids) replaced, in ``base``'s order."""
    if fresh.empty:
        return base
    out = pd.concat([base[~base.index.isin(fresh.index)], fresh])
    return gpd.GeoDataFrame(out.loc[base.index.union(fresh.index, sort=False)], crs=base.crs)


def _moved(before: gpd.GeoDataFrame, after: gpd.GeoDataFrame) -> set[str]:
    """Spaces whose stand-off rows differ."""
    cols = ["closest_m", "persons_mandatory", "persons_preferred", "reach"]
    a = pd.DataFrame(before[["space_uid", *cols]]).round(6)
    b = pd.DataFrame(after[["space_uid", *cols]]).round(6)
    both = pd.concat([a.reset_index(), b.reset_index()]).drop_duplicates(keep=False)
    return set(both["space_uid"].astype(str))
