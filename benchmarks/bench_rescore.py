"""Barrier-scenario benchmark: the incremental re-analysis vs a full re-analysis.

Run with ``.venv/bin/python benchmarks/bench_rescore.py``. On the Brașov municipality it
builds the scenario context once (the baseline in memory), then for (a) a bollard row
across the fastest entry of Piața Sfatului and (b) 50 random single edits across the
city (rows of posts across entries, blocks in streets, removals of mapped barriers, half
of them barriers that close a street)
times :func:`geo_protect.scenario.incremental.rescore` (all edits, one after another)
and then, in the same run, a full re-analysis of each edited city
(:func:`geo_protect.scenario.engine.apply_scenario`), and checks that both give the same
entries, speeds and scores.

Target: p95 ≤ 300 ms (aim ≤ 50 ms), identical=true. Last line, for scripts:
``rescore p50_ms=… p95_ms=… full_s=… identical=true|false context_mib=…``.
"""

from __future__ import annotations

import gc
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from _common import console, peak_mib
from rich.progress import track

from geo_protect.cities import get_city
from geo_protect.osm.ingest import ingest_city
from geo_protect.scenario.engine import apply_scenario
from geo_protect.scenario.incremental import ScenarioContext, rescore, scenario_context
from geo_protect.scenario.model import BarrierEdit

N_RANDOM = 50
SFATULUI = "relation/9620387"


def _row(ctx: ScenarioContext, entry: pd.Series, spacing: float) -> BarrierEdit:
    p = gpd.GeoSeries([entry.geometry], crs="EPSG:4326").to_crs(ctx.city.crs).iloc[0]
    b = np.radians(float(entry["bearing_deg"]))
    into = np.array([np.sin(b), np.cos(b)])
    across = np.array([into[1], -into[0]]) * (float(entry["width_m"]) / 2 + 2)
    c = np.array([p.x, p.y]) - 1.5 * into
    line = gpd.GeoSeries([shapely.LineString([c - across, c + across])], crs=ctx.city.crs)
    return BarrierEdit(
        kind="bollard_row", geometry=line.to_crs("EPSG:4326").iloc[0], spacing_m=spacing
    )


def _edits(ctx: ScenarioContext, rng: np.random.Generator) -> list[list[BarrierEdit]]:
    entries = ctx.layers["entry_point"]
    open_ = entries[entries["entry_class"] == "vehicle_permeable"]
    mine = open_[open_["space_uid"] == SFATULUI].sort_values("worst_speed_kmh")
    out = [[_row(ctx, mine.iloc[-1], 1.3)]]
    edges = ctx.network.vehicle_edges
    closing = ctx.network.barriers["barrier_uid"].astype(str).unique()
    for i in range(N_RANDOM):
        if i % 3 == 0:
            out.append([_row(ctx, open_.iloc[int(rng.integers(len(open_)))], 1.3)])
        elif i % 3 == 1:
            g = edges.geometry.iloc[int(rng.integers(len(edges)))]
            pt = gpd.GeoSeries([g.interpolate(0.5, normalized=True)], crs=ctx.city.crs)
            out.append([BarrierEdit(kind="block", geometry=pt.to_crs("EPSG:4326").iloc[0])])
        else:  # every other removal takes a barrier that closes a street
            pool = closing if i % 2 else ctx.data["barrier"].index.astype(str)
            uid = str(pool[int(rng.integers(len(pool)))])
            out.append([BarrierEdit(action="remove", osm_id=uid)])
    return out


def _same(a: dict[str, gpd.GeoDataFrame], b: dict[str, gpd.GeoDataFrame]) -> bool:
    for layer, cols in (
        ("entry_point", ["entry_class", "worst_speed_kmh", "worst_vehicle", "required_rating"]),
        ("approach", ["speed_kmh", "speed_low_kmh", "speed_high_kmh", "required_rating"]),
        ("assessment", ["risk_100", "band", "why"]),
    ):
        x, y = a[layer], b[layer]
        if sorted(x.index) != sorted(y.index):
            return False
        y = y.loc[x.index]
        for c in cols:
            if pd.api.types.is_float_dtype(x[c]):
                if not np.allclose(
                    x[c].to_numpy(float), y[c].to_numpy(float), rtol=0, atol=1e-6, equal_nan=True
                ):
                    return False
            elif not (x[c].astype("string").fillna("") == y[c].astype("string").fillna("")).all():
                return False
    return True


def main() -> None:
    city = get_city("brasov")
    data = ingest_city(city)
    mem, ctx = peak_mib(lambda: scenario_context(city, data))
    gc.collect()
    gc.freeze()  # as the service does with a context it keeps (service/planning.py)
    console.print(f"context: {len(ctx.layers['entry_point']):,} entries, peak {mem:.0f} MiB")
    rng = np.random.default_rng(20261202)
    plan = _edits(ctx, rng)
    # the incremental path in a pass of its own, as a planner uses it (one edit after
    # another); a full re-analysis in between would leave its garbage to the next call
    fast_ms, results = [], []
    for edits in track(plan, description="incremental", console=console):
        t = time.perf_counter()
        results.append(rescore(ctx, edits))
        fast_ms.append((time.perf_counter() - t) * 1000)
    console.print(
        f"(a) bollard row across Piața Sfatului's fastest entry: {fast_ms[0]:.0f} ms, "
        f"{len(results[0].entries)} entries change"
    )
    full_s, identical = [], True
    pairs = list(zip(plan, results, strict=True))
    for edits, fast in track(pairs, description="full re-analysis", console=console):
        t = time.perf_counter()
        full = apply_scenario(city, data, edits, baseline=ctx.layers)
        full_s.append(time.perf_counter() - t)
        identical &= _same(fast.layers, full.layers)
    p50, p95 = np.percentile(fast_ms, [50, 95])
    console.print(
        f"(b) {len(fast_ms)} edits: p50 {p50:.0f} ms, p95 {p95:.0f} ms (target ≤ 300 ms); "
        f"full re-analysis {np.median(full_s):.2f} s; identical: {identical}"
    )
    print(
        f"rescore p50_ms={p50:.0f} p95_ms={p95:.0f} full_s={np.median(full_s):.2f} "
        f"identical={'true' if identical else 'false'} context_mib={mem:.0f}"
    )


if __name__ == "__main__":
    main()
