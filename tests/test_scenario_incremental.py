"""The incremental re-analysis equals a full re-analysis, on random edits of real streets.

Random barrier edits on the Brașov centre clip (ODbL): bollard rows across entries, blocks
in the middle of streets, walls across them, removals of mapped barriers (some of them
closing a street). For each, every entry, approach, stand-off row and score of
:func:`~geo_protect.scenario.incremental.rescore` is compared with
:func:`~geo_protect.scenario.engine.apply_scenario`, which re-analyses the whole edited
city. Speeds, ratings, entry classes and scores must be identical; the drawn path (and
its run-up) of an approach may be another walk of the same speed, since which of
several equally fast walks a search keeps depends on the graph it searches.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.scenario.engine import apply_scenario
from geo_protect.scenario.incremental import ScenarioContext, rescore, scenario_context
from geo_protect.scenario.model import BarrierEdit
from tests.builders import line_across

N_EDITS = 15


@pytest.fixture(scope="module")
def context(centre_city: City, centre_data: CityData) -> ScenarioContext:
    return scenario_context(centre_city, centre_data)


def _random_edits(ctx: ScenarioContext, rng: np.random.Generator) -> list[list[BarrierEdit]]:
    city = ctx.city
    entries = ctx.layers["entry_point"]
    open_ = entries[entries["entry_class"] == "vehicle_permeable"]
    edges = ctx.network.vehicle_edges
    edges = edges[edges["length_m"] > 20]
    out: list[list[BarrierEdit]] = []
    for i in range(N_EDITS):
        pick = i % 5
        if pick == 0:  # a row of posts across an entry's street, 1-3 m outside it
            e = open_.iloc[int(rng.integers(len(open_)))]
            line = line_across(
                e, city.crs, back_m=float(rng.uniform(1, 3)), length_m=float(e["width_m"]) + 4
            )
            spacing = float(rng.choice([1.3, 1.4, 1.8]))
            out.append([BarrierEdit(kind="bollard_row", geometry=line, spacing_m=spacing)])
        elif pick == 1:  # a block in the middle of a street
            edge = edges.iloc[int(rng.integers(len(edges)))]
            mid = shapely.line_interpolate_point(edge.geometry, 0.5, normalized=True)
            pt = gpd.GeoSeries([mid], crs=city.crs).to_crs("EPSG:4326").iloc[0]
            out.append([BarrierEdit(kind="block", geometry=pt)])
        elif pick == 2:  # a wall across a street
            edge = edges.iloc[int(rng.integers(len(edges)))]
            out.append([BarrierEdit(kind="wall", geometry=_wall(city, edge))])
        elif pick == 3:  # remove a mapped barrier (most close no street)
            uid = str(ctx.data["barrier"].index[int(rng.integers(len(ctx.data["barrier"])))])
            out.append([BarrierEdit(action="remove", osm_id=uid)])
        else:  # remove a barrier that closes a street: the street opens again
            closing = ctx.network.barriers["barrier_uid"].astype(str).unique()
            uid = str(closing[int(rng.integers(len(closing)))])
            out.append([BarrierEdit(action="remove", osm_id=uid)])
    return out


def _wall(city: City, edge: pd.Series) -> shapely.LineString:
    g = edge.geometry
    s = g.length / 2
    a, b = shapely.line_interpolate_point(g, [s - 1, s + 1])
    d = np.array([b.x - a.x, b.y - a.y]) / 2
    m = np.array([(a.x + b.x) / 2, (a.y + b.y) / 2])
    n = np.array([-d[1], d[0]]) / np.hypot(*d) * (float(edge["width_m"]) / 2 + 2)
    line = shapely.LineString([m - n, m + n])
    return gpd.GeoSeries([line], crs=city.crs).to_crs("EPSG:4326").iloc[0]


def _same(a: pd.DataFrame, b: pd.DataFrame, cols: list[str], what: str) -> None:
    assert sorted(a.index) == sorted(b.index), what
    b = b.loc[a.index]
    for c in cols:
        x, y = a[c], b[c]
        if pd.api.types.is_float_dtype(x):
            assert np.allclose(
                x.to_numpy(float), y.to_numpy(float), rtol=0, atol=1e-6, equal_nan=True
            ), (
                what,
                c,
            )
        else:
            assert (x.astype("string").fillna("") == y.astype("string").fillna("")).all(), (what, c)


def _faster(before: pd.DataFrame, after: pd.DataFrame) -> bool:
    """Whether some approach is new or faster after the edit."""
    new = ~after.index.isin(before.index)
    both = after.index.intersection(before.index)
    up = after.loc[both, "speed_kmh"].astype(float) > before.loc[both, "speed_kmh"].astype(float)
    return bool(new.any() or up.any())


def test_incremental_equals_full_reanalysis_on_random_edits(
    context: ScenarioContext, centre_city: City, centre_data: CityData
) -> None:
    rng = np.random.default_rng(20261202)
    n_changed = n_scored = n_opened = 0
    for edits in _random_edits(context, rng):
        fast = rescore(context, edits)
        full = apply_scenario(centre_city, centre_data, edits, baseline=context.layers)
        n_opened += edits[0].action == "remove" and _faster(
            context.layers["approach"], full.layers["approach"]
        )
        n_changed += len(full.entries) > 0
        n_scored += len(full.scores) > 0
        _same(
            fast.layers["entry_point"],
            full.layers["entry_point"],
            [
                "entry_class",
                "edge",
                "at_m",
                "worst_speed_kmh",
                "worst_speed_high_kmh",
                "required_rating",
            ],
            "entry_point",
        )
        _same(
            fast.layers["approach"],
            full.layers["approach"],
            ["speed_kmh", "speed_low_kmh", "speed_high_kmh", "required_rating"],
            "approach",
        )
        _same(
            fast.layers["assessment"],
            full.layers["assessment"],
            ["risk_100", "band", "why", "risk_index"],
            "assessment",
        )
        _same(
            fast.layers["standoff"],
            full.layers["standoff"],
            ["closest_m", "reach", "persons_mandatory", "persons_preferred"],
            "standoff",
        )
        assert sorted(fast.entries.index) == sorted(full.entries.index)
        # the changes are looked for among the re-scored spaces only: none may be missed
        assert sorted(fast.scores.index) == sorted(full.scores.index)
        key = ["barrier_uid", "edge", "vehicle"]
        fc, uc = (r.checks.sort_values(key).reset_index(drop=True) for r in (fast, full))
        assert (
            fc[[*key, "closes", "covers"]]
            .astype(str)
            .equals(uc[[*key, "closes", "covers"]].astype(str))
        )
        assert np.allclose(
            fc["speed_high_kmh"].astype(float),
            uc["speed_high_kmh"].astype(float),
            rtol=0,
            atol=1e-6,
        )
    assert n_changed >= 3 and n_scored >= 1  # the edits do change entries and scores
    assert n_opened >= 2  # and some removals do open streets again


def test_an_edit_that_closes_nothing_keeps_the_through_roads(
    context: ScenarioContext, centre_city: City, centre_data: CityData
) -> None:
    # removing a mapped barrier that closes no street: the through-road lengths are the
    # baseline's (rescore does not measure them again), and nothing else may differ
    closing = set(context.network.barriers["barrier_uid"].astype(str))
    idle = [str(u) for u in context.data["barrier"].index if str(u) not in closing]
    assert idle, "the clip has barriers that close no street"
    edits = [BarrierEdit(action="remove", osm_id=idle[0])]
    fast = rescore(context, edits)
    full = apply_scenario(centre_city, centre_data, edits, baseline=context.layers)
    for layer, cols in (
        ("entry_point", ["entry_class", "worst_speed_kmh", "required_rating"]),
        ("approach", ["speed_kmh", "speed_low_kmh", "speed_high_kmh"]),
        ("assessment", ["risk_100", "band", "why"]),
    ):
        _same(fast.layers[layer], full.layers[layer], cols, layer)
    assert sorted(fast.scores.index) == sorted(full.scores.index)


def test_changed_people_are_counted_again_as_a_full_standoff_counts_them(
    context: ScenarioContext,
) -> None:
    """When a space's people change (a redesign changes its exits), every stand-off row
    around it counts them again: the same as :func:`standoff` on the whole city."""
    from geo_protect.analysis.standoff import crowd_persons, standoff
    from geo_protect.scenario.downstream import _standoff

    metrics = context.layers["space_metric"].copy()
    column = str(crowd_persons(metrics).name)
    busiest = metrics[column].astype(float).idxmax()
    metrics.loc[busiest, column] = float(metrics.at[busiest, column]) * 3 + 500
    fast = _standoff(context, context.network, metrics, np.zeros(0, dtype=object))
    full = standoff(
        context.network, context.spaces_m, crowd_persons(metrics), parking=context.parking
    )
    cols = ["closest_m", "reach", "persons_mandatory", "persons_preferred"]
    _same(fast, full, cols, "standoff")
    before = context.layers["standoff"]["persons_preferred"].astype(float)
    grown = fast.loc[before.index, "persons_preferred"].astype(float) > before + 1
    assert grown.sum() > 5  # the rows of the space and of its neighbours count more people
