"""Vehicle classes, impact energy and required ratings (closed forms, brief §2.2-§2.3)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from geo_protect import AnalysisError
from geo_protect.analysis.vehicles import (
    attainable_speed,
    kinetic_energy_kj,
    rating_speeds,
    required_rating,
    required_test_speed,
    vehicle_classes,
)

#: The brief's rating-string regex (§2.3), without the penetration part.
RATING = re.compile(r"^V/(\d+)\[([A-Z0-9]+)\]/(\d+)/(\d+)$")


def test_default_classes_follow_the_brief() -> None:
    v = vehicle_classes()
    assert list(v.index) == ["M1", "N1", "N2", "N3"]
    assert v.loc["M1", "acceleration_ms2"] == 3.0
    assert v.loc["N3", "rating_class"] == "N3C"
    assert v.loc["N3", "test_mass_kg"] == 7200
    assert set(v["confidence"]) <= {"S", "V", "I"}
    assert "N1G" in vehicle_classes(include_all=True).index


def test_attainable_speed_matches_the_brief_table() -> None:
    # brief §2.2: M1 (a = 3.0) 28/39/48/62/88 km/h after 10/20/30/50/100 m
    kmh = attainable_speed([10, 20, 30, 50, 100], acceleration=3.0) * 3.6
    assert np.round(kmh).tolist() == [28, 39, 48, 62, 88]
    assert attainable_speed(50.0, acceleration=3.0) == pytest.approx(math.sqrt(300))
    assert attainable_speed(50.0, acceleration=3.0, v0=10.0) == pytest.approx(20.0)
    assert attainable_speed(1000.0, acceleration=3.0, top_speed=25.0) == 25.0
    with pytest.raises(AnalysisError, match="run-up"):
        attainable_speed(-1.0, acceleration=3.0)


def test_kinetic_energy_matches_the_energy_ladder() -> None:
    # brief §2.3 energy ladder
    got = kinetic_energy_kj([1500, 7200, 7200, 30000], [48, 48, 80, 80])
    assert np.round(got).tolist() == [133, 640, 1778, 7407]


def test_required_test_speed_uses_the_safety_factor() -> None:
    assert rating_speeds().tolist() == [16, 32, 48, 64, 80]
    got = required_test_speed([10.0, 29.0, 30.0, 43.6, 72.7, 72.8, 0.0])
    # x 1.1: 11 -> 16; 31.9 -> 32; 33 -> 48; 47.96 -> 48; 79.97 -> 80; 80.08 -> beyond
    assert got[:5].tolist() == [16, 32, 48, 48, 80]
    assert np.isnan(got[5]) and np.isnan(got[6])
    assert required_test_speed(30.0, safety_factor=1.0).item() == 32
    assert required_test_speed(85.0, speeds=rating_speeds(include_all=True).tolist()).item() == 96


def test_required_rating_strings() -> None:
    got = required_rating([40.0, 20.0, 75.0, 0.0], ["N3", "N2", "M1", "N1"])
    assert got.tolist() == ["V/7200[N3C]/48/90", "V/7200[N2A]/32/90", "> V/1500[M1]/80/90", None]
    m = RATING.match(got[0])
    assert m is not None and m.groups() == ("7200", "N3C", "48", "90")
    assert required_rating(40.0, "N1", angle_deg=45).tolist() == ["V/3500[N1]/48/45"]
    with pytest.raises(AnalysisError, match="XX"):
        required_rating(40.0, "XX")
