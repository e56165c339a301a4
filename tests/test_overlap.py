"""Exact circle ∩ polygon areas against closed forms and against GEOS overlays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from geo_protect.analysis.overlap import circle_overlap_area


def test_closed_forms() -> None:
    big = shapely.box(-100, -100, 100, 100)
    ring = shapely.Polygon(big.exterior.coords, [shapely.box(-10, -10, 10, 10).exterior.coords])
    clockwise = shapely.Polygon(list(big.exterior.coords)[::-1])
    polys = np.array([big, ring, clockwise, shapely.box(0, 0, 10, 10)], dtype=object)
    centres = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [100.0, 5.0], [0.0, 0.0]])
    radii = np.array([30.0, 30.0, 30.0, 1.0, 5.0])
    pairs = np.array([[0, 0], [1, 1], [2, 2], [3, 0], [4, 3]])
    got = circle_overlap_area(centres, radii, polys, pairs)
    assert got[0] == pytest.approx(math.pi * 900)  # circle wholly inside
    assert got[1] == pytest.approx(math.pi * 900 - 400)  # minus the 20 x 20 hole
    assert got[2] == pytest.approx(math.pi * 900)  # orientation does not matter
    assert got[3] == pytest.approx(math.pi / 2)  # centre on an edge: half the circle
    assert got[4] == pytest.approx(math.pi * 25 / 4)  # centre at a corner: a quarter


def test_matches_geos_on_random_polygons_with_holes_and_parts() -> None:
    rng = np.random.default_rng(7)
    polys = []
    for i in range(200):
        c = rng.uniform(-50, 50, 2)
        k = int(rng.integers(3, 12))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = rng.uniform(5, 40, k)
        p = shapely.make_valid(
            shapely.Polygon(np.c_[c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)])
        )
        if i % 3 == 0:
            p = p.difference(shapely.Point(c).buffer(3))
        if i % 5 == 0:
            p = shapely.union(p, shapely.box(60 + i, 0, 70 + i, 8))
        polys.append(p)
    geoms = np.array(polys, dtype=object)
    centres = rng.uniform(-80, 80, (200, 2))
    radii = rng.uniform(1, 90, 200)
    pairs = np.c_[np.arange(200), np.arange(200)]
    got = circle_overlap_area(centres, radii, geoms, pairs)
    circles = shapely.buffer(shapely.points(centres), radii, quad_segs=1024)
    want = shapely.area(shapely.intersection(circles, geoms))
    # the 4096-gon's chords cut off at most its sagitta along the circle: about
    # r² · π · (2π/4096)² / 6 = 1.2e-6 r² in all, less for a piece of the circle
    assert (np.abs(got - want) <= 1e-6 * want + 2e-6 * radii**2).all()
    assert (shapely.get_num_interior_rings(geoms[shapely.get_type_id(geoms) == 3]) > 0).sum() > 10
