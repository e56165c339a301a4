"""What the planner page draws: the baseline layers once, then each preview's changes.

:func:`baseline_payload` is the city as the scenario context analysed it (spaces with
their worst score, entries with their class and speed, the worst approach path of each
vehicle-permeable entry, the existing barriers a planner may remove or open) and the
vocabularies (barrier types, scheme options, the gap limit). :func:`preview_payload`
turns a :class:`~geo_protect.scenario.engine.ScenarioResult` into the changes the page
lists and draws: entries that change class or speed, the residual speed of every class
at them, the planned barriers' checks (gaps over the limit, streets left open, ratings
that do not cover what reaches them) as map flags, and the score change of every
affected (space, threat). Nothing is computed here that the scenario engine does not
say: this module reads its frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect.analysis.barriers import closes_gap
from geo_protect.reference import parameter
from geo_protect.scenario.engine import ScenarioResult
from geo_protect.scenario.incremental import ScenarioContext
from geo_protect.scenario.model import BarrierEdit, plan_barrier_types
from geo_protect.schema import WGS84

__all__ = ["baseline_payload", "preview_payload"]

#: Outline simplification for the screen, degrees (about a metre), and decimals sent.
_SIMPLIFY_DEG = 1e-5
_DECIMALS = 6


def _num(value: object, digits: int = 2) -> float | None:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else round(f, digits)


def _text(value: object) -> str | None:
    return None if value is None or pd.isna(value) else str(value)  # type: ignore[arg-type]


def _geojson(geoms: np.ndarray) -> list[dict[str, Any]]:
    rounded = shapely.set_precision(np.asarray(geoms, dtype=object), 10.0**-_DECIMALS)
    return [shapely.geometry.mapping(g) for g in rounded]


def _features(geoms: np.ndarray, props: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": g, "properties": p}
            for g, p in zip(_geojson(geoms), props, strict=True)
        ],
    }


def _worst_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Per space: its worst (space, threat) row (highest R_100, then risk index)."""
    s = scores.assign(
        r=scores["risk_100"].astype(float), i=scores["risk_index"].astype(float)
    ).sort_values(["r", "i"], ascending=False, na_position="last")
    return s.drop_duplicates("space_uid").set_index("space_uid")


def _col(frame: pd.DataFrame, name: str) -> list[Any]:
    """A column as Python values (missing as None), without copying the frame."""
    values = frame[name].to_numpy(dtype=object)
    return [
        None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
        for v in values
    ]


def _entry_props(entries: pd.DataFrame) -> list[dict[str, Any]]:
    cols = ("space_uid", "entry_class", "worst_speed_kmh", "worst_vehicle", "required_rating")
    space, klass, speed, vehicle, rating = (_col(entries, c) for c in cols)
    return [
        {
            "uid": str(uid),
            "space_uid": None if s is None else str(s),
            "entry_class": None if k is None else str(k),
            "worst_speed_kmh": _num(v),
            "worst_vehicle": None if w is None else str(w),
            "required_rating": None if r is None else str(r),
        }
        for uid, s, k, v, w, r in zip(
            entries.index, space, klass, speed, vehicle, rating, strict=True
        )
    ]


def _speed_rows(approach: pd.DataFrame, entries: Sequence[str] | None) -> pd.DataFrame:
    """The approach rows (of ``entries``) as a plain frame: entry, space, class, speed, row."""
    at = np.arange(len(approach))
    if entries is not None:
        at = at[approach["entry_uid"].isin(list(entries)).to_numpy(dtype=bool)]
    return pd.DataFrame(
        {
            "entry_uid": approach["entry_uid"].to_numpy(dtype=object)[at].astype(str),
            "space_uid": approach["space_uid"].to_numpy(dtype=object)[at].astype(str),
            "vehicle": approach["vehicle"].to_numpy(dtype=object)[at].astype(str),
            "speed_kmh": approach["speed_kmh"].to_numpy(dtype=float, na_value=np.nan)[at],
            "row": at,
        }
    )


def worst_paths(approach: gpd.GeoDataFrame, entries: Sequence[str] | None = None) -> dict[str, Any]:
    """The fastest approach path of each entry (of ``entries``), with every class's speed.

    Parameters
    ----------
    approach : GeoDataFrame
        An ``approach`` layer.
    entries : sequence of str, optional
        The entries wanted (all by default).

    Returns
    -------
    dict
        A GeoJSON FeatureCollection: ``entry_uid``, ``space_uid``, the fastest ``vehicle``
        and its ``speed_kmh``, and ``speeds`` per class.
    """
    rows = _speed_rows(approach, entries)
    if rows.empty:
        return {"type": "FeatureCollection", "features": []}
    speeds: dict[str, dict[str, float | None]] = {}
    for e, v, sp in zip(rows["entry_uid"], rows["vehicle"], rows["speed_kmh"], strict=True):
        speeds.setdefault(e, {})[v] = _num(sp)
    worst = rows.sort_values("speed_kmh", ascending=False, kind="stable").drop_duplicates(
        "entry_uid"
    )
    props = [
        {"entry_uid": e, "space_uid": s, "vehicle": v, "speed_kmh": _num(sp), "speeds": speeds[e]}
        for e, s, v, sp in zip(
            worst["entry_uid"],
            worst["space_uid"],
            worst["vehicle"],
            worst["speed_kmh"],
            strict=True,
        )
    ]
    return _features(approach.geometry.to_numpy()[worst["row"].to_numpy()], props)


def baseline_payload(ctx: ScenarioContext) -> dict[str, Any]:
    """The page's baseline: spaces, entries, worst approaches, barriers and vocabularies.

    Parameters
    ----------
    ctx : ScenarioContext
        The city's context (its baseline layers are drawn).
    """
    layers, data = ctx.layers, ctx.data
    spaces = data["public_space"]
    metric = layers["space_metric"]
    worst = _worst_scores(layers["assessment"])
    outlines = shapely.simplify(spaces.geometry.values, _SIMPLIFY_DEG, preserve_topology=True)
    space_props = []
    for uid in spaces.index.astype(str):
        w = worst.loc[uid] if uid in worst.index else None
        label = metric.at[uid, "label"] if uid in metric.index else spaces.at[uid, "name"]
        space_props.append(
            {
                "uid": uid,
                "name": _text(label) or uid,
                "risk_100": None if w is None else _num(w["risk_100"]),
                "band": None if w is None else _text(w["band"]),
                "risk_index": None if w is None else _num(w["risk_index"], 0),
            }
        )
    entries = layers["entry_point"]
    barriers = data["barrier"]
    types = plan_barrier_types()
    return {
        "city": ctx.city.slug,
        "city_name": ctx.city.name,
        "bbox": list(ctx.city.bbox),
        "spaces": _features(outlines, space_props),
        "entries": _features(entries.geometry.values, _entry_props(entries)),
        "approaches": worst_paths(layers["approach"]),
        "barriers": _features(
            shapely.point_on_surface(barriers.geometry.values),  # a click target per barrier
            [
                {"uid": str(u), "kind": _text(k)}
                for u, k in zip(barriers.index, barriers["kind"], strict=True)
            ],
        ),
        "barrier_types": [
            {
                "type": str(t),
                "point": bool(r["point"]),
                "line": bool(r["line"]),
                "default_spacing_m": _num(r["default_spacing_m"]),
                "stops_vehicle": str(r["stops_vehicle"]),
                "description": str(r["description"]),
            }
            for t, r in types.iterrows()
        ],
        "max_gap_m": parameter("max_bollard_gap_m"),
        "post_m": parameter("bollard_diameter_m"),
    }


def _entry_changes(ctx: ScenarioContext, result: ScenarioResult) -> list[dict[str, Any]]:
    changed = result.entries
    if changed.empty:
        return []
    after = result.layers["entry_point"]
    base = ctx.layers["entry_point"]
    where = after.geometry.reindex(changed.index).fillna(base.geometry.reindex(changed.index))
    names = ctx.layers["space_metric"]["label"]
    out = []
    for (uid, row), point in zip(changed.iterrows(), where.values, strict=True):
        before, now = _text(row.get("entry_class_before")), _text(row.get("entry_class_after"))
        out.append(
            {
                "uid": str(uid),
                "space_uid": str(row["space_uid"]),
                "space_name": _text(names.get(row["space_uid"])) or str(row["space_uid"]),
                "class_before": before,
                "class_after": now,
                "turns_blocked": before == "vehicle_permeable" and now == "blocked",
                "opens": before != "vehicle_permeable" and now == "vehicle_permeable",
                "speed_before": _num(row.get("worst_speed_kmh_before")),
                "speed_after": _num(row.get("worst_speed_kmh_after")),
                "vehicle_before": _text(row.get("worst_vehicle_before")),
                "vehicle_after": _text(row.get("worst_vehicle_after")),
                "rating_before": _text(row.get("required_rating_before")),
                "rating_after": _text(row.get("required_rating_after")),
                "lon": _num(point.x, _DECIMALS) if point is not None else None,
                "lat": _num(point.y, _DECIMALS) if point is not None else None,
            }
        )
    return out


def _residual_speeds(ctx: ScenarioContext, result: ScenarioResult) -> list[dict[str, Any]]:
    """Per changed entry and vehicle class: the attainable speed before and after."""
    uids = list(result.entries.index.astype(str))
    if not uids:
        return []

    def speeds(approach: pd.DataFrame) -> dict[tuple[str, str], float]:
        rows = _speed_rows(approach, uids)
        return dict(
            zip(
                zip(rows["entry_uid"], rows["vehicle"], strict=True), rows["speed_kmh"], strict=True
            )
        )

    before, after = speeds(ctx.layers["approach"]), speeds(result.layers["approach"])
    return [
        {
            "entry_uid": e,
            "vehicle": v,
            "before": _num(before.get((e, v))),
            "after": _num(after.get((e, v))),
        }
        for e, v in sorted(set(before) | set(after))
    ]


def _score_changes(ctx: ScenarioContext, result: ScenarioResult) -> list[dict[str, Any]]:
    changed = result.scores
    if changed.empty:
        return []
    index_b = ctx.layers["assessment"]["risk_index"].astype(float)
    index_a = result.layers["assessment"]["risk_index"].astype(float)
    names = ctx.layers["space_metric"]["label"]
    out = []
    for uid, row in changed.iterrows():
        b, a = _num(row.get("risk_100_before")), _num(row.get("risk_100_after"))
        ib, ia = _num(index_b.get(uid), 0), _num(index_a.get(uid), 0)
        out.append(
            {
                "uid": str(uid),
                "space_uid": str(row["space_uid"]),
                "space_name": _text(names.get(row["space_uid"])) or str(row["space_uid"]),
                "threat": str(uid).rsplit("|", 1)[-1],
                "risk_100_before": b,
                "risk_100_after": a,
                "band_before": _text(row.get("band_before")),
                "band_after": _text(row.get("band_after")),
                "index_before": ib,
                "index_after": ia,
                "falls": (a is not None and b is not None and a < b)
                or (a == b and ia is not None and ib is not None and ia < ib),
                "why_after": _text(row.get("why_after")),
            }
        )
    return out


def _where(geom: shapely.Geometry) -> dict[str, float | None]:
    p = (
        shapely.line_interpolate_point(geom, 0.5, normalized=True)
        if geom.geom_type == "LineString"
        else geom
    )
    return {"lon": _num(p.x, _DECIMALS), "lat": _num(p.y, _DECIMALS)}


def _barrier_checks(
    ctx: ScenarioContext,
    result: ScenarioResult,
    edits: Sequence[BarrierEdit],
    ids: Sequence[str | None],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per planned barrier: its gap, the streets it closes or not, the classes its rating
    does not cover; and the map flags of every problem."""
    added = [(e, f) for e, f in zip(edits, ids, strict=True) if e.action == "add"]
    barriers, flags = [], []
    for n, (edit, feature) in enumerate(added, start=1):
        record, under = _barrier_record(result, f"plan/{n}", edit, feature)
        barriers.append(record)
        flags += _barrier_flags(ctx, result, record, edit, under)
    return barriers, flags


def _barrier_record(
    result: ScenarioResult, uid: str, edit: BarrierEdit, feature: str | None
) -> tuple[dict[str, Any], pd.DataFrame]:
    """One planned barrier's checks (the engine's ``checks`` rows of it, summarised)."""
    max_gap, tol = parameter("max_bollard_gap_m"), parameter("bollard_gap_mapping_tolerance_m")
    checks = result.checks
    mine = checks[checks["barrier_uid"] == uid] if len(checks) else checks
    gap = edit.clear_gap_m()
    per_street = mine.drop_duplicates("street_uid") if len(mine) else mine
    streets = [str(s) for s in per_street["street_uid"]] if len(per_street) else []
    closes = [bool(c) for c in per_street["closes"]] if len(per_street) else []
    under = mine[mine["covers"].astype("boolean").eq(False).fillna(False)] if len(mine) else mine
    rated = str(plan_barrier_types().loc[edit.kind, "stops_vehicle"]) == "rated"
    record = {
        "uid": uid,
        "feature": feature,
        "kind": edit.kind,
        "rating": edit.rating,
        "spacing_m": edit.spacing(),
        "clear_gap_m": _num(gap, 3),
        "max_gap_m": max_gap,
        "gap_over_limit": gap is not None and not bool(closes_gap(gap, max_gap, tol)),
        "streets": streets,
        "open_streets": [s for s, c in zip(streets, closes, strict=True) if not c],
        "under_rated": [
            {"vehicle": str(r["vehicle"]), "speed_kmh": _num(r["speed_high_kmh"])}
            for _, r in under.iterrows()
        ],
        "unrated_passable": rated and not edit.rating,
    }
    return record, under


def _barrier_flags(
    ctx: ScenarioContext,
    result: ScenarioResult,
    record: dict[str, Any],
    edit: BarrierEdit,
    under: pd.DataFrame,
) -> list[dict[str, Any]]:
    """The map flags of one planned barrier: gap over the limit, streets left open,
    a rating that does not cover what reaches it, a rated type left unrated."""
    base = {"feature": record["feature"], "barrier_uid": record["uid"], **_where(edit.geometry)}
    flags = []
    if record["gap_over_limit"]:
        gap, limit = record["clear_gap_m"], record["max_gap_m"]
        message = f"clear gap {gap:.2f} m between posts is over the {limit:g} m limit"
        flags.append({**base, "kind": "gap", "message": message})
    else:  # a gap over the limit says why its streets stay open
        geom = result.barriers.geometry.get(record["uid"], edit.geometry)
        for s in record["open_streets"]:
            message = f"does not close {s}: a gap or a line short of the kerb"
            where = _crossing(geom, ctx.data["street"], s)
            flags.append({**base, **where, "kind": "open", "message": message})
    if len(under):
        worst = under.sort_values("speed_high_kmh").iloc[-1]
        speed = float(worst["speed_high_kmh"])
        message = (
            f"rating {edit.rating} does not cover {worst['vehicle']} reaching it "
            f"at {speed:.0f} km/h (x the safety factor)"
        )
        flags.append({**base, "kind": "rating", "message": message})
    if record["unrated_passable"]:
        message = f"an unrated {edit.kind} stops no hostile vehicle: give its crash rating"
        flags.append({**base, "kind": "unrated", "message": message})
    return flags


def _crossing(
    geom: shapely.Geometry, streets: gpd.GeoDataFrame, street_uid: str
) -> dict[str, float | None]:
    """Where a planned barrier meets a street (the nearest point, when they only touch)."""
    if street_uid not in streets.index:
        return {}
    line = streets.geometry.loc[street_uid]
    p = shapely.shortest_line(line, geom)
    return _where(shapely.get_point(p, 0))


def preview_payload(
    ctx: ScenarioContext,
    result: ScenarioResult,
    edits: Sequence[BarrierEdit],
    ids: Sequence[str | None],
) -> dict[str, Any]:
    """Everything a preview shows: entries, residual speeds, barrier checks, flags, scores.

    Parameters
    ----------
    ctx : ScenarioContext
        The city's context (the baseline compared with).
    result : ScenarioResult
        :func:`~geo_protect.scenario.incremental.rescore` of ``edits``.
    edits : sequence of BarrierEdit
        The edits, in order (the added ones are the result's ``plan/<n>``).
    ids : sequence of str or None
        The page's feature id of each edit.
    """
    entries = _entry_changes(ctx, result)
    barriers, flags = _barrier_checks(ctx, result, edits, ids)
    spaces = result.affected_spaces
    after_rows = result.layers.get("entry_point")
    mine = (
        after_rows[after_rows["space_uid"].astype(str).isin(spaces)]
        if after_rows is not None
        else None
    )
    posts = result.barriers
    return {
        "entries": entries,
        "speeds": _residual_speeds(ctx, result),
        "scores": _score_changes(ctx, result),
        "barriers": barriers,
        "flags": flags,
        "affected_spaces": spaces,
        "after_entries": None
        if mine is None
        else _features(mine.geometry.values, _entry_props(mine)),
        "after_approaches": worst_paths(result.layers["approach"], [e["uid"] for e in entries]),
        "posts": _features(
            posts.to_crs(WGS84).geometry.values if len(posts) else np.zeros(0, dtype=object),
            [{"uid": str(u)} for u in posts.index],
        ),
        "summary": {
            "turned_blocked": sum(e["turns_blocked"] for e in entries),
            "opened": sum(e["opens"] for e in entries),
            "entries_changed": len(entries),
            "spaces_affected": len(spaces),
            "flags": len(flags),
        },
    }
