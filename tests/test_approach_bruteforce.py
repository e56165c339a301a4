"""The speed search against brute-force walk enumeration on small clips of real streets.

:func:`geo_protect.analysis.approach.approach_speeds` finds the fastest approach as the
fixed point of a label-correcting search in run-up units (see the package docstring).
Here every walk of up to ``K`` turns is enumerated instead, each driven in *speed*
units with :func:`~geo_protect.analysis.vehicles.attainable_speed` and the corner caps
``sqrt(min(μ, rollover)·g·R)``, and the best walk per target is kept, with no
dominance pruning. Two facts are checked:

* no enumerated walk beats the search (the search is an upper bound on every walk);
* once ``K`` is large enough that the enumeration stops improving, it equals the
  search (the search is reached by an actual walk: it is the maximum).

Only the street graph (pieces, turns, bends: ``_prepare``) is shared with the code
under test; the speeds along a walk are computed independently.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_protect.analysis.approach import approach_speeds, turn_radius
from geo_protect.analysis.approach.geometry import _Graph, _prepare
from geo_protect.analysis.approach.pieces import _locate
from geo_protect.analysis.network import StreetNetwork, street_network
from geo_protect.analysis.vehicles import attainable_speed, parameter_sets
from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.reference import parameter
from tests.approach_cases import NO_SENSITIVITY

G = 9.81


@dataclass
class _Dyn:
    a0: float
    p: float
    top: float
    width: float
    r_min: float
    lateral: float
    road: float

    @classmethod
    def of(cls, row: pd.Series) -> _Dyn:
        return cls(
            float(row["acceleration_ms2"]),
            float(row["power_to_mass_wkg"]),
            float(row["top_speed_kmh"]) / 3.6,
            float(row["width_m"]),
            float(row["turning_radius_m"]),
            min(float(row["friction"]), float(row["rollover_g"])) * G,
            float(row["road_speed_factor"]),
        )

    def go(self, s: np.ndarray, v: np.ndarray) -> np.ndarray:
        return attainable_speed(
            s, acceleration=self.a0, v0=v, top_speed=self.top, power_to_mass=self.p
        )

    def cap(self, delta: np.ndarray, width: np.ndarray, leg: np.ndarray) -> np.ndarray:
        r = turn_radius(delta, np.maximum(width - self.width, 0.0), leg)
        return np.where(r >= self.r_min, np.sqrt(self.lateral * np.where(np.isinf(r), 0, r)), 0.0)


def _drive(
    g: _Graph, dyn: _Dyn, d: np.ndarray, v: np.ndarray, upto: np.ndarray, *, at_target: bool
) -> np.ndarray:
    """Speed at ``upto`` metres along directed pieces ``d`` entered at speed ``v``."""
    v, here = v.copy(), np.zeros(len(d))
    first, count = g.bend_start[d], np.diff(g.bend_start)[d]
    in_order = np.lexsort((g.bend_pos, g.bend_dedge))  # along each piece, tail to head
    for j in range(int(count.max(initial=0))):
        has = np.flatnonzero(count > j)
        b = in_order[first[has] + j]
        pos = g.bend_pos[b]
        # a bend exactly at the target does not slow the impact
        before = pos < upto[has] - 1e-9 if at_target else pos <= upto[has] + 1e-9
        has, b, pos = has[before], b[before], pos[before]
        v[has] = dyn.go(pos - here[has], v[has])
        v[has] = np.minimum(v[has], dyn.cap(g.bend_delta[b], g.bend_width[b], g.bend_leg[b]))
        here[has] = pos
    return dyn.go(np.maximum(upto - here, 0.0), v)


def brute_force(
    g: _Graph, dyn: _Dyn, tgt_d: np.ndarray, tgt_x: np.ndarray, turns: int
) -> np.ndarray:
    """Best speed (m/s) at each target over every walk of at most ``turns`` turns."""
    fits = (g.width >= dyn.width - 1e-9) | ~g.width_mapped
    v0 = g.road_v * dyn.road
    run_up_v0 = np.array([_run_up(dyn, float(x)) for x in v0])
    start = np.where((g.through_m >= run_up_v0 - 1e-9) & fits, np.minimum(v0, dyn.top), 0.0)
    best = np.zeros(len(tgt_d))
    # walks as rows: current directed piece and the speed entering it
    d = np.flatnonzero(fits)
    v = start[d]
    t_cap = dyn.cap(g.turn_delta, g.turn_width, g.turn_leg)
    for depth in range(turns + 1):
        for i, (td, tx) in enumerate(zip(tgt_d, tgt_x, strict=True)):
            on = d == td
            if on.any():
                sp = _drive(g, dyn, d[on], v[on], np.full(on.sum(), tx), at_target=True)
                best[i] = max(best[i], float(sp.max()))
        if depth == turns:
            break
        go = fits[d] & g.transit[d]
        d, v = d[go], v[go]
        v_out = _drive(g, dyn, d, v, g.length[d], at_target=False)
        idx = np.concatenate([np.arange(g.turn_start[p], g.turn_start[p + 1]) for p in d])
        own = np.repeat(np.arange(len(d)), np.diff(g.turn_start)[d])
        nxt = g.turn_succ[idx]
        ok = fits[nxt]
        d, v = nxt[ok], np.minimum(v_out[own], t_cap[idx])[ok]
        assert len(d) < 3_000_000, "clip too large for brute force"
    return best


def _run_up(dyn: _Dyn, v: float) -> float:
    """Distance from rest to ``v`` by bisection on attainable_speed (no closed form used)."""
    if v <= 0:
        return 0.0
    lo, hi = 0.0, 1.0
    while float(dyn.go(np.array([hi]), np.array([0.0]))[0]) < min(v, dyn.top) - 1e-12:
        hi *= 2
    for _ in range(80):
        mid = (lo + hi) / 2
        if float(dyn.go(np.array([mid]), np.array([0.0]))[0]) < min(v, dyn.top):
            lo = mid
        else:
            hi = mid
    return hi


def _clip(
    city: City, data: CityData, centre_lonlat: tuple[float, float], radius: float
) -> StreetNetwork:
    streets = data["street"].to_crs(city.crs)
    centre = gpd.GeoSeries([shapely.Point(centre_lonlat)], crs="EPSG:4326").to_crs(city.crs)[0]
    near = streets[streets.intersects(centre.buffer(radius))].clip(centre.buffer(radius))
    parts = near.explode(index_parts=True)
    parts = parts[parts.geom_type == "LineString"]
    parts.index = [f"{a}~{b}" for a, b in parts.index]  # one uid per piece of a clipped way
    return street_network(parts, data["barrier"], crs=city.crs)


def _targets(net: StreetNetwork, k: int) -> pd.DataFrame:
    ve = net.edges[net.edges["hostile_vehicle"].to_numpy(dtype=bool, na_value=False)]
    ve = ve[ve["length_m"] > 5.0]
    pick = ve.iloc[np.linspace(0, len(ve) - 1, min(k, len(ve))).astype(int)]
    return pd.DataFrame(
        {
            "space_uid": "clip",
            "edge": pick.index.to_numpy(),
            "at_m": pick["length_m"].to_numpy() * 0.6,
            "towards": np.where(np.arange(len(pick)) % 2 == 0, "v", "u"),
            "impact_angle_deg": 90.0,
        },
        index=pd.Index([f"t{i}" for i in range(len(pick))]),
    )


# Piața Sfatului and Strada Mureșenilor / Piața Unirii, Brașov centre clip (ODbL)
CLIPS = {"sfatului": ((25.5887, 45.6427), 110.0), "muresenilor": ((25.5854, 45.6455), 110.0)}


@pytest.mark.parametrize("clip", list(CLIPS))
def test_search_equals_brute_force_on_real_clips(
    clip: str, centre_city: City, centre_data: CityData
) -> None:
    centre, radius = CLIPS[clip]
    net = _clip(centre_city, centre_data, centre, radius)
    targets = _targets(net, 12)
    fleet = parameter_sets()["nominal"]
    out = approach_speeds(net, targets, sensitivity=NO_SENSITIVITY)
    graph = _prepare(net, default_width_m=parameter("lane_width_m"))
    loc = graph.edge_index.get_indexer(targets["edge"].to_numpy())
    assert (loc >= 0).all()
    tgt_d, tgt_x = _locate(
        graph.pieces, loc, targets["towards"].to_numpy() == "v", targets["at_m"].to_numpy()
    )
    assert len(graph.length) >= 40  # a real junction network, not a toy
    for code in ("M1", "N3"):
        dyn = _Dyn.of(fleet.loc[code])
        search = out[out["vehicle"] == code].set_index("entry_uid")["speed_kmh"]
        search = search.reindex(targets.index).to_numpy() / 3.6
        previous, k = None, 2
        while True:
            bf = brute_force(graph, dyn, tgt_d, tgt_x, k)
            assert (bf <= search + 1e-6).all(), (code, k)  # no walk beats the search
            if previous is not None and np.allclose(bf, previous, atol=1e-9):
                break
            previous, k = bf, k + 2
            assert k <= 12, "brute force did not settle"
        assert bf == pytest.approx(search, abs=1e-6), code
        assert (search > 0).sum() >= len(search) // 2
