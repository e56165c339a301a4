"""Pre-filled ratings from evidence: vectorised rules over a city's spaces.

Each rule reads its thresholds from a reference table and returns, per space, the rating,
the rule that fired and its inputs, so every pre-filled value can be explained:

* vulnerability to vehicle-borne threats from the worst approach speed of the space
  (``prefill_bands`` rule ``ramming_speed_kmh``; which threats use it: ``threat_types``);
* consequence from the people the space holds at its peak (``expected_peak_persons``, by
  use; :mod:`geo_protect.assess.consequence`, which also has the assessors' peak answer);
* attractiveness from symbolic and crowded POIs within ``poi_radius_m`` (``poi_weights``,
  ``poi_score``);
* likelihood ``L = round_half_up((A + V) / 2)`` (brief §1.5);
* existing measures from OSM barriers and surveillance within ``measure_buffer_m``
  (``measure_categories``: natural or emplaced).

:func:`prefill` turns them into draft :class:`~geo_protect.assess.questionnaire.CityAssessment`
records; assessors change a pre-filled value only through
:func:`~geo_protect.assess.questionnaire.override`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_protect import reference
from geo_protect.analysis.crowd import pois_near
from geo_protect.assess.bands import band_lookup
from geo_protect.assess.consequence import crowd_consequence
from geo_protect.assess.questionnaire import (
    CityAssessment,
    Evidence,
    Measure,
    Questionnaire,
    Rating,
    Scenario,
    SiteAssessment,
    load_questionnaire,
    validate,
)
from geo_protect.assess.standoff_rules import (
    STANDOFF_RULES,
    _require,
    standoff_consequence,
    standoff_vulnerability,
)
from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.errors import ConfigError

__all__ = [
    "crowd_consequence",
    "derive_likelihood",
    "existing_measures",
    "poi_attractiveness",
    "prefill",
    "prefill_layers",
    "ramming_vulnerability",
]


def ramming_vulnerability(
    space_metric: pd.DataFrame, *, bands: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Vulnerability to vehicle-borne threats from the worst approach speed (1–5).

    A space without vehicle-permeable entries (``n_vehicle_permeable == 0``) counts as
    0 km/h; a space with such entries but no computed speed gets no rating (NA).

    Parameters
    ----------
    space_metric
        Frame indexed by space uid with ``worst_speed_kmh`` and ``n_vehicle_permeable``.
    bands
        The ``prefill_bands`` table (rule ``ramming_speed_kmh``); the reference one by default.

    Returns
    -------
    DataFrame
        Index-aligned: ``vulnerability`` (Int64), ``rule`` (the band that fired) and the
        inputs ``worst_speed_kmh``, ``n_vehicle_permeable``.
    """
    _require(space_metric, ("worst_speed_kmh", "n_vehicle_permeable"), "space_metric")
    n_perm = space_metric["n_vehicle_permeable"].astype("Int64")
    speed = space_metric["worst_speed_kmh"].astype("Float64")
    speed = speed.mask(n_perm.eq(0).fillna(False), 0.0)
    rating, rule = band_lookup(speed, "ramming_speed_kmh", bands, "worst_speed_kmh")
    out = pd.DataFrame(
        {
            "vulnerability": rating,
            "rule": rule,
            "worst_speed_kmh": speed,
            "n_vehicle_permeable": n_perm,
        }
    )
    if "worst_energy_kj" in space_metric.columns:  # for the risk index
        out["worst_energy_kj"] = space_metric["worst_energy_kj"].astype("Float64")
    ranges = ("worst_speed_low_kmh", "worst_speed_high_kmh")
    if all(c in space_metric.columns for c in ranges):  # the sensitivity range, VDA step 6
        lo, hi = (space_metric[c].astype("Float64") for c in ranges)
        out[ranges[0]], out[ranges[1]] = lo, hi
        shown = lo.notna() & hi.notna() & speed.gt(0).fillna(False)
        kmh = [x.round(0).astype("Int64").astype("string") for x in (speed, lo, hi)]
        same = (kmh[1] == kmh[2]).fillna(False)
        spread = " km/h, " + kmh[1] + "–" + kmh[2] + " km/h under the low / high parameter sets"
        tail = spread.where(~same, " km/h under every parameter set")
        words = "; worst approach " + kmh[0] + tail
        out["rule"] = out["rule"].astype("string").where(~shown, out["rule"] + words)
    return out


def poi_attractiveness(
    spaces: gpd.GeoDataFrame,
    pois: gpd.GeoDataFrame,
    *,
    crs: str,
    radius_m: float | None = None,
    weights: pd.DataFrame | None = None,
    bands: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Attractiveness (1–5) from symbolic and crowded POIs near each space.

    The score of a space is the sum of the ``poi_weights`` of the POIs within
    ``radius_m`` of its outline (distances in the metric ``crs``); the ``poi_score``
    bands turn it into a rating.

    Parameters
    ----------
    spaces, pois
        The ``public_space`` and ``poi`` layers (WGS84, ``kind`` column on ``pois``).
    crs
        The city's metric CRS.
    radius_m, weights, bands
        Reference values (``risk_parameters/poi_radius_m``, ``poi_weights``,
        ``prefill_bands``) by default.

    Returns
    -------
    DataFrame
        Index-aligned with ``spaces``: ``attractiveness`` (Int64), ``rule``, ``poi_score``,
        ``n_pois`` and ``pois`` (the counted POIs as ``uid (kind, weight)`` strings).
    """
    radius = _risk_parameter("poi_radius_m") if radius_m is None else radius_m
    p_proj = pois.to_crs(crs)
    s_idx, p_idx, p_weight = pois_near(spaces.to_crs(crs), p_proj, radius_m=radius, weights=weights)
    keep = p_weight[p_idx] > 0
    s_idx, p_idx = s_idx[keep], p_idx[keep]
    score = np.bincount(s_idx, weights=p_weight[p_idx], minlength=len(spaces))
    count = np.bincount(s_idx, minlength=len(spaces))
    labels = (
        p_proj.index.astype(str)
        + " ("
        + p_proj["kind"].astype(str)
        + ", "
        + pd.Series(p_weight, index=p_proj.index).map("{:g}".format)
        + ")"
    ).to_numpy()
    listed = pd.Series(labels[p_idx]).groupby(s_idx).agg(list)
    poi_lists = pd.Series([[] for _ in range(len(spaces))], dtype=object)
    poi_lists.iloc[listed.index.to_numpy()] = listed.to_numpy()
    score_s = pd.Series(score, index=spaces.index)
    rating, rule = band_lookup(score_s, "poi_score", bands, "poi_score")
    return pd.DataFrame(
        {
            "attractiveness": rating,
            "rule": rule + f" (POIs within {radius:g} m)",
            "poi_score": score_s,
            "n_pois": pd.Series(count, index=spaces.index, dtype="Int64"),
            "pois": pd.Series(poi_lists.to_numpy(), index=spaces.index, dtype=object),
        }
    )


def derive_likelihood(attractiveness: pd.Series, vulnerability: pd.Series) -> pd.Series:
    """Likelihood ``L = round_half_up((A + V) / 2)`` (brief §1.5), NA where A or V is NA."""
    a = attractiveness.astype("Float64")
    v = vulnerability.astype("Float64")
    return np.floor((a + v) / 2 + 0.5).astype("Int64")


def existing_measures(
    spaces: gpd.GeoDataFrame,
    barriers: gpd.GeoDataFrame | None,
    surveillance: gpd.GeoDataFrame | None,
    *,
    crs: str,
    buffer_m: float | None = None,
    categories: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """OSM barriers and cameras within ``buffer_m`` of each space, as measures (by uid).

    Returns
    -------
    DataFrame
        One row per (space, feature): ``space_uid``, ``layer``, ``uid``, ``kind``,
        ``name``, ``category`` (natural | emplaced, from ``measure_categories``).
    """
    buffer = _risk_parameter("measure_buffer_m") if buffer_m is None else buffer_m
    cats = reference.table("measure_categories") if categories is None else categories
    s_geom = spaces.to_crs(crs).geometry.to_numpy()
    parts = []
    for layer_name, layer in (("barrier", barriers), ("surveillance", surveillance)):
        if layer is None or layer.empty:
            continue
        proj = layer.to_crs(crs)
        s_idx, f_idx = shapely.STRtree(proj.geometry.to_numpy()).query(
            s_geom, predicate="dwithin", distance=buffer
        )
        kind = proj["kind"].astype("string").to_numpy()[f_idx]
        name = proj["name"].astype("string").to_numpy()[f_idx] if "name" in proj else None
        parts.append(
            pd.DataFrame(
                {
                    "_space": s_idx,
                    "space_uid": spaces.index.to_numpy()[s_idx],
                    "layer": layer_name,
                    "uid": proj.index.to_numpy()[f_idx],
                    "kind": kind,
                    "name": name,
                }
            )
        )
    columns = ["space_uid", "layer", "uid", "kind", "name", "category"]
    if not parts:
        return pd.DataFrame(columns=columns)
    found = pd.concat(parts, ignore_index=True).sort_values(["_space", "layer", "uid"])
    exact = cats.set_index(["layer", "kind"])["category"]
    default = cats[cats["kind"] == "*"].set_index("layer")["category"]
    key = pd.MultiIndex.from_arrays([found["layer"], found["kind"].fillna("")])
    cat = pd.Series(exact.reindex(key).to_numpy(), index=found.index)
    found["category"] = cat.fillna(found["layer"].map(default)).fillna("emplaced")
    return found[columns].reset_index(drop=True)


def prefill(
    spaces: gpd.GeoDataFrame,
    *,
    city: str,
    crs: str,
    space_metric: pd.DataFrame | None = None,
    pois: gpd.GeoDataFrame | None = None,
    barriers: gpd.GeoDataFrame | None = None,
    surveillance: gpd.GeoDataFrame | None = None,
    questionnaire: Questionnaire | None = None,
    threat_types: pd.DataFrame | None = None,
    bands: pd.DataFrame | None = None,
    reference_version: str | None = None,
    standoff: pd.DataFrame | None = None,
    attractiveness: pd.DataFrame | None = None,
) -> CityAssessment:
    """Draft assessments of a city's spaces, pre-filled from the evidence available.

    Every site gets one scenario per threat type of the questionnaire. Ratings whose
    evidence is missing (no ``space_metric``, no POIs) stay empty for the assessors: an
    empty rating is *not assessed*, never zero.

    Parameters
    ----------
    spaces : GeoDataFrame
        The ``public_space`` layer (WGS84, uid index; ``name`` and ``kind`` columns).
    city : str
        City slug.
    crs : str
        The city's metric CRS.
    space_metric : DataFrame, optional
        The ``space_metric`` analysis layer (issue 3): ``worst_speed_kmh``,
        ``n_vehicle_permeable``, ``capacity_persons`` (``design_density``, ``area_m2``).
    standoff : DataFrame, optional
        The ``standoff`` layer (VBIED rules, :mod:`geo_protect.assess.standoff_rules`).
    pois, barriers, surveillance : GeoDataFrame, optional
        Source layers for attractiveness and existing measures.
    questionnaire : Questionnaire, optional
        The questionnaire (``data/assessment/questionnaire-v1.yaml`` by default).
    threat_types, bands : DataFrame, optional
        Reference tables ``threat_types`` and ``prefill_bands`` (from ``data/`` by default).
    reference_version : str, optional
        Version of the reference data recorded in the assessment.
    attractiveness : DataFrame, optional
        :func:`poi_attractiveness` of these spaces (or more), computed already.
    """
    q = questionnaire or load_questionnaire()
    rules = _threat_rules(q, threat_types)
    known = attractiveness is not None
    evidence = _space_evidence(
        spaces, crs=crs, space_metric=space_metric, pois=None if known else pois, bands=bands
    )
    if attractiveness is not None:
        evidence["attractiveness"] = attractiveness.reindex(spaces.index)
    for rule, fn in (("vbied_standoff_ratio", standoff_vulnerability),
                     ("vbied_persons_mandatory", standoff_consequence)):  # fmt: skip
        evidence[rule] = None if standoff is None else fn(standoff, spaces.index, bands=bands)
    measures = existing_measures(spaces, barriers, surveillance, crs=crs)
    by_space = {k: g for k, g in measures.groupby("space_uid", sort=False)}
    points = spaces.geometry.representative_point()
    sites = [
        SiteAssessment(
            space_uid=str(uid),
            name=_text(spaces["name"].iloc[i]) if "name" in spaces else "",
            location=(round(points.iloc[i].x, 7), round(points.iloc[i].y, 7)),
            site=_site_answers(q, str(spaces["kind"].iloc[i]) if "kind" in spaces else ""),
            measures=_measures(by_space.get(uid)),
            scenarios=_scenarios(q, rules, _evidence_of(evidence, i)),
        )
        for i, uid in enumerate(spaces.index)
    ]
    ref_version = reference.version() if reference_version is None else reference_version
    out = CityAssessment(
        city=city, questionnaire_version=q.version, reference_version=ref_version, sites=sites
    )
    validate(out, q)
    return out


def prefill_layers(
    city: City,
    data: CityData,
    space_metric: pd.DataFrame,
    standoff: pd.DataFrame | None,
    *,
    spaces: gpd.GeoDataFrame | None = None,
    attractiveness: pd.DataFrame | None = None,
) -> CityAssessment:
    """:func:`prefill` with a city's own layers: its POIs, barriers, cameras and stand-off.

    Parameters
    ----------
    city : City
        The city (slug and metric CRS).
    data : CityData
        Its source layers.
    space_metric, standoff : DataFrame
        Its ``space_metric`` and ``standoff`` layers (``standoff`` None: VBIED unrated).
    spaces : GeoDataFrame, optional
        Only these spaces (default: every ``public_space``).
    attractiveness : DataFrame, optional
        As for :func:`prefill`.
    """
    return prefill(
        data["public_space"] if spaces is None else spaces,
        city=city.slug,
        crs=city.crs,
        space_metric=space_metric,
        pois=data["poi"],
        barriers=data["barrier"],
        surveillance=data["surveillance"],
        standoff=standoff,
        attractiveness=attractiveness,
    )


_EVIDENCE_INPUTS: dict[str, tuple[str, ...]] = {
    "attractiveness": ("poi_score", "n_pois", "pois"),
    "vulnerability": (
        "worst_speed_kmh",
        "worst_speed_low_kmh",
        "worst_speed_high_kmh",
        "n_vehicle_permeable",
        "worst_energy_kj",
    ),
    "consequence": ("people_exposed", "occupancy_rule", "capacity_persons", "area_m2"),
}


def _threat_rules(q: Questionnaire, threat_types: pd.DataFrame | None) -> pd.DataFrame:
    """The ``threat_types`` table indexed by threat (checked against the questionnaire)."""
    tt = reference.table("threat_types") if threat_types is None else threat_types
    tt = tt.set_index("threat")
    unknown = sorted(set(tt.index) - set(q.threat_codes))
    if unknown:
        raise ConfigError(f"threat_types: unknown threat type(s) {', '.join(unknown)}")
    return tt


def _space_evidence(
    spaces: gpd.GeoDataFrame,
    *,
    crs: str,
    space_metric: pd.DataFrame | None,
    pois: gpd.GeoDataFrame | None,
    bands: pd.DataFrame | None,
) -> dict[str, pd.DataFrame | None]:
    """The rule frames per rating (None where the evidence is missing)."""
    metric = space_metric.reindex(spaces.index) if space_metric is not None else None
    has_pois = pois is not None and not pois.empty
    return {
        "attractiveness": (
            poi_attractiveness(spaces, pois, crs=crs, bands=bands)
            if has_pois and pois is not None
            else None
        ),
        "vulnerability": ramming_vulnerability(metric, bands=bands) if metric is not None else None,
        "consequence": crowd_consequence(metric, bands=bands) if metric is not None else None,
    }


def _evidence_of(frames: dict[str, pd.DataFrame | None], i: int) -> dict[str, Evidence | None]:
    """The evidence of the ``i``-th space per rating."""
    out = {rating: _evidence(frames[rating], i, rating, inputs)
           for rating, inputs in _EVIDENCE_INPUTS.items()}  # fmt: skip
    out.update({rule: _evidence(frames.get(rule), i, rating, inputs)
                for rule, (rating, inputs) in STANDOFF_RULES.items()})  # fmt: skip
    return out


def _scenarios(
    q: Questionnaire, rules: pd.DataFrame, evid: dict[str, Evidence | None]
) -> list[Scenario]:
    """One scenario per threat; V and C only where the threat type uses that rule."""
    scenarios = []
    for threat in q.threat_codes:
        v_rule = rules["vulnerability_prefill"].get(threat, pd.NA)
        c_rule = rules["consequence_prefill"].get(threat, pd.NA)
        sc = Scenario(
            threat=threat,
            attractiveness=_rating(evid["attractiveness"]),
            vulnerability=_rating(
                None if pd.isna(v_rule) else evid.get(v_rule, evid["vulnerability"])
            ),
            consequence=_rating(None if pd.isna(c_rule) else evid.get(c_rule, evid["consequence"])),
        )
        scenarios.append(sc.with_derived_likelihood())
    return scenarios


def _site_answers(q: Questionnaire, kind: str) -> dict[str, Any]:
    """The site answers the data gives (:data:`PREFILLED_ANSWERS`: the kind of space)."""
    kinds = {q_.id: q_ for q_ in q.site_questions}.get("type")
    if kinds is None or kinds.choices is None:
        return {}
    return {"type": kind if kind in kinds.choices else "other"}


def _evidence(
    frame: pd.DataFrame | None, i: int, column: str, inputs: Sequence[str]
) -> Evidence | None:
    if frame is None:
        return None
    value = frame[column].iloc[i]
    if pd.isna(value):
        return None
    return Evidence(
        value=int(value),
        rule=str(frame["rule"].iloc[i]),
        inputs={c: _jsonable(frame[c].iloc[i]) for c in inputs if c in frame.columns},
        table="prefill_bands",
    )


def _rating(evidence: Evidence | None) -> Rating:
    return Rating() if evidence is None else Rating(value=evidence.value, evidence=evidence)


def _measures(rows: pd.DataFrame | None) -> list[Measure]:
    if rows is None:
        return []
    return [
        Measure(
            category=cat,
            kind=str(kind),
            description=_text(name),
            source="osm",
            layer=str(layer),
            uid=str(uid),
        )
        for cat, kind, name, layer, uid in zip(
            rows["category"], rows["kind"], rows["name"], rows["layer"], rows["uid"], strict=True
        )
    ]


# --------------------------------------------------------------------------- helpers


def _risk_parameter(name: str) -> float:
    params = reference.table("risk_parameters").set_index("name")
    if name not in params.index:
        raise ConfigError(f"risk_parameters: no parameter named {name!r}")
    return float(params.at[name, "value"])


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)  # type: ignore[call-overload]


def _jsonable(value: object) -> Any:
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
