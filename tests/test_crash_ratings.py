"""Crash-rating strings parse to the published numbers; bad ones fail with their own message.

Expected values are the published figures of the domain brief §2.3 (rating examples, the
ASTM/DoS vehicle in lb and speeds in mph, penetration limits) converted by hand with the
exact definitions 1 lb = 0.45359237 kg, 1 mph = 1.609344 km/h, 1 ft = 0.3048 m.
"""

from __future__ import annotations

import math
import re

import pytest

from geo_protect.analysis.crash_ratings import (
    CrashRating,
    covers,
    crash_rating_classes,
    parse_rating,
    rating_energy_kj,
)
from geo_protect.errors import ValidationError
from geo_protect.reference import manifest

LB_KG = 0.45359237
MPH_KMH = 1.609344
FT_M = 0.3048
ISO_IWA = "ISO 22343-1 / IWA 14-1"


def _fields(r: CrashRating) -> tuple[object, ...]:
    return (
        r.standard,
        r.vehicle_class,
        r.mass_kg,
        r.speed_kmh,
        r.angle_deg,
        r.penetration_m,
        r.debris_m,
    )


# --- the published examples of brief §2.3 -------------------------------------------------


def test_pas68_examples_parse_to_the_published_numbers() -> None:
    # perimeterprotection.net: 7500 kg N3 at 80 km/h, 90°, 0.4 m penetration, 15.4 m debris
    r = parse_rating("V/7500[N3]/80/90:0.4/15.4")
    assert _fields(r) == ("PAS 68", "N3", 7500.0, 80.0, 90.0, 0.4, 15.4)
    assert r.text == "V/7500[N3]/80/90:0.4/15.4"
    # arxperimeters: 28.1 m penetration, 18 m debris at 48 km/h
    r = parse_rating("V/7500[N3]/48/90:28.1/18.0")
    assert _fields(r) == ("PAS 68", "N3", 7500.0, 48.0, 90.0, 28.1, 18.0)


def test_iwa_iso_example_parses_to_the_published_numbers() -> None:
    # perimeterprotection.net: 7200 kg N3C at 80 km/h, 90°, 0.8 m penetration
    r = parse_rating("V/7200[N3C]/80/90:0.8")
    assert _fields(r) == (ISO_IWA, "N3C", 7200.0, 80.0, 90.0, 0.8, None)
    # ebollard: "7,200 kg N2A truck at 48 km/h"
    r = parse_rating("V/7200[N2A]/48/90:0.0")
    assert _fields(r) == (ISO_IWA, "N2A", 7200.0, 48.0, 90.0, 0.0, None)


def test_astm_m50_p1_is_15000_lb_at_50_mph_within_1_m() -> None:
    r = parse_rating("M50/P1")
    assert r.standard == "ASTM F2656"
    assert r.vehicle_class == "M"
    assert r.mass_kg == pytest.approx(15_000 * LB_KG)  # 6,803.9 kg
    assert round(r.mass_kg) == 6804
    assert r.speed_kmh == pytest.approx(50 * MPH_KMH)  # 80.47 km/h
    assert round(r.speed_kmh) == 80
    assert r.angle_deg == 90.0
    assert (r.penetration_class, r.penetration_m) == ("P1", 1.0)


def test_dos_k12_l3_is_15000_lb_at_50_mph_within_3_ft() -> None:
    r = parse_rating("K12/L3")
    assert r.standard == "DoS SD-STD-02.01"
    assert r.mass_kg == pytest.approx(15_000 * LB_KG)
    assert r.speed_kmh == pytest.approx(50 * MPH_KMH)
    assert r.penetration_m == pytest.approx(3 * FT_M)  # 0.9144 m
    assert r.penetration_class == "L3"
    # K4 and K8: the same truck at 30 and 40 mph (48 and 64 km/h)
    assert parse_rating("K4").speed_kmh == pytest.approx(30 * MPH_KMH)
    assert round(parse_rating("K8").speed_kmh) == 64
    assert parse_rating("K4").penetration_m is None


# --- real-world variants --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("V/7200 [N2A]/48/90:0.0", (ISO_IWA, "N2A", 7200.0, 48.0, 90.0, 0.0, None)),
        ("  V / 7200 [N2A] / 48 / 90 : 0.0 ", (ISO_IWA, "N2A", 7200.0, 48.0, 90.0, 0.0, None)),
        ("v/7200[n2a]/48/90:0.0", (ISO_IWA, "N2A", 7200.0, 48.0, 90.0, 0.0, None)),
        ("V/7200[N2A]/48/90", (ISO_IWA, "N2A", 7200.0, 48.0, 90.0, None, None)),
        ("V/7200[N2A]/48/45:1.5", (ISO_IWA, "N2A", 7200.0, 48.0, 45.0, 1.5, None)),
        ("V/7500(N2)/48/90:0.0/0.0", ("PAS 68", "N2", 7500.0, 48.0, 90.0, 0.0, 0.0)),
        ("V/7500(N3)/48/90:0.0/0.0", ("PAS 68", "N3", 7500.0, 48.0, 90.0, 0.0, 0.0)),
        ("V/30000[N3]/48/90:1.0/5.0", ("PAS 68", "N3", 30000.0, 48.0, 90.0, 1.0, 5.0)),
        # a class both share with a debris distance: PAS 68; without: ISO/IWA
        ("V/1500[M1]/48/90:0.0/2.5", ("PAS 68", "M1", 1500.0, 48.0, 90.0, 0.0, 2.5)),
        ("V/1500[M1]/48/90:0.0", (ISO_IWA, "M1", 1500.0, 48.0, 90.0, 0.0, None)),
        (
            "ISO 22343-1:2023 V/7200[N2A]/48/90:0.0",
            ("ISO 22343-1", "N2A", 7200.0, 48.0, 90.0, 0.0, None),
        ),
        ("IWA 14-1:2013 V/7200[N2A]/48/90:0.0", ("IWA 14-1", "N2A", 7200.0, 48.0, 90.0, 0.0, None)),
        ("PAS 68:2013 V/7500[N3]/80/90:0.4/15.4", ("PAS 68", "N3", 7500.0, 80.0, 90.0, 0.4, 15.4)),
        ("PAS68 V/7500[N3]/80/90:0.4/15.4", ("PAS 68", "N3", 7500.0, 80.0, 90.0, 0.4, 15.4)),
    ],
)
def test_european_variants(text: str, expected: tuple[object, ...]) -> None:
    assert _fields(parse_rating(text)) == expected


@pytest.mark.parametrize(
    ("text", "mass_lb", "speed_mph", "penetration_m"),
    [
        ("M50-P1", 15_000, 50, 1.0),
        ("M50 / P1", 15_000, 50, 1.0),
        ("m50p1", 15_000, 50, 1.0),
        ("M50", 15_000, 50, None),
        ("M30/P3", 15_000, 30, 30.0),
        ("PU60-P2", 5_070, 60, 7.0),
        ("C40/P1", 2_430, 40, 1.0),
        ("H50/P4", 65_000, 50, math.inf),
        ("ASTM F2656-07 M40/P2", 15_000, 40, 7.0),
        ("ASTM F2656 M50/P1", 15_000, 50, 1.0),
        ("K12", 15_000, 50, None),
        ("K8/L2", 15_000, 40, 20 * FT_M),
        ("K4-L1", 15_000, 30, 50 * FT_M),
        ("DoS K12/L3", 15_000, 50, 3 * FT_M),
    ],
)
def test_us_variants(text: str, mass_lb: int, speed_mph: int, penetration_m: float | None) -> None:
    r = parse_rating(text)
    assert r.mass_kg == pytest.approx(mass_lb * LB_KG)
    assert r.speed_kmh == pytest.approx(speed_mph * MPH_KMH)
    assert r.angle_deg == 90.0
    assert r.penetration_m == (None if penetration_m is None else pytest.approx(penetration_m))


def test_a_standard_hint_decides_between_iso_and_iwa() -> None:
    text = "V/7200[N2A]/48/90:0.0"
    assert parse_rating(text, standard="IWA 14-1").standard == "IWA 14-1"
    assert parse_rating(text, standard="ISO 22343-1").standard == "ISO 22343-1"
    assert parse_rating("IWA 14-1 " + text, standard="IWA 14-1").standard == "IWA 14-1"
    assert parse_rating("M50/P1", standard="ASTM F2656").standard == "ASTM F2656"


# --- errors: each its own message, naming the field and quoting the text --------------------

BAD = [
    ("V/7200[N9Z]/48/90", r"has an unknown vehicle class 'N9Z' \(known: M1, N1, N1G, N2, N2A"),
    ("hello barrier", r"is not a crash rating in a known form; expected e\.g\. .*'M50/P1'"),
    (
        "V/7000[N2A]/48/90:0.0",
        r"gives 7000 kg for class N2A, but the test mass of N2A in .* is 7200 kg",
    ),
    ("V/12000[N3]/48/90:0.0/0.0", r"test mass of N3 in PAS 68 is 7500 or 30000 kg"),
    ("V/7200[N2A]/48/90:-1.0", r"has a negative penetration -1\.0: it must be >= 0"),
    ("V/7500[N3]/48/90:1.0/-2", r"has a negative debris distance -2: it must be >= 0"),
    ("V/7200[N2A]/0/90:0.0", r"has a speed 0: it must be positive"),
    ("V/7200[N2A]/48/95:0.0", r"has an angle 95°: it must be in \(0, 90\]"),
    ("V/7200[N2A]/48/0:0.0", r"has an angle 0: it must be positive"),
    ("M55/P1", r"has an unknown rating designation 'M55' \(known: C40, .*K12\)"),
    ("M50/L3", r"has an unknown ASTM F2656 penetration class 'L3' \(known: P1, P2, P3, P4\)"),
    ("ASTM F2656 K12", r"unknown rating designation 'K12' for ASTM F2656 \(known: C40"),
    ("ASTM F2656 V/7200[N2A]/48/90", r"is a 'V/…' rating, which is not the notation of ASTM F2656"),
    ("IWA 14-1 V/7500[N3]/48/90:0.0", r"unknown vehicle class 'N3' for IWA 14-1 \(known: M1, "),
    (
        "PAS 68 M50/P1",
        r"is not in the 'V/mass\[class\]/speed/angle:penetration' notation of PAS 68",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_ratings_fail_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_rating(text, field="barriers.csv row 3: crash_rating")
    got = str(info.value)
    assert got.startswith(f"barriers.csv row 3: crash_rating: {text!r} ")
    assert re.search(message, got), got


def test_every_bad_rating_has_its_own_message() -> None:
    problems = set()
    for text, _ in BAD:
        with pytest.raises(ValidationError) as info:
            parse_rating(text)
        problems.add(str(info.value).removeprefix(f"rating: {text!r} "))
    assert len(problems) == len(BAD)


@pytest.mark.parametrize("text", ["V/7200[N2A]/48/90:0.0:1", "V/7200/48/90", "N2A 48 km/h"])
def test_near_misses_are_unknown_forms_not_partial_parses(text: str) -> None:
    with pytest.raises(ValidationError, match=r"is not a crash rating in a known form"):
        parse_rating(text)


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_an_empty_rating_is_an_error_naming_the_field(text: str) -> None:
    with pytest.raises(ValidationError, match=r"^crash_rating: empty crash rating .*'M50/P1'"):
        parse_rating(text, field="crash_rating")


def test_contradicting_or_unknown_standards_are_errors() -> None:
    with pytest.raises(ValidationError, match=r"names PAS 68 but the standard given is ASTM F2656"):
        parse_rating("PAS 68 V/7500[N3]/48/90:0.0/0.0", standard="ASTM F2656")
    with pytest.raises(ValidationError, match=r"rating: 'M50' names an unknown standard 'EN 1317'"):
        parse_rating("M50", standard="EN 1317")


# --- energy and coverage --------------------------------------------------------------------


def test_rating_energy_matches_the_brief_ladder_and_the_astm_figure() -> None:
    # brief §2.3 energy ladder: ½mv², 7200 kg @ 48 km/h = 640 kJ, 30 t @ 80 km/h = 7,407 kJ
    assert round(rating_energy_kj(parse_rating("V/7200[N2A]/48/90:0.0"))) == 640
    assert round(rating_energy_kj(parse_rating("V/30000[N3]/80/90:0.0/0.0"))) == 7407
    # deltascientific: M30 / M50 about 450,000 / 1,250,000 ft·lbf (1 ft·lbf = 1.3558179483 J)
    ft_lbf = 1.3558179483e-3  # kJ
    assert rating_energy_kj(parse_rating("M30")) / ft_lbf == pytest.approx(450_000, rel=0.01)
    assert rating_energy_kj(parse_rating("M50")) / ft_lbf == pytest.approx(1_250_000, rel=0.01)


def test_covers_needs_both_mass_and_speed() -> None:
    n2a = parse_rating("V/7200[N2A]/48/90:0.0")
    assert covers(n2a, mass_kg=7200, speed_kmh=48)  # the test case itself
    assert covers(n2a, mass_kg=1500, speed_kmh=30)
    assert not covers(n2a, mass_kg=7201, speed_kmh=48)
    assert not covers(n2a, mass_kg=7200, speed_kmh=48.1)
    # a car at 80 km/h carries 370 kJ, less than the rated 640 kJ, but is faster than tested
    assert rating_energy_kj(parse_rating("V/1500[M1]/80/90:0.0")) < rating_energy_kj(n2a)
    assert not covers(n2a, mass_kg=1500, speed_kmh=80)
    # the ASTM M truck (6,804 kg) is lighter than an N2A truck, though faster
    assert not covers(parse_rating("M50/P1"), mass_kg=7200, speed_kmh=48)
    assert covers(parse_rating("M50/P1"), mass_kg=6800, speed_kmh=80)


@pytest.mark.parametrize(
    ("mass", "speed"), [(0.0, 48.0), (-1.0, 48.0), (7200.0, -5.0), (7200.0, math.nan)]
)
def test_covers_rejects_impossible_threats(mass: float, speed: float) -> None:
    with pytest.raises(ValidationError, match=r"^(mass_kg|speed_kmh): threat"):
        covers(parse_rating("K12"), mass_kg=mass, speed_kmh=speed)


# --- the reference table --------------------------------------------------------------------


def test_the_table_is_registered_and_its_units_agree() -> None:
    assert "crash_rating_classes" in manifest()["tables"]
    t = crash_rating_classes()
    assert set(t["kind"]) == {"vehicle", "designation", "penetration"}
    assert t["source"].notna().all()
    lb = t[t["mass_lb"].notna()]
    assert (lb["mass_kg"] - lb["mass_lb"] * LB_KG).abs().max() < 1e-5
    mph = t[t["speed_mph"].notna()]
    assert (mph["speed_kmh"] - mph["speed_mph"] * MPH_KMH).abs().max() < 1e-5
    # every ASTM/DoS designation is the class letter(s) and the speed in mph (K: the DoS scale)
    des = t[(t["kind"] == "designation") & (t["standard"] == "ASTM F2656")]
    assert (des["code"] == des["vehicle_class"] + des["speed_mph"].astype(str)).all()
