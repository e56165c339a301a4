"""Live state per space from sensor readings (geo_protect.live.state, issue 11).

Expected values are worked by hand from the inputs and the reference table rows quoted in
the comments (los_queue / los_walkway, crowd_alert_bands, egress_flow, risk_parameters).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geo_protect import ValidationError
from geo_protect.live.state import default_stale_after_s, sensor_state, space_state

NOW = pd.Timestamp("2026-05-01 18:00:00", tz="UTC")
MIN = pd.Timedelta(minutes=1)
NAN = float("nan")


def sensors_frame(rows: dict[str, dict[str, object]]) -> pd.DataFrame:
    """A sensor register: id -> space_uid, kind and optionally area_m2, exit_width_m."""
    frame = pd.DataFrame.from_dict(rows, orient="index")
    for col in ("area_m2", "exit_width_m"):
        frame[col] = frame[col].astype(float) if col in frame else NAN
    frame.index.name = "sensor_id"
    return frame


def spaces_frame(rows: dict[str, dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index")


def reading(sensor: str, at: pd.Timestamp, **values: float) -> dict[str, object]:
    return {"sensor_id": sensor, "observed_at": at, **values}


def readings_frame(*rows: dict[str, object]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=None if rows else ["sensor_id", "observed_at"])
    for col in ("present", "density", "count_in", "count_out", "interval_s"):
        if col not in frame:
            frame[col] = NAN
    return frame


SQUARE = {
    "usable_area_m2": 400.0,
    "design_density": 2.0,
    "area_type": "standing",
    "risk_100": 40.0,
}
STREET = {"usable_area_m2": 1000.0, "design_density": 0.7, "area_type": "moving", "risk_100": 60.0}


def test_area_counter_density_level_of_service_band_and_live_risk() -> None:
    sensors = sensors_frame(
        {
            "cam": {"space_uid": "sq", "kind": "area_counter"},
            "est": {"space_uid": "st", "kind": "density"},
        }
    )
    spaces = spaces_frame({"sq": SQUARE, "st": STREET, "park": SQUARE})  # park: no sensor
    readings = readings_frame(
        reading("cam", NOW - MIN, present=600.0), reading("est", NOW - MIN, density=0.5)
    )
    out = space_state(readings, sensors, spaces, now=NOW)
    assert list(out.index) == ["sq", "st"]  # one row per space with a sensor
    # 600 people on 400 m² usable = 1.5 p/m², i.e. 0.667 m² each: queuing LOS C
    # (los_queue: C from 0.6 to 0.9 m²/person); standing green (< 2 p/m²)
    sq = out.loc["sq"]
    assert sq["density"] == pytest.approx(1.5)
    assert (sq["los"], sq["alert"]) == ("C", "green")
    # R_live = 40 × clamp(1.5 / 2.0, 0.5, 1.5) = 30
    assert sq["live_risk"] == pytest.approx(30.0)
    # 0.5 p/m² = 2 m²/person on a moving street: walkway LOS D (1.4-2.2 m²), green (< 1.0)
    st = out.loc["st"]
    assert (st["density"], st["los"], st["alert"]) == (0.5, "D", "green")
    assert st["live_risk"] == pytest.approx(60.0 * 0.5 / 0.7)
    assert sq["last_reading_at"] == NOW - MIN and not sq["stale"]
    assert sq["sensors"] == 1 and sq["stale_sensors"] == ()


def test_a_zone_area_is_used_instead_of_the_space_and_bands_follow_the_design_rule() -> None:
    sensors = sensors_frame(
        {
            "gate": {"space_uid": "sq", "kind": "area_counter", "area_m2": 100.0},
            "cam": {"space_uid": "ev", "kind": "area_counter"},
        }
    )
    event = {**SQUARE, "design_density": 1.6}
    spaces = spaces_frame({"sq": SQUARE, "ev": event})
    readings = readings_frame(
        reading("gate", NOW, present=250.0), reading("cam", NOW, present=840.0)
    )
    out = space_state(readings, sensors, spaces, now=NOW)
    # 250 in a 100 m² zone = 2.5 p/m² (not 250 / 400): amber (2-3.5); 0.4 m²/person: LOS D
    assert out.loc["sq", "density"] == pytest.approx(2.5)
    assert (out.loc["sq", "los"], out.loc["sq", "alert"]) == ("D", "amber")
    # 840 / 400 = 2.1 p/m², over 1.6 × 1.25 = 2.0 (design rule): critical, though amber
    assert out.loc["ev", "density"] == pytest.approx(2.1)
    assert out.loc["ev", "alert"] == "critical"


def test_several_sensors_on_one_space_give_the_worst_zone_and_the_weighted_mean() -> None:
    sensors = sensors_frame(
        {
            "north": {"space_uid": "sq", "kind": "area_counter", "area_m2": 100.0},
            "south": {"space_uid": "sq", "kind": "area_counter", "area_m2": 300.0},
            "cam": {"space_uid": "sq", "kind": "density", "area_m2": NAN},
        }
    )
    spaces = spaces_frame({"sq": SQUARE})
    readings = readings_frame(
        reading("north", NOW, present=300.0),  # 3.0 p/m²
        reading("south", NOW, present=150.0),  # 0.5 p/m²
        reading("cam", NOW, density=1.0),  # over the whole 400 m²
    )
    out = space_state(readings, sensors, spaces, now=NOW).loc["sq"]
    assert out["sensors"] == 3
    assert out["density"] == pytest.approx(3.0)  # a crush in the north zone is not averaged
    # (300 + 150 + 1.0 × 400) / (100 + 300 + 400) = 850 / 800
    assert out["density_mean"] == pytest.approx(850 / 800)
    # 3.0 p/m² = 0.33 m²/person: queuing LOS D (0.3-0.6); amber by its band (2-3.5) but
    # over the design density 2.0 × 1.25 = 2.5: critical
    assert (out["los"], out["alert"]) == ("D", "critical")


def test_rise_is_the_least_squares_slope_over_the_rate_window() -> None:
    sensors = sensors_frame(
        {
            "fast": {"space_uid": "a", "kind": "density"},
            "slow": {"space_uid": "b", "kind": "density"},
            "late": {"space_uid": "c", "kind": "density"},
        }
    )
    spaces = spaces_frame({"a": SQUARE, "b": SQUARE, "c": SQUARE})
    rows = []
    for k in range(-10, 1):  # a reading per minute for 10 minutes
        at = NOW + k * MIN
        rows.append(reading("fast", at, density=2.0 + 0.15 * k))  # 0.15 p/m² per min
        rows.append(reading("slow", at, density=2.0 + 0.08 * k))  # 0.40 per 5 min
        # flat at 1.0 until 5 min ago, then up 0.2 per min: the 5 min window sees 0.2
        rows.append(reading("late", at, density=1.0 + 0.2 * max(0, k + 5)))
    out = space_state(readings_frame(*rows), sensors, spaces, now=NOW)
    assert out["rise_per_min"].tolist() == pytest.approx([0.15, 0.08, 0.2])
    # rate alert: more than 0.5 p/m² per 5 min (parameters.csv): 0.75 and 1.0 are, 0.4 not
    assert out["rapid_rise"].tolist() == [True, False, True]
    # a single reading has no slope
    single = space_state(
        readings_frame(reading("fast", NOW, density=1.0)), sensors, spaces, now=NOW
    )
    assert math.isnan(single.loc["a", "rise_per_min"]) and not single.loc["a", "rapid_rise"]


def test_line_counters_give_exit_flow_per_metre_against_the_green_guide() -> None:
    sensors = sensors_frame(
        {
            "gate": {"space_uid": "sq", "kind": "line_counter", "exit_width_m": 4.0},
            "door": {"space_uid": "st", "kind": "line_counter", "exit_width_m": 4.0},
            "steps": {"space_uid": "pk", "kind": "line_counter", "exit_width_m": 2.0},
        }
    )
    sensors["exit_type"] = ["level", "level", "stepped"]
    spaces = spaces_frame({"sq": SQUARE, "st": STREET, "pk": SQUARE})
    readings = readings_frame(
        reading("gate", NOW, count_in=200.0, count_out=40.0, interval_s=60.0),
        reading("door", NOW, count_in=300.0, count_out=100.0, interval_s=60.0),
        reading("steps", NOW, count_in=70.0, count_out=0.0, interval_s=30.0),
    )
    out = space_state(readings, sensors, spaces, now=NOW)
    # (200 + 40) / 1 min / 4 m = 60; 400 / 4 = 100; 70 per 30 s = 140 / min over 2 m = 70
    assert out.loc[["sq", "st", "pk"], "exit_flow_p_min_m"].tolist() == [60.0, 100.0, 70.0]
    # Green Guide: level 82, stepped 66 p/min/m (egress_flow.csv)
    assert out.loc[["sq", "st", "pk"], "exit_flow_alert"].tolist() == [False, True, True]
    assert out.loc["st", "exit_flow_ratio"] == pytest.approx(100 / 82)
    assert out.loc["pk", "exit_flow_ratio"] == pytest.approx(70 / 66)
    # a line counter gives no density
    assert out["density"].isna().all() and out["los"].isna().all()


def test_real_melbourne_hourly_count_as_a_line_counter() -> None:
    """The busiest hour of Bourke Street Mall (North), Jan 2019 (3891 people: data/crowd,
    a real open count, not one of our cities), through an assumed 10 m wide opening."""
    path = Path(__file__).resolve().parent.parent / "data/crowd"
    counts = pd.read_csv(path / "melbourne_pedestrian_counts_hourly_2019-01.csv")
    hour = counts.loc[
        (counts["Date"] == "11/01/2019") & (counts["Hour"] == 17), "Bourke Street Mall (North)"
    ]
    sensors = sensors_frame(
        {"mall": {"space_uid": "m", "kind": "line_counter", "exit_width_m": 10.0}}
    )
    readings = readings_frame(
        reading("mall", NOW, count_in=float(hour.iloc[0]), count_out=0.0, interval_s=3600.0)
    )
    out = space_state(readings, sensors, spaces_frame({"m": STREET}), now=NOW)
    # 3891 per hour = 64.85 per min, over 10 m = 6.5 p/min/m: far under 82
    assert out.loc["m", "exit_flow_p_min_m"] == pytest.approx(3891 / 60 / 10)
    assert not out.loc["m", "exit_flow_alert"]


def test_silent_sensors_are_stale_and_fresh_ones_are_preferred() -> None:
    sensors = sensors_frame(
        {
            "old": {"space_uid": "sq", "kind": "density"},
            "new": {"space_uid": "sq", "kind": "density"},
            "gone": {"space_uid": "st", "kind": "density"},
            "never": {"space_uid": "st", "kind": "area_counter"},
        }
    )
    spaces = spaces_frame({"sq": SQUARE, "st": STREET})
    readings = readings_frame(
        reading("old", NOW - pd.Timedelta(seconds=400), density=4.0),
        reading("new", NOW - pd.Timedelta(seconds=20), density=1.0),
        reading("gone", NOW - pd.Timedelta(seconds=900), density=1.5),
    )
    # the stale rule's 300 s (brief §5.2: sensor health every 5 min) is the default
    assert default_stale_after_s() == 300.0
    out = space_state(readings, sensors, spaces, now=NOW)
    sq, st = out.loc["sq"], out.loc["st"]
    # 'old' (400 s > 300 s) is stale: the fresh 'new' gives the density, not the old 4.0
    assert sq["density"] == 1.0 and not sq["stale"] and sq["stale_sensors"] == ("old",)
    assert sq["sensor_silent_s"] == {"old": 400.0, "new": 20.0}
    assert sq["last_reading_at"] == NOW - pd.Timedelta(seconds=20)
    # every sensor of 'st' is silent: its last figure is kept, the space is stale
    assert st["density"] == 1.5 and st["stale"] and st["stale_sensors"] == ("gone", "never")
    assert st["sensor_silent_s"]["gone"] == 900.0
    assert st["sensor_silent_s"]["never"] == math.inf  # no reading in the window
    # a longer limit makes 'old' fresh again: then the worst of the two counts
    lax = space_state(readings, sensors, spaces, now=NOW, stale_after_s=600)
    assert lax.loc["sq", "density"] == 4.0 and lax.loc["sq", "stale_sensors"] == ()


def test_faults_later_readings_and_resends() -> None:
    sensors = sensors_frame(
        {
            "cam": {"space_uid": "sq", "kind": "area_counter"},
            "gate": {"space_uid": "sq", "kind": "line_counter", "exit_width_m": 4.0},
        }
    )
    spaces = spaces_frame({"sq": SQUARE})
    per = sensor_state(
        readings_frame(
            reading("cam", NOW - MIN, present=-5.0),  # a fault: no density, not a negative one
            reading("gate", NOW - MIN, count_in=10.0, count_out=2.0, interval_s=0.0),
        ),
        sensors,
        spaces,
        now=NOW,
    )
    assert per["density"].isna().all() and per["exit_flow_p_min_m"].isna().all()
    # a reading after `now` is not part of the state at `now`; a resend of one time wins
    readings = readings_frame(
        reading("cam", NOW - MIN, present=100.0),
        reading("cam", NOW - MIN, present=200.0),
        reading("cam", NOW + MIN, present=999.0),
    )
    out = space_state(readings, sensors, spaces, now=NOW)
    assert out.loc["sq", "density"] == pytest.approx(200 / 400)
    assert out.loc["sq", "last_reading_at"] == NOW - MIN
    # empty window: the space is still listed, unknown and stale
    empty = space_state(readings_frame().iloc[0:0], sensors, spaces, now=NOW)
    assert math.isnan(empty.loc["sq", "density"]) and empty.loc["sq", "stale"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("unknown_sensor", "unknown sensor"),
        ("naive_time", "time-zone-aware"),
        ("bad_kind", "unknown kind"),
        ("orphan", "not in spaces"),
        ("text_count", "'present' is not numeric"),
        ("bad_area_type", "area_type must be standing or moving"),
        ("zero_design", "design_density is not positive"),
    ],
)
def test_bad_input_names_the_field(change: str, match: str) -> None:
    sensors = sensors_frame({"cam": {"space_uid": "sq", "kind": "area_counter"}})
    spaces = spaces_frame({"sq": SQUARE})
    readings = readings_frame(reading("cam", NOW, present=10.0))
    if change == "unknown_sensor":
        readings = readings_frame(reading("nope", NOW, present=10.0))
    elif change == "naive_time":
        readings["observed_at"] = readings["observed_at"].dt.tz_localize(None)
    elif change == "bad_kind":
        sensors["kind"] = "wifi"
    elif change == "orphan":
        sensors["space_uid"] = "elsewhere"
    elif change == "text_count":
        readings["present"] = ["ten"]
    elif change == "bad_area_type":
        spaces["area_type"] = "sitting"
    elif change == "zero_design":
        spaces["design_density"] = 0.0
    with pytest.raises(ValidationError, match=match):
        space_state(readings, sensors, spaces, now=NOW)
    with pytest.raises(ValidationError, match="time zone"):
        space_state(readings_frame(), sensors, spaces, now=pd.Timestamp("2026-05-01 18:00"))


def test_vectorised_on_a_city_sized_window() -> None:
    """300 spaces, 900 sensors, 15 min of 10 s readings (81,000 rows) in one call."""
    rng = np.random.default_rng(11)
    n_space, per_space, steps = 300, 3, 90
    spaces = spaces_frame({f"s{i}": SQUARE for i in range(n_space)})
    sensors = sensors_frame(
        {
            f"s{i}-{j}": {"space_uid": f"s{i}", "kind": "density", "area_m2": 100.0}
            for i in range(n_space)
            for j in range(per_space)
        }
    )
    times = NOW - pd.to_timedelta(np.arange(steps)[::-1] * 10, unit="s")
    ids = np.repeat(sensors.index.to_numpy(), steps)
    readings = pd.DataFrame(
        {
            "sensor_id": ids,
            "observed_at": np.tile(times, len(sensors)),
            "density": rng.uniform(0.0, 3.0, len(ids)),
        }
    )
    out = space_state(readings, sensors, spaces, now=NOW)
    assert len(out) == n_space and out["sensors"].eq(per_space).all()
    last = readings.groupby("sensor_id")["density"].last()
    worst = last.groupby(sensors["space_uid"]).max()
    assert out["density"].to_numpy() == pytest.approx(worst.reindex(out.index).to_numpy())
