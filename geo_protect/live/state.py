"""Live state of each space from a window of sensor readings (issue 11, brief §3.4, §5.2).

Pure and vectorised: readings, sensors and spaces in, one row per sensor
(:func:`sensor_state`) or per space (:func:`space_state`) out. The figures come from the
functions of :mod:`.density` and :mod:`.risk`; every limit from ``data/reference``.

Sensor kinds
    ``area_counter`` (people ``present`` in a zone: density = present / zone area),
    ``density`` (a density estimate in p/m², taken as it is) and ``line_counter``
    (``count_in`` + ``count_out`` people through an opening per ``interval_s``: exit flow
    per metre of ``exit_width_m``). A zone's area is the sensor's ``area_m2``, or the
    space's ``usable_area_m2`` when that is NaN. Line counters give no density: the people
    inside cannot be told from counts through one opening without a known start.

Several sensors on one space
    The space's ``density`` is the **highest** of its density sensors' latest densities:
    a crush in one corner of a square is a crush, and an average would hide it. The
    maximum is right whether the zones overlap (two estimates of one area) or not; the
    area-weighted mean ``density_mean`` (Σ people / Σ zone area, right only for disjoint
    zones) is given as well. ``rise_per_min`` and the exit flow are likewise the worst of
    the space's sensors. Sensors that read within ``stale_after_s`` are used; when none of
    a space's density (or line) sensors has, their last readings are used and the space
    says which sensors are silent (``stale_sensors``).

Faults
    A negative count, a negative density or a non-positive interval gives NaN (a sensor
    fault), never a wrong figure; readings after ``now`` are ignored (state as of ``now``);
    of two readings of one sensor at one time, the later row wins (idempotent re-sends).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from geo_protect.analysis.crowd import level_of_service
from geo_protect.errors import ConfigError, ValidationError
from geo_protect.live.density import alert_band, exit_flow_alert, rate_alert
from geo_protect.live.risk import live_risk
from geo_protect.reference import parameter, table

__all__ = ["SENSOR_KINDS", "default_stale_after_s", "sensor_state", "space_state"]

#: The kinds of sensor the live state understands.
SENSOR_KINDS = ("line_counter", "area_counter", "density")
#: Kinds whose readings give a density.
_DENSITY_KINDS = ("area_counter", "density")
#: Unit conversion, not a threshold.
_S_PER_MIN = 60.0
#: Columns of :func:`space_state`, before the passed-through ones and the sensor lists.
_COLUMNS = (
    "sensors",
    "area_type",
    "design_density",
    "density",
    "density_mean",
    "los",
    "alert",
    "rise_per_min",
    "rapid_rise",
    "exit_flow_p_min_m",
    "exit_flow_ratio",
    "exit_flow_alert",
    "risk_100",
    "live_risk",
    "last_reading_at",
    "stale",
)


def default_stale_after_s() -> float:
    """Seconds of silence after which a sensor is stale: the ``stale`` rule's ``enter``.

    One figure for the live state and the stale alert (``data/reference/alert_rules.csv``).

    Returns
    -------
    float
        The lowest ``enter`` of the ``stale`` rows.

    Examples
    --------
    >>> default_stale_after_s()
    300.0
    """
    rules = table("alert_rules")
    enter = rules.loc[rules["kind"] == "stale", "enter"]
    if enter.empty:
        raise ConfigError("alert_rules.csv: no `stale` rule, so no default stale_after_s")
    return float(enter.min())


def _utc(moment: pd.Timestamp, what: str) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise ValidationError(f"{what}: must carry a time zone (UTC), got {stamp}")
    return stamp.tz_convert("UTC")


def _floats(frame: pd.DataFrame, column: str, what: str = "readings") -> np.ndarray:
    """A column as float64 with NaN for missing values (all NaN when there is no column)."""
    if column not in frame:
        return np.full(len(frame), np.nan)
    try:
        return np.asarray(pd.to_numeric(frame[column]).to_numpy(dtype=float, na_value=np.nan))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what}: column {column!r} is not numeric: {exc}") from exc


def _check(sensors: pd.DataFrame, spaces: pd.DataFrame) -> pd.Series:
    """Validate the sensor register; return each sensor's zone area (m², NaN unknown)."""
    missing = {"space_uid", "kind"} - set(sensors.columns)
    if missing:
        raise ValidationError(f"sensors: missing column(s) {', '.join(sorted(missing))}")
    if sensors.index.has_duplicates:
        raise ValidationError("sensors: sensor ids are not unique")
    bad = sorted(set(sensors["kind"].astype(str)) - set(SENSOR_KINDS))
    if bad:
        raise ValidationError(
            f"sensors: unknown kind(s) {', '.join(bad)} (known: {', '.join(SENSOR_KINDS)})"
        )
    orphans = sorted(set(sensors["space_uid"].astype(str)) - set(spaces.index.astype(str)))
    if orphans:
        raise ValidationError(f"sensors: space(s) not in spaces: {', '.join(orphans[:5])}")
    usable = sensors["space_uid"].map(spaces["usable_area_m2"].astype(float))
    zone = pd.Series(_floats(sensors, "area_m2"), index=sensors.index).fillna(usable)
    counted = sensors["kind"].isin(_DENSITY_KINDS) & (zone <= 0)
    if counted.any():
        raise ValidationError(
            f"sensors: zone area is not positive for {', '.join(map(str, zone.index[counted]))}"
        )
    return zone.astype(float)


def _readings(readings: pd.DataFrame, sensors: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """Readings up to ``now``, one per sensor and time, sorted by sensor and time."""
    missing = {"sensor_id", "observed_at"} - set(readings.columns)
    if missing:
        raise ValidationError(f"readings: missing column(s) {', '.join(sorted(missing))}")
    r = readings.copy()
    if not isinstance(r["observed_at"].dtype, pd.DatetimeTZDtype):
        if len(r):
            raise ValidationError("readings: observed_at must be time-zone-aware timestamps")
        r["observed_at"] = pd.to_datetime(r["observed_at"], utc=True)
    r["observed_at"] = r["observed_at"].dt.tz_convert("UTC")
    unknown = sorted(set(r["sensor_id"].astype(str)) - set(sensors.index.astype(str)))
    if unknown:
        raise ValidationError(f"readings: unknown sensor(s) {', '.join(unknown[:5])}")
    r = r[r["observed_at"] <= now]
    r = r.sort_values(["sensor_id", "observed_at"], kind="stable")
    return r.drop_duplicates(["sensor_id", "observed_at"], keep="last").reset_index(drop=True)


def _values(r: pd.DataFrame, sensors: pd.DataFrame, zone: pd.Series) -> pd.DataFrame:
    """Per reading: its density (p/m²) and, for line counters, people per minute."""
    kind = r["sensor_id"].map(sensors["kind"].astype(str)).to_numpy(dtype=object)
    area = r["sensor_id"].map(zone).to_numpy(dtype=float)
    n = len(r)
    present, estimate = _floats(r, "present"), _floats(r, "density")
    density = np.full(n, np.nan)
    counter = (kind == "area_counter") & (present >= 0)
    density[counter] = present[counter] / area[counter]
    direct = (kind == "density") & (estimate >= 0)
    density[direct] = estimate[direct]
    c_in, c_out, interval = (
        _floats(r, "count_in"),
        _floats(r, "count_out"),
        _floats(r, "interval_s"),
    )
    line = (kind == "line_counter") & (c_in >= 0) & (c_out >= 0) & (interval > 0)
    per_min = np.full(n, np.nan)
    per_min[line] = (c_in[line] + c_out[line]) / interval[line] * _S_PER_MIN
    return pd.DataFrame(
        {"sensor_id": r["sensor_id"], "observed_at": r["observed_at"], "density": density},
    ).assign(persons_per_min=per_min)


def _rise(values: pd.DataFrame, last_at: pd.Series, window_min: float) -> pd.Series:
    """Least-squares slope of density over time (p/m² per min), per sensor.

    Over each sensor's readings of the last ``window_min`` minutes up to its latest one;
    NaN with fewer than two readings at distinct times.
    """
    if values.empty:
        return pd.Series(dtype=float)
    t = (values["observed_at"] - values["sensor_id"].map(last_at)).dt.total_seconds()
    t = t / _S_PER_MIN
    keep = (t >= -window_min) & values["density"].notna()
    x, t = values["density"][keep], t[keep]
    sums = (
        pd.DataFrame(
            {
                "n": 1.0,
                "t": t,
                "x": x,
                "tt": t * t,
                "tx": t * x,
                "sensor_id": values["sensor_id"][keep],
            }
        )
        .groupby("sensor_id")[["n", "t", "x", "tt", "tx"]]
        .sum()
    )
    den = sums["n"] * sums["tt"] - sums["t"] ** 2
    slope = (sums["n"] * sums["tx"] - sums["t"] * sums["x"]) / den.where(den > 0)
    return slope.astype(float)


def sensor_state(
    readings: pd.DataFrame,
    sensors: pd.DataFrame,
    spaces: pd.DataFrame,
    *,
    now: pd.Timestamp,
    stale_after_s: float | None = None,
) -> pd.DataFrame:
    """Latest figures of each sensor: last reading, silence, density, rise and exit flow.

    Parameters
    ----------
    readings : DataFrame
        ``sensor_id``, ``observed_at`` (time-zone aware) and, as the kind needs,
        ``present``, ``density``, ``count_in``, ``count_out``, ``interval_s``.
    sensors : DataFrame
        Indexed by sensor id: ``space_uid``, ``kind`` (:data:`SENSOR_KINDS`), ``area_m2``
        (NaN: the space's usable area), ``exit_width_m`` (line counters), optionally
        ``exit_type`` (``egress_flow`` table; ``level`` by default).
    spaces : DataFrame
        Indexed by space uid, with ``usable_area_m2``.
    now : Timestamp
        Time of the state (time-zone aware); later readings are ignored.
    stale_after_s : float, optional
        Silence that makes a sensor stale; :func:`default_stale_after_s` by default.

    Returns
    -------
    DataFrame
        Indexed like ``sensors``: ``space_uid, kind, zone_area_m2, last_reading_at,
        silent_s`` (inf when it has no reading in the window), ``stale, density,
        rise_per_min, persons_per_min, exit_flow_p_min_m, exit_flow_limit_p_min_m,
        exit_flow_ratio, exit_flow_alert``.

    Raises
    ------
    ValidationError
        For a reading of an unknown sensor, a sensor on an unknown space, an unknown
        kind, a non-positive zone area, a naive timestamp or a non-numeric column.

    Examples
    --------
    >>> now = pd.Timestamp("2026-05-01 18:00", tz="UTC")
    >>> sensors = pd.DataFrame(
    ...     {"space_uid": ["sq", "sq"], "kind": ["area_counter", "line_counter"],
    ...      "area_m2": [np.nan, np.nan], "exit_width_m": [np.nan, 4.0]},
    ...     index=pd.Index(["cam", "gate"], name="sensor_id"))
    >>> readings = pd.DataFrame(
    ...     {"sensor_id": ["cam", "gate"], "observed_at": [now, now],
    ...      "present": [600.0, np.nan], "count_in": [np.nan, 200.0],
    ...      "count_out": [np.nan, 40.0], "interval_s": [np.nan, 60.0]})
    >>> spaces = pd.DataFrame({"usable_area_m2": [400.0]}, index=["sq"])
    >>> out = sensor_state(readings, sensors, spaces, now=now)
    >>> out["density"].tolist()[0], out["exit_flow_p_min_m"].tolist()[1]
    (1.5, 60.0)
    """
    now = _utc(now, "now")
    stale_after = default_stale_after_s() if stale_after_s is None else float(stale_after_s)
    zone = _check(sensors, spaces)
    values = _values(_readings(readings, sensors, now), sensors, zone)
    last = values.groupby("sensor_id").tail(1).set_index("sensor_id")
    out = pd.DataFrame(
        {"space_uid": sensors["space_uid"].astype(str), "kind": sensors["kind"].astype(str)},
        index=sensors.index,
    )
    out["zone_area_m2"] = zone
    out["last_reading_at"] = pd.to_datetime(last["observed_at"].reindex(sensors.index), utc=True)
    out["silent_s"] = (now - out["last_reading_at"]).dt.total_seconds().fillna(np.inf)
    out["stale"] = out["silent_s"] >= stale_after
    out["density"] = last["density"].reindex(sensors.index).astype(float)
    window = parameter("crowd_rate_window_min")
    out["rise_per_min"] = _rise(values, last["observed_at"], window).reindex(sensors.index)
    out["persons_per_min"] = last["persons_per_min"].reindex(sensors.index).astype(float)
    return _exit_flow(out, sensors)


def _exit_flow(out: pd.DataFrame, sensors: pd.DataFrame) -> pd.DataFrame:
    """Line counters' flow per metre against the Green Guide limit of their exit type."""
    kinds: Any = (
        sensors["exit_type"].astype(object).where(sensors["exit_type"].notna(), "level")
        if "exit_type" in sensors
        else "level"
    )
    width = pd.Series(_floats(sensors, "exit_width_m"), index=sensors.index)
    flow = exit_flow_alert(out["persons_per_min"], width, exit_type=kinds)
    line = out["kind"] == "line_counter"
    out["exit_flow_p_min_m"] = flow["flow_p_min_m"].where(line)
    out["exit_flow_limit_p_min_m"] = flow["limit_p_min_m"].astype(float).where(line)
    out["exit_flow_ratio"] = out["exit_flow_p_min_m"] / out["exit_flow_limit_p_min_m"]
    out["exit_flow_alert"] = flow["flow_alert"].astype(bool) & line
    return out


def _used(per: pd.DataFrame, which: pd.Series) -> pd.Series:
    """Sensors of ``which`` whose figures count: the fresh ones, or all if none is fresh."""
    fresh = which & ~per["stale"]
    any_fresh = fresh.groupby(per["space_uid"]).transform("any")
    return which & (fresh | ~any_fresh)


def _aggregate(per: pd.DataFrame) -> pd.DataFrame:
    """Per space: the worst (and the area-weighted mean) of its sensors' figures."""
    space = per["space_uid"]
    dens = _used(per, per["kind"].isin(_DENSITY_KINDS))
    line = _used(per, per["kind"] == "line_counter")
    d = per["density"].where(dens)
    w = per["zone_area_m2"].where(d.notna())
    weight = w.groupby(space).sum()
    silent = per["stale"]
    out = pd.DataFrame(
        {
            "sensors": space.groupby(space).size(),
            "density": d.groupby(space).max(),
            "density_mean": (d * w).groupby(space).sum() / weight.where(weight > 0),
            "rise_per_min": per["rise_per_min"].where(dens).groupby(space).max(),
            "exit_flow_p_min_m": per["exit_flow_p_min_m"].where(line).groupby(space).max(),
            "exit_flow_ratio": per["exit_flow_ratio"].where(line).groupby(space).max(),
            "exit_flow_alert": (per["exit_flow_alert"] & line).groupby(space).any(),
            "last_reading_at": per["last_reading_at"].groupby(space).max(),
            "stale": silent.groupby(space).all(),
        }
    )
    groups = per.groupby(space)
    out["stale_sensors"] = pd.Series(
        {s: tuple(sorted(map(str, g.index[g["stale"]]))) for s, g in groups}, dtype=object
    )
    out["sensor_silent_s"] = pd.Series(
        {s: {str(k): float(v) for k, v in g["silent_s"].items()} for s, g in groups},
        dtype=object,
    )
    return out


def _space_inputs(spaces: pd.DataFrame, uids: pd.Index) -> tuple[pd.DataFrame, Any, Any]:
    """The spaces with a sensor, checked: the frame, their area types and design densities."""
    sp = spaces.copy()
    sp.index = sp.index.astype(str)
    sp = sp.reindex(uids)
    area_type = sp["area_type"].astype(object)
    odd = ~area_type.isin(["standing", "moving"])
    if odd.any():
        raise ValidationError(
            f"spaces: area_type must be standing or moving for {', '.join(uids[odd])}"
        )
    design = pd.Series(_floats(sp, "design_density", "spaces"), index=uids)
    if (design <= 0).any():
        raise ValidationError(
            f"spaces: design_density is not positive for {', '.join(uids[design <= 0])}"
        )
    return sp, area_type.astype(str), design


def space_state(
    readings: pd.DataFrame,
    sensors: pd.DataFrame,
    spaces: pd.DataFrame,
    *,
    now: pd.Timestamp,
    stale_after_s: float | None = None,
) -> pd.DataFrame:
    """Live state of each space with a sensor: density, LOS, alert band, rise, flow, risk.

    Parameters
    ----------
    readings : DataFrame
        A recent window of readings (see :func:`sensor_state`).
    sensors : DataFrame
        The sensor register, indexed by sensor id (see :func:`sensor_state`).
    spaces : DataFrame
        Indexed by space uid: ``usable_area_m2``, ``design_density`` (p/m²), ``area_type``
        (``standing`` or ``moving``), ``risk_100`` (NaN: not assessed); ``name`` and
        ``worst_speed_kmh`` are passed through when present, other columns ignored.
    now : Timestamp
        Time of the state (time-zone aware).
    stale_after_s : float, optional
        Silence that makes a sensor stale; :func:`default_stale_after_s` by default.

    Returns
    -------
    DataFrame
        Indexed by ``space_uid``, one row per space with at least one sensor:
        ``sensors`` (how many), ``area_type, design_density, density`` (worst zone,
        p/m²), ``density_mean, los`` (:func:`~geo_protect.analysis.crowd.level_of_service`),
        ``alert`` (:func:`~geo_protect.live.density.alert_band` with the design density),
        ``rise_per_min`` (p/m² per min: least-squares slope over the last
        ``crowd_rate_window_min`` minutes of readings), ``rapid_rise``
        (:func:`~geo_protect.live.density.rate_alert`), ``exit_flow_p_min_m,
        exit_flow_ratio`` (flow / Green Guide limit), ``exit_flow_alert, risk_100,
        live_risk`` (:func:`~geo_protect.live.risk.live_risk`), ``last_reading_at, stale``
        (no sensor of the space read within ``stale_after_s``), ``stale_sensors`` (tuple
        of the silent sensors), ``sensor_silent_s`` (dict sensor id → seconds silent).

    Raises
    ------
    ValidationError
        For bad readings or sensors (:func:`sensor_state`), or a space with an unknown
        area type or a non-positive design density.

    Examples
    --------
    >>> now = pd.Timestamp("2026-05-01 18:00", tz="UTC")
    >>> sensors = pd.DataFrame(
    ...     {"space_uid": ["sq"], "kind": ["area_counter"], "area_m2": [np.nan],
    ...      "exit_width_m": [np.nan]}, index=pd.Index(["cam"], name="sensor_id"))
    >>> readings = pd.DataFrame({"sensor_id": ["cam"], "observed_at": [now],
    ...                          "present": [600.0]})
    >>> spaces = pd.DataFrame({"usable_area_m2": [400.0], "design_density": [2.0],
    ...                        "area_type": ["standing"], "risk_100": [40.0]}, index=["sq"])
    >>> row = space_state(readings, sensors, spaces, now=now).loc["sq"]
    >>> float(row["density"]), row["los"], row["alert"], float(row["live_risk"])
    (1.5, 'C', 'green', 30.0)
    """
    per = sensor_state(readings, sensors, spaces, now=now, stale_after_s=stale_after_s)
    out = _aggregate(per).sort_index()
    out.index = out.index.rename("space_uid")
    sp, area_type, design = _space_inputs(spaces, out.index)
    out["area_type"] = area_type
    out["design_density"] = design
    out["los"] = level_of_service(out["density"], out["area_type"])
    out["alert"] = alert_band(out["density"], out["area_type"], design=design)
    zero = pd.Series(0.0, index=out.index)
    # rate_alert compares (current - previous) / minutes × window: one minute of rise
    out["rapid_rise"] = rate_alert(zero, out["rise_per_min"], 1.0)
    out["risk_100"] = pd.Series(_floats(sp, "risk_100", "spaces"), index=out.index)
    out["live_risk"] = live_risk(out["risk_100"], out["density"], design)
    extras = [c for c in ("name", "worst_speed_kmh") if c in sp]
    for extra in extras:
        out[extra] = sp[extra]
    return out[[*_COLUMNS, *extras, "stale_sensors", "sensor_silent_s"]]
