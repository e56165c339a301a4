"""Control-room alerts: levels, hysteresis, hold times and de-duplication (issue 11).

Thresholds quoted in comments are the rows of data/reference/alert_rules.csv; the series
fed in are built so that what must happen can be counted by hand (crossings, batches).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from geo_protect import ConfigError, ValidationError
from geo_protect.live.alerts import (
    ALERT_COLUMNS,
    AlertChanges,
    alert_key,
    alert_rules,
    evaluate_alerts,
)
from geo_protect.live.state import space_state
from geo_protect.reference import parameter, table

T0 = pd.Timestamp("2026-05-01 18:00:00", tz="UTC")
SPACE = "way/1"
NAME = "Piața Sfatului"


def state(**columns: object) -> pd.DataFrame:
    """The live state of one standing space named Piața Sfatului."""
    base: dict[str, object] = {"area_type": "standing", "name": NAME}
    return pd.DataFrame({k: [v] for k, v in {**base, **columns}.items()}, index=[SPACE])


def run(
    values: list[float], *, column: str = "density", step_s: float = 10.0, **kwargs: object
) -> list[AlertChanges]:
    """Feed one value per batch, ``step_s`` apart, carrying the tracked alerts along."""
    rules = kwargs.pop("rules", None)
    active = pd.DataFrame()
    out = []
    for k, v in enumerate(values):
        changes = evaluate_alerts(
            state(**{column: v}, **kwargs),
            active,
            now=T0 + pd.Timedelta(seconds=k * step_s),
            rules=rules,  # type: ignore[arg-type]
        )
        active = changes.tracked
        out.append(changes)
    return out


def count(batches: list[AlertChanges], frame: str, change: str | None = None) -> int:
    rows = pd.concat([getattr(b, frame) for b in batches])
    return len(rows) if change is None else int(rows["change"].str.contains(change).sum())


def crossings(values: np.ndarray, level: float) -> int:
    """How many times a series crosses ``level`` (sign changes of value - level)."""
    side = np.sign(values - level)
    assert (side != 0).all()
    return int((side[1:] != side[:-1]).sum())


def test_an_extreme_density_opens_at_once_with_a_message_naming_space_and_figure() -> None:
    # standing Extreme: enter 5.0 p/m², hold 0 s
    changes = evaluate_alerts(state(density=5.4, los="F"), pd.DataFrame(), now=T0)
    assert len(changes.opened) == 1 and changes.changed.empty
    row = changes.opened.iloc[0]
    assert list(changes.opened.columns) == list(ALERT_COLUMNS)
    assert row["alert_key"] == alert_key("los", SPACE) == "los|way/1"
    assert (row["kind"], row["space_uid"], row["sensor_id"]) == ("los", SPACE, None)
    assert (row["severity"], row["condition"], row["threshold"]) == ("Extreme", "active", 5.0)
    assert row["value"] == row["current"] == 5.4
    assert NAME in row["message"] and "5.40 p/m²" in row["message"] and "LOS F" in row["message"]
    assert row["evaluated_at"] == T0


def test_hold_before_opening_and_before_clearing_then_reactivation() -> None:
    # standing Moderate: enter 2.0, clear 1.8, hold 60 s; batches 10 s apart
    values = [2.2] * 7 + [1.7] * 7 + [2.1] * 7
    batches = run(values)
    opened_at = [k for k, b in enumerate(batches) if len(b.opened)]
    assert opened_at == [6]  # 2.2 since batch 0: 60 s held at batch 6
    pending = batches[0].tracked.iloc[0]
    assert (pending["condition"], pending["pending_since"]) == ("pending", T0)
    assert batches[0].opened.empty and batches[0].changed.empty
    changes = [(k, b.changed.iloc[0]["change"]) for k, b in enumerate(batches) if len(b.changed)]
    # below 1.8 from batch 7: cleared at batch 13 (60 s later); over 2.0 from batch 14:
    # active again at batch 20, the same alert (never a second opening)
    assert changes == [(13, "cleared"), (20, "reactivated")]
    assert batches[13].changed.iloc[0]["threshold"] == 1.8
    assert "back below 1.8 p/m²" in batches[13].changed.iloc[0]["message"]
    assert batches[-1].tracked["condition"].tolist() == ["active"]


def test_a_pending_alert_that_drops_below_clear_is_forgotten() -> None:
    batches = run([2.3, 2.3, 1.7, 1.7])  # 20 s over enter, then under clear
    assert batches[1].tracked["condition"].tolist() == ["pending"]
    assert batches[2].tracked.empty and count(batches, "opened") == 0


def test_escalation_is_immediate_and_stepping_down_waits_for_the_hold() -> None:
    # Moderate opens after 60 s at 2.4; 3.6 reaches Severe (enter 3.5) at once; 3.0 is
    # below Severe's clear 3.2 but above Moderate's 1.8: back to Moderate after 30 s
    values = [2.4] * 7 + [3.6] + [3.0] * 4
    batches = run(values)
    assert batches[6].opened.iloc[0]["severity"] == "Moderate"
    up = batches[7].changed.iloc[0]
    assert (up["severity"], up["change"], up["value"], up["threshold"]) == (
        "Severe",
        "severity_up",
        3.6,
        3.5,
    )
    assert [len(b.changed) for b in batches[8:11]] == [0, 0, 0]
    down = batches[11].changed.iloc[0]  # 30 s after batch 8
    assert (down["severity"], down["change"], down["value"]) == ("Moderate", "severity_down", 3.6)


def test_peaks_are_reported_only_in_steps() -> None:
    # Extreme opens at 5.0; peak_step 0.1 p/m²: 5.05 is no news, 5.12 and 5.3 are
    batches = run([5.0, 5.05, 5.12, 5.15, 5.3])
    assert [b.changed["change"].tolist() for b in batches] == [[], [], ["peak"], [], ["peak"]]
    assert batches[-1].tracked.iloc[0]["value"] == 5.3


def test_a_sine_wave_crossing_the_threshold_100_times_opens_exactly_one_alert() -> None:
    # 12 samples per period at (k + 1/2) × 30°: |sin| >= 0.259, so 2.0 ± 0.15 sin is never
    # within 0.038 of 2.0; 50 periods and one sample cross 2.0 100 times (50 down, 50 up)
    # and never go below 1.85
    k = np.arange(601)
    values = 2.0 + 0.15 * np.sin((k + 0.5) * np.pi / 6)
    assert crossings(values, 2.0) == 100 and values.min() > 1.8
    batches = run(values.tolist())
    assert count(batches, "opened") == 1
    assert count(batches, "changed", "cleared") == 0
    assert count(batches, "changed", "reactivated") == 0
    # without hysteresis (clear just under enter, no hold) the same wave flaps: over its
    # first 10 periods (20 crossings) it clears on each of the 10 down-crossings and comes
    # back on each of the 10 up-crossings
    rules = alert_rules()
    flappy = rules.assign(clear=rules["enter"] - 0.01, hold_s=0.0)
    short = values[:121]
    assert crossings(short, 2.0) == 20
    raw = run(short.tolist(), rules=flappy)
    assert count(raw, "opened") == 1  # still one alert: de-duplicated by key
    assert count(raw, "changed", "cleared") == 10
    assert count(raw, "changed", "reactivated") == 10


def test_noise_around_the_threshold_opens_one_alert() -> None:
    rng = np.random.default_rng(2026)
    values = 2.0 + rng.uniform(-0.15, 0.15, 1000)
    flips = np.cumsum(np.sign(values[1:] - 2.0) != np.sign(values[:-1] - 2.0))
    values = values[: int(np.flatnonzero(flips == 100)[0]) + 2]  # up to the 100th crossing
    assert crossings(values, 2.0) == 100
    batches = run(values.tolist())
    assert count(batches, "opened") == 1 and count(batches, "changed", "cleared") == 0


def test_a_resolved_alert_can_open_again_under_the_same_key() -> None:
    first = evaluate_alerts(state(density=5.5), pd.DataFrame(), now=T0)
    again = evaluate_alerts(state(density=5.6), first.tracked, now=T0 + pd.Timedelta("10s"))
    assert again.opened.empty and len(again.tracked) == 1  # one unresolved alert per key
    # the operator resolves it: the store no longer passes it in `active`
    reopened = evaluate_alerts(state(density=5.6), pd.DataFrame(), now=T0 + pd.Timedelta("20s"))
    assert reopened.opened["alert_key"].tolist() == ["los|way/1"]


def test_extra_columns_of_the_store_are_carried_through() -> None:
    first = evaluate_alerts(state(density=5.5), pd.DataFrame(), now=T0)
    active = first.tracked.assign(id=[17], state=["acknowledged"])
    later = evaluate_alerts(state(density=5.8), active, now=T0 + pd.Timedelta("10s"))
    row = later.changed.iloc[0]
    assert (row["id"], row["state"], row["change"], row["value"]) == (
        17,
        "acknowledged",
        "peak",
        5.8,
    )


def test_rapid_rise_exit_flow_and_moving_bands() -> None:
    # rapid_rise: enter 0.1 p/m² per min, hold 60 s
    rise = run([0.12] * 7, column="rise_per_min")
    assert [len(b.opened) for b in rise] == [0] * 6 + [1]
    assert "rising 0.12 p/m² per minute" in rise[-1].opened.iloc[0]["message"]
    # exit_flow: flow / limit >= 1.0, Severe, no hold; 100 p/min/m over the 82 limit
    flow = evaluate_alerts(
        state(exit_flow_ratio=100 / 82, exit_flow_p_min_m=100.0), pd.DataFrame(), now=T0
    )
    row = flow.opened.iloc[0]
    assert (row["alert_key"], row["severity"]) == ("exit_flow|way/1", "Severe")
    assert "exit flow 100 p/min/m, 122% of the Green Guide limit" in row["message"]
    # the same 2.2 p/m² is Moderate only on a standing square, Severe on a moving street
    # (moving Severe: enter 2.0, hold 30 s)
    street = run([2.2] * 4, area_type="moving")
    assert street[3].opened.iloc[0]["severity"] == "Severe"


def test_geofence_needs_a_fast_vehicle_entry() -> None:
    # geofence Moderate: >= 48 km/h and >= 1.0 p/m² (hold 60 s); Severe: >= 64 km/h and
    # >= 2.0 p/m² (hold 30 s)
    slow = run([1.5] * 7, worst_speed_kmh=30.0)  # 1.5 p/m² is also under standing amber
    assert count(slow, "opened") == 0
    fast = run([1.5] * 7, worst_speed_kmh=50.0)
    opened = pd.concat([b.opened for b in fast])
    assert opened["alert_key"].tolist() == ["geofence|way/1"]
    assert opened.iloc[0]["severity"] == "Moderate"
    assert "where a vehicle can enter at 50 km/h" in opened.iloc[0]["message"]
    faster = run([2.1] * 4, worst_speed_kmh=70.0)
    geo = pd.concat([b.opened for b in faster]).set_index("kind")
    assert geo.loc["geofence", "severity"] == "Severe"  # 30 s after the first batch
    # without worst_speed_kmh in the state there is no geofence alert
    none = evaluate_alerts(state(density=3.0), pd.DataFrame(), now=T0)
    assert "geofence" not in set(none.tracked["kind"])


def test_a_silent_sensor_is_a_sensor_alert() -> None:
    # stale Minor: enter 300 s, clear 120 s, hold 0
    silent = state(sensor_silent_s={"cam-1": 400.0, "cam-2": 20.0})
    first = evaluate_alerts(silent, pd.DataFrame(), now=T0)
    row = first.opened.iloc[0]
    assert len(first.opened) == 1
    assert (row["alert_key"], row["space_uid"], row["sensor_id"]) == ("stale|cam-1", SPACE, "cam-1")
    assert row["severity"] == "Minor" and "sensor cam-1 silent for 400 s" in row["message"]
    back = state(sensor_silent_s={"cam-1": 15.0, "cam-2": 25.0})
    cleared = evaluate_alerts(back, first.tracked, now=T0 + pd.Timedelta("60s"))
    assert cleared.changed["change"].tolist() == ["cleared"]
    never = evaluate_alerts(state(sensor_silent_s={"cam-9": math.inf}), pd.DataFrame(), now=T0)
    assert "has sent no reading in the window" in never.opened.iloc[0]["message"]


def test_an_unknown_value_changes_nothing() -> None:
    first = evaluate_alerts(state(density=5.5), pd.DataFrame(), now=T0)
    later = evaluate_alerts(state(density=float("nan")), first.tracked, now=T0 + pd.Timedelta("1h"))
    assert later.opened.empty and later.changed.empty
    assert later.tracked["condition"].tolist() == ["active"]


def test_from_readings_to_an_alert() -> None:
    """2,000 people counted on a 400 m² usable square: 5 p/m², the critical density."""
    sensors = pd.DataFrame(
        {"space_uid": [SPACE], "kind": ["area_counter"], "area_m2": [float("nan")]},
        index=pd.Index(["cam"], name="sensor_id"),
    ).assign(exit_width_m=float("nan"))
    spaces = pd.DataFrame(
        {
            "usable_area_m2": [400.0],
            "design_density": [4.0],
            "area_type": ["standing"],
            "risk_100": [50.0],
            "name": [NAME],
        },
        index=[SPACE],
    )
    readings = pd.DataFrame({"sensor_id": ["cam"], "observed_at": [T0], "present": [2000.0]})
    live = space_state(readings, sensors, spaces, now=T0)
    changes = evaluate_alerts(live, pd.DataFrame(), now=T0)
    assert changes.opened["alert_key"].tolist() == ["los|way/1"]
    assert changes.opened.iloc[0]["severity"] == "Extreme"  # 5.0 >= 5.0
    # the camera just read: no stale alert, but it is watched (tracked nothing else)
    assert changes.tracked["kind"].tolist() == ["los"]


def test_the_rules_agree_with_the_other_reference_tables() -> None:
    rules = alert_rules()
    assert rules["confidence"].isin(["S", "V", "I"]).all() and rules["source"].notna().all()
    bands = table("crowd_alert_bands").set_index(["area_type", "band"])["lower_p_m2"]
    los = rules[rules["kind"] == "los"].set_index(["area_type", "severity"])["enter"]
    for area in ("standing", "moving"):
        # amber -> Moderate, red -> Severe, critical -> Extreme (brief §5.3)
        assert los[(area, "Moderate")] == bands[(area, "amber")]
        assert los[(area, "Severe")] == bands[(area, "red")]
        assert los[(area, "Extreme")] == bands[(area, "critical")]
    rise = rules.loc[rules["kind"] == "rapid_rise", "enter"].iloc[0]
    assert rise == pytest.approx(
        parameter("crowd_rate_alert_p_m2") / parameter("crowd_rate_window_min")
    )
    exposure = table("risk_map").set_index("name")["value"]
    speeds = sorted(rules.loc[rules["kind"] == "geofence", "speed_min_kmh"])
    assert speeds == [exposure["exposure_high_kmh"], exposure["exposure_critical_kmh"]]
    assert (rules["clear"] < rules["enter"]).all()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"clear": 9.0}, "clear below enter"),
        ({"severity": "Catastrophic"}, "severity"),
        ({"kind": "smoke"}, "kind"),
        ({"urgency": "Soon"}, "urgency"),
        ({"hold_s": -1.0}, "hold_s"),
    ],
)
def test_bad_rules_are_config_errors(edit: dict[str, object], match: str) -> None:
    rules = alert_rules()
    for col, value in edit.items():
        rules.loc[0, col] = value
    with pytest.raises(ConfigError, match=match):
        evaluate_alerts(state(density=1.0), pd.DataFrame(), now=T0, rules=rules)


def test_bad_active_alerts_and_times_are_validation_errors() -> None:
    first = evaluate_alerts(state(density=5.5), pd.DataFrame(), now=T0)
    twice = pd.concat([first.tracked, first.tracked])
    with pytest.raises(ValidationError, match="more than one unresolved alert for los"):
        evaluate_alerts(state(density=5.5), twice, now=T0)
    with pytest.raises(ValidationError, match="unknown condition 'open'"):
        evaluate_alerts(state(density=5.5), first.tracked.assign(condition="open"), now=T0)
    with pytest.raises(ValidationError, match="time zone"):
        evaluate_alerts(state(density=5.5), pd.DataFrame(), now=pd.Timestamp("2026-05-01"))
