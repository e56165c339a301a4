"""Control-room alerts on the live state: hysteresis, hold times and de-duplication (issue 11).

:func:`evaluate_alerts` is pure: the live state of a batch (:func:`.state.space_state`) and
the alerts not yet resolved go in, what changed comes out; the service stores it and calls
again with the next batch. The rules are ``data/reference/alert_rules.csv``.

Kinds
    ``los`` (density against the crowd alert bands of its area type), ``rapid_rise``
    (``rise_per_min``), ``exit_flow`` (``exit_flow_ratio``: flow per metre / the Green Guide
    limit), ``geofence`` (density at a space whose ``worst_speed_kmh``, added by the caller,
    reaches a level's ``speed_min_kmh``) and ``stale`` (seconds a sensor is silent). A rule's
    ``watches`` names the state column; a column of per-sensor dicts ``sensor_<watches>``
    (``sensor_silent_s``) makes the kind a sensor alert.

One alert per key
    :func:`alert_key`: ``"{kind}|{space_uid}"``, or ``"{kind}|{sensor_id}"`` for a sensor
    alert (``stale``, whose ``space_uid`` still names the space). While a key's alert is
    unresolved a new trigger updates it, never opens a second. An operator resolves alerts
    in the store, which then no longer passes them in ``active``: the key can open again.

Levels and hysteresis
    Each rule row is a level of its kind (CAP severity ``Minor`` < ``Moderate`` < ``Severe``
    < ``Extreme``), reached at a value ≥ ``enter`` and held while it stays ≥ ``clear``. A new
    alert is ``pending`` until the value has stayed at or above the lowest ``clear`` for the
    ``hold_s`` of the level it holds (0: at once); it then opens. An open alert escalates at
    once; after ``hold_s`` below its level's ``clear`` it steps down to the level it holds,
    or is ``cleared`` (and comes back like a new one). NaN (unknown) changes nothing. So a
    value wobbling around ``enter`` but above ``clear`` opens one alert and keeps it.

Conditions
    ``pending`` (shown to no one; kept only to time the hold), ``active`` and ``cleared``;
    ``pending_since`` times the hold of the change under way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from geo_protect.errors import ConfigError, ValidationError
from geo_protect.live.state import _floats, _utc
from geo_protect.reference import reference_dir, table

__all__ = [
    "ALERT_COLUMNS",
    "CAP_SEVERITIES",
    "KINDS",
    "AlertChanges",
    "alert_key",
    "alert_rules",
    "evaluate_alerts",
]

#: CAP 1.2 severities of a level, lowest first (``Unknown`` is not a level).
CAP_SEVERITIES = ("Minor", "Moderate", "Severe", "Extreme")
#: The alert kinds the rules may use.
KINDS = ("los", "rapid_rise", "exit_flow", "geofence", "stale")
#: Conditions of a tracked alert.
CONDITIONS = ("pending", "active", "cleared")
#: Columns of every alert row :func:`evaluate_alerts` returns.
ALERT_COLUMNS = (
    *("alert_key", "kind", "space_uid", "sensor_id", "severity", "condition", "value"),
    *("current", "threshold", "unit", "message", "change", "pending_since", "evaluated_at"),
)
#: Columns ``active`` must have.
_ACTIVE = ("alert_key", "kind", "space_uid", "sensor_id", "severity", "condition", "value")
_RULE_COLUMNS = ("kind", "severity", "area_type", "watches", "unit", "enter", "clear", "hold_s")
#: The CAP 1.2 enumerations of the rules' CAP columns.
_CAP_ENUMS = {
    "category": "Geo Met Safety Security Rescue Fire Health Env Transport Infra CBRNE Other",
    "urgency": "Immediate Expected Future Past Unknown",
    "certainty": "Observed Likely Possible Unlikely Unknown",
    "response_type": "Shelter Evacuate Prepare Execute Avoid Monitor Assess AllClear None",
}


@dataclass(frozen=True)
class AlertChanges:
    """What one batch changed: frames of :data:`ALERT_COLUMNS` (+ ``active``'s other columns).

    Attributes
    ----------
    opened : DataFrame
        Alerts that open now (condition ``active``): insert them.
    changed : DataFrame
        Unresolved alerts whose severity went up or down, whose value reached a new peak, or
        whose condition went ``active`` → ``cleared`` or back (``change`` says which).
    tracked : DataFrame
        What to pass as ``active`` next batch: the unresolved alerts with their hold timers
        and the ``pending`` ones.
    """

    opened: pd.DataFrame
    changed: pd.DataFrame
    tracked: pd.DataFrame


@dataclass(frozen=True)
class _Level:
    severity: str
    rank: int
    unit: str
    enter: float
    clear: float
    hold_s: float
    peak_step: float
    speed_min: float

    def gated(self, speed: float) -> bool:
        """Whether the level applies at a space of this worst approach speed."""
        return math.isnan(self.speed_min) or speed >= self.speed_min

    def held(self, since: Any, now: pd.Timestamp) -> bool:
        """Whether a change pending since ``since`` has lasted this level's hold."""
        return bool(pd.notna(since)) and (now - since).total_seconds() >= self.hold_s


_Levels = dict[tuple[str, str], list[_Level]]


def alert_key(kind: str, space_uid: str | None = None, sensor_id: str | None = None) -> str:
    """The de-duplication key of an alert: one unresolved alert per key.

    Parameters
    ----------
    kind : str
        The alert kind.
    space_uid, sensor_id : str, optional
        The space; for a sensor alert the sensor, which then keys the alert.

    Returns
    -------
    str
        ``"{kind}|{sensor_id}"`` for a sensor alert, else ``"{kind}|{space_uid}"``.

    Examples
    --------
    >>> alert_key("los", "way/1"), alert_key("stale", "way/1", "cam-3")
    ('los|way/1', 'stale|cam-3')
    """
    target = sensor_id if sensor_id else space_uid
    if not target:
        raise ValidationError(f"alert key: a {kind} alert needs a space or a sensor")
    return f"{kind}|{target}"


def alert_rules(rules: pd.DataFrame | None = None) -> pd.DataFrame:
    """The alert rules, checked: the ``alert_rules`` reference table by default.

    Parameters
    ----------
    rules : DataFrame, optional
        Rules laid out like ``data/reference/alert_rules.csv`` (e.g. a what-if copy).

    Returns
    -------
    DataFrame
        The rules; ``enter, clear, hold_s, peak_step, speed_min_kmh`` as floats (NaN: no gate).

    Raises
    ------
    ConfigError
        For a missing column, an unknown kind, severity, area type or CAP value, ``clear``
        not below ``enter``, a negative hold or step, or a repeated level.

    Examples
    --------
    >>> r = alert_rules().set_index(["kind", "area_type", "severity"])
    >>> float(r.loc[("los", "standing", "Severe"), "enter"])
    3.5
    """
    r = table("alert_rules") if rules is None else rules.copy()
    missing = sorted(set(_RULE_COLUMNS) - set(r.columns))
    if missing:
        raise ConfigError(f"alert rules: missing column(s) {', '.join(missing)}")
    for col in ("enter", "clear", "hold_s", "peak_step", "speed_min_kmh"):
        r[col] = pd.to_numeric(r[col]).to_numpy(dtype=float, na_value=np.nan) if col in r else 0.0
    r["speed_min_kmh"] = r["speed_min_kmh"].where(r["speed_min_kmh"] > 0)
    checks = {
        "kind": r["kind"].isin(KINDS),
        "severity": r["severity"].isin(CAP_SEVERITIES),
        "area_type": r["area_type"].isin(["standing", "moving", "*"]),
        "clear below enter": r["clear"] < r["enter"],
        "hold_s >= 0": r["hold_s"] >= 0,
        "peak_step >= 0": r["peak_step"] >= 0,
        "unique level": ~r.duplicated(["kind", "area_type", "severity"]),
        "one watched value per kind": r.groupby("kind")["watches"].transform("nunique") == 1,
    }
    checks |= {c: r[c].isin(allowed.split()) for c, allowed in _CAP_ENUMS.items() if c in r}
    for what, ok in checks.items():
        bad = (~ok.fillna(False).astype(bool)).to_numpy().nonzero()[0]
        if len(bad):
            row = r.iloc[bad[0]]
            where = f"{row['kind']} / {row['severity']} (line {bad[0] + 2})"
            raise ConfigError(f"alert rules: {what} fails for {where}")
    return r.reset_index(drop=True)


def _levels(rules: pd.DataFrame) -> dict[tuple[str, str], list[_Level]]:
    """Levels per (kind, area type), lowest severity first."""
    out: dict[tuple[str, str], list[_Level]] = {}
    numbers = ("enter", "clear", "hold_s", "peak_step", "speed_min_kmh")
    for row in rules.to_dict("records"):
        severity, values = str(row["severity"]), [float(row[c]) for c in numbers]
        rank = CAP_SEVERITIES.index(severity) + 1
        level = _Level(severity, rank, str(row["unit"]), *values)
        out.setdefault((str(row["kind"]), str(row["area_type"])), []).append(level)
    return {k: sorted(v, key=lambda lv: lv.rank) for k, v in out.items()}


@cache
def _shipped(path: Path, stamp: tuple[int, int]) -> tuple[dict[str, str], _Levels]:
    """The reference rules (what each kind watches, its levels), once per state of the file."""
    return _compiled(alert_rules())


def _compiled(checked: pd.DataFrame) -> tuple[dict[str, str], _Levels]:
    watches = checked.groupby("kind")["watches"].first()
    return {str(k): str(w) for k, w in watches.items()}, _levels(checked)


def _rules_and_levels(rules: pd.DataFrame | None) -> tuple[dict[str, str], _Levels]:
    if rules is not None:
        return _compiled(alert_rules(rules))
    path = reference_dir() / "alert_rules.csv"
    st = path.stat() if path.exists() else None  # if missing, alert_rules() says so
    return _shipped(path, (st.st_mtime_ns, st.st_size) if st else (0, 0))


def _triggered(levels: list[_Level], v: float, speed: float) -> _Level | None:
    """The highest level whose ``enter`` the value reaches."""
    hits = [lv for lv in levels if lv.gated(speed) and v >= lv.enter]
    return hits[-1] if hits else None


def _holding(levels: list[_Level], v: float, speed: float, rank: int | None) -> _Level | None:
    """The highest level the value reaches, or holds (≥ ``clear``) at or below ``rank``.

    ``rank`` None: the lowest level that applies is held (pending and re-activating alerts).
    """
    gated = [lv for lv in levels if lv.gated(speed)]
    if not gated:
        return None
    floor = gated[0].rank if rank is None else rank
    held = [lv for lv in gated if v >= lv.enter or (lv.rank <= floor and v >= lv.clear)]
    return held[-1] if held else None


def _level(levels: list[_Level], severity: str) -> _Level:
    """The level of a severity; the nearest one below (or the lowest) if rules changed."""
    rank = CAP_SEVERITIES.index(severity) + 1 if severity in CAP_SEVERITIES else 0
    below = [lv for lv in levels if lv.rank <= rank]
    return below[-1] if below else levels[0]


Row = dict[str, Any]
Time: TypeAlias = pd.Timestamp
Step = tuple[Row | None, list[str]]


def _arm(row: Row, v: float, speed: float, lv: list[_Level], now: Time) -> Step:
    """A pending alert (new, or a cleared one coming back): open it once held long enough."""
    held = _holding(lv, v, speed, None)
    if held is None:
        if row["condition"] == "pending":
            return None, []  # dropped before it opened
        return {**row, "pending_since": pd.NaT}, []
    if row["condition"] == "pending":
        row["severity"] = held.severity
    if not held.held(row["pending_since"], now):
        return row, []
    reason = "opened" if row["condition"] == "pending" else "reactivated"
    row.update(condition="active", severity=held.severity, value=v, pending_since=pd.NaT)
    return row, [reason]


def _active(row: Row, v: float, speed: float, lv: list[_Level], now: Time) -> Step:
    """An open alert: escalate at once, step down or clear after the hold, track the peak."""
    current = _level(lv, str(row["severity"]))
    held = _holding(lv, v, speed, current.rank)
    reasons: list[str] = []
    if held is not None and held.rank > current.rank:
        row.update(severity=held.severity, pending_since=pd.NaT)
        reasons.append("severity_up")
    elif held is not None and held.rank == current.rank:
        row["pending_since"] = pd.NaT
    else:
        if pd.isna(row["pending_since"]):
            row["pending_since"] = now
        if current.held(row["pending_since"], now):
            row["pending_since"] = pd.NaT
            if held is None:
                row["condition"] = "cleared"
                reasons.append("cleared")
            else:
                row["severity"] = held.severity
                reasons.append("severity_down")
    peak = float(row["value"]) if pd.notna(row["value"]) else -math.inf
    step = _level(lv, str(row["severity"])).peak_step
    if row["condition"] == "active" and v > peak and (reasons or v >= peak + step):
        row["value"] = v
        reasons = reasons or ["peak"]
    return row, reasons


def _advance(prior: Row | None, v: float, speed: float, lv: list[_Level], now: Time) -> Step:
    """One alert key through one batch: its new tracked row (None: not tracked) and why."""
    if prior is None:
        if math.isnan(v) or not lv or _triggered(lv, v, speed) is None:
            return None, []
        prior = {"condition": "pending", "pending_since": now, "value": v, "severity": ""}
    row = dict(prior)
    if math.isnan(v) or not lv:
        return row, []
    if row["condition"] == "active":
        return _active(row, v, speed, lv, now)
    if row["condition"] == "cleared" and pd.isna(row["pending_since"]):
        if _triggered(lv, v, speed) is None:
            return row, []
        row["pending_since"] = now
    return _arm(row, v, speed, lv, now)


def _observations(state: pd.DataFrame, watches: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per alert key: the watched value now and what its message needs."""
    uid = [str(i) for i in state.index]
    names = state["name"].tolist() if "name" in state else uid
    col = {c: state[c].tolist() if c in state else [None] * len(uid) for c in ("los", "area_type")}
    flow = _floats(state, "exit_flow_p_min_m", "live state")
    speed = _floats(state, "worst_speed_kmh", "live state")
    records: list[dict[str, Any]] = [
        {"space_uid": u, "label": n if isinstance(n, str) and n else u, "los": col["los"][i]}
        | {"area_type": str(col["area_type"][i] or "standing"), "flow": flow[i], "speed": speed[i]}
        for i, (u, n) in enumerate(zip(uid, names, strict=True))
    ]
    out: dict[str, dict[str, Any]] = {}
    for kind, column in watches.items():
        if column in state.columns:
            for c, v in zip(records, _floats(state, column, "live state"), strict=True):
                key = alert_key(kind, c["space_uid"])
                out[key] = {**c, "kind": kind, "sensor_id": None, "value": float(v)}
        elif f"sensor_{column}" in state.columns:
            for c, per in zip(records, state[f"sensor_{column}"], strict=True):
                for sensor, v in (per if isinstance(per, dict) else {}).items():
                    key = alert_key(kind, c["space_uid"], str(sensor))
                    out[key] = {**c, "kind": kind, "sensor_id": str(sensor), "value": float(v)}
    return out


_FIGURES = {
    "los": "crowd density {v:.2f} p/m²{los}",
    "rapid_rise": "density rising {v:.2f} p/m² per minute",
    "exit_flow": "exit flow {flow:.0f} p/min/m, {v:.0%} of the Green Guide limit",
    "geofence": "crowd of {v:.2f} p/m² where a vehicle can enter at {speed:.0f} km/h",
    "stale": "sensor {sensor_id} silent for {v:.0f} s",
}


def _figure(kind: str, v: float, ctx: Row, unit: str) -> str:
    """The figure of a message, in words."""
    if kind == "stale" and math.isinf(v):
        return f"sensor {ctx['sensor_id']} has sent no reading in the window"
    los = f" (LOS {ctx['los']}, {ctx['area_type']} area)" if isinstance(ctx["los"], str) else ""
    return _FIGURES.get(kind, "{v:g} " + unit).format(**{**ctx, "v": v, "los": los})


def _finish(row: Row, ctx: Row | None, levels: list[_Level], why: list[str], now: Time) -> Row:
    """The alert row as returned: the figure now, the threshold in force and the message."""
    out = dict(row)
    if ctx is not None:
        for col in ("kind", "space_uid", "sensor_id"):
            out[col] = ctx[col]
        v = float(ctx["value"])
        out["current"] = v
        if levels and not math.isnan(v):
            level = _level(levels, str(out["severity"]))
            cleared = out["condition"] == "cleared"
            out["threshold"] = level.clear if cleared else level.enter
            out["unit"] = level.unit
            figure = f"{ctx['label']}: {_figure(str(out['kind']), v, ctx, level.unit)}"
            out["message"] = (
                f"{figure}, back below {level.clear:g} {level.unit}"
                if cleared
                else f"{figure} ({out['severity']}: {level.enter:g} {level.unit} or more)"
            )
    out["change"] = ",".join(why)
    out["evaluated_at"] = now
    return out


def _prior(active: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The unresolved (and pending) alerts, checked, by key."""
    if active.empty:
        return {}
    missing = sorted(set(_ACTIVE) - set(active.columns))
    if missing:
        raise ValidationError(f"active alerts: missing column(s) {', '.join(missing)}")
    dup = active.loc[active["alert_key"].duplicated(), "alert_key"]
    if len(dup):
        raise ValidationError(f"active alerts: more than one unresolved alert for {dup.iloc[0]}")
    bad = active.loc[~active["condition"].isin(CONDITIONS), "condition"]
    if len(bad):
        raise ValidationError(f"active alerts: unknown condition {bad.iloc[0]!r} ({CONDITIONS})")
    records = active.to_dict("records")
    for r in records:
        since = r.get("pending_since")
        r["pending_since"] = pd.NaT if since is None or pd.isna(since) else _utc(since, "alerts")
        r["value"] = math.nan if r["value"] is None or pd.isna(r["value"]) else float(r["value"])
    return {str(r["alert_key"]): r for r in records}


def _frame(rows: list[dict[str, Any]], extras: list[str]) -> pd.DataFrame:
    columns = [*ALERT_COLUMNS, *extras]
    data: dict[str, Any] = {c: [r.get(c) for r in rows] for c in columns}
    for col in ("value", "current", "threshold"):
        data[col] = np.array([math.nan if v is None else v for v in data[col]], dtype=float)
    for col in ("pending_since", "evaluated_at"):
        data[col] = pd.DatetimeIndex([pd.NaT if v is None else v for v in data[col]], tz="UTC")
    return pd.DataFrame(data, columns=columns)


def evaluate_alerts(
    state: pd.DataFrame,
    active: pd.DataFrame,
    *,
    now: pd.Timestamp,
    rules: pd.DataFrame | None = None,
) -> AlertChanges:
    """Open, update and clear alerts from one batch of live state (pure).

    Parameters
    ----------
    state : DataFrame
        :func:`~geo_protect.live.state.space_state` by space uid, plus ``worst_speed_kmh``
        (worst vehicle approach speed) for ``geofence``. Kinds whose column is missing are
        not evaluated.
    active : DataFrame
        The unresolved alerts (the last :attr:`AlertChanges.tracked`), may be empty: at least
        ``alert_key, kind, space_uid, sensor_id, severity, condition`` (``pending``,
        ``active``, ``cleared``), ``value`` (peak) and ``pending_since`` (start of the hold
        under way, or NaT). Other columns (the store's id, operator state) are carried.
    now : Timestamp
        Time of the batch (time-zone aware): hold times are measured with it.
    rules : DataFrame, optional
        :func:`alert_rules` input; the ``alert_rules`` reference table by default.

    Returns
    -------
    AlertChanges
        ``opened``, ``changed`` and ``tracked``, sorted by ``alert_key``.

    Raises
    ------
    ValidationError
        For a naive ``now``, two unresolved alerts of one key or an unknown condition.

    Examples
    --------
    >>> now = pd.Timestamp("2026-05-01 18:00", tz="UTC")
    >>> state = pd.DataFrame({"density": [5.4], "area_type": ["standing"],
    ...                       "name": ["Piața Sfatului"]}, index=["way/1"])
    >>> changes = evaluate_alerts(state, pd.DataFrame(), now=now)
    >>> row = changes.opened.iloc[0]
    >>> row["alert_key"], row["severity"], row["message"]
    ('los|way/1', 'Extreme', 'Piața Sfatului: crowd density 5.40 p/m² (Extreme: 5 p/m² or more)')
    >>> again = evaluate_alerts(state, changes.tracked, now=now + pd.Timedelta("10s"))
    >>> len(again.opened), len(again.tracked)
    (0, 1)
    """
    stamp = _utc(now, "now")
    watches, levels = _rules_and_levels(rules)
    seen = _observations(state, watches)
    prior = _prior(active)
    extras = [c for c in active.columns if c not in ALERT_COLUMNS]
    opened: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    tracked: list[dict[str, Any]] = []
    for key in sorted(seen.keys() | prior.keys()):
        ctx, before = seen.get(key), prior.get(key)
        kind = str((ctx or before or {})["kind"])
        area = str(ctx["area_type"]) if ctx else "*"
        lv = levels.get((kind, area)) or levels.get((kind, "*"), [])
        v, speed = (float(ctx["value"]), float(ctx["speed"])) if ctx else (math.nan, math.nan)
        row, reasons = _advance(before, v, speed, lv, stamp)
        if row is None:
            continue
        row = _finish({**row, "alert_key": key}, ctx, lv, reasons, stamp)
        tracked.append(row)
        if "opened" in reasons:
            opened.append(row)
        elif reasons:
            changed.append(row)
    return AlertChanges(_frame(opened, extras), _frame(changed, extras), _frame(tracked, extras))
