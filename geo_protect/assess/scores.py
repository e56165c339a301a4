"""Risk scores of assessed scenarios, their bands, site roll-ups and explanations.

Per (space, threat) with likelihood ``L`` and consequence ``C`` on the 1–5 scale
(brief §1.5, §4.3)::

    R_raw = L × C                                   (1–25, the native 5×5 matrix)
    R_100 = 100 × (L·C − min²) / (max² − min²)      (= 100 × (L·C − 1) / 24 for 1–5)
    band  = the risk_bands row whose [lower_lc, upper_lc] holds R_raw

The band comes from the native matrix (bands are not linear in R_100). Within a band the
continuous ``risk_index`` (people exposed × MJ of the most energetic approach,
:func:`geo_protect.assess.consequence.scenario_risk_index`) orders the spaces. A scenario
without ``L`` or ``C`` is *not assessed*: its score is NA, never 0. Per site the worst
threat (max) and the mean over assessed threats are reported, never the sum.

The live modifier of the control room is in :mod:`geo_protect.live.risk`. All constants
are in ``data/reference/risk_parameters.csv`` and ``risk_bands.csv``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pydantic
import shapely

from geo_protect import reference
from geo_protect.assess.consequence import scenario_risk_index
from geo_protect.assess.files import ratings_frame
from geo_protect.assess.questionnaire import (
    RATINGS,
    CityAssessment,
    Rating,
    Scenario,
    SiteAssessment,
    _pydantic_problems,
)
from geo_protect.errors import ConfigError, ValidationError
from geo_protect.schema import ASSESSMENT_LAYER, WGS84, conform

__all__ = [
    "ASSESSMENT_LAYER",
    "Explanation",
    "assessment_from_layer",
    "risk_100",
    "risk_band",
    "score",
    "site_summary",
    "why",
]


def _params() -> pd.Series:
    return reference.table("risk_parameters").set_index("name")["value"]


def risk_100(
    likelihood: pd.Series,
    consequence: pd.Series,
    *,
    rating_min: float | None = None,
    rating_max: float | None = None,
) -> pd.Series:
    """Normalised risk ``100 × (L·C − min²) / (max² − min²)``, NA where L or C is NA.

    Examples
    --------
    >>> risk_100(pd.Series([1, 3, 5]), pd.Series([1, 4, 5])).round(2).tolist()
    [0.0, 45.83, 100.0]
    """
    p = _params()
    lo = float(p["rating_min"]) if rating_min is None else rating_min
    hi = float(p["rating_max"]) if rating_max is None else rating_max
    raw = likelihood.astype("Float64") * consequence.astype("Float64")
    out = 100.0 * (raw - lo * lo) / (hi * hi - lo * lo)
    return out.astype("Float64").rename("risk_100")


def risk_band(risk_raw: pd.Series, *, bands: pd.DataFrame | None = None) -> pd.Series:
    """Band (``low`` … ``very high``) of native scores ``L·C``, NA where the score is NA.

    Examples
    --------
    >>> risk_band(pd.Series([1, 6, 12, 25])).tolist()
    ['low', 'medium', 'high', 'very high']
    """
    b = (reference.table("risk_bands") if bands is None else bands).sort_values("lower_lc")
    lower = b["lower_lc"].to_numpy(dtype=float)
    upper = b["upper_lc"].to_numpy(dtype=float)
    if np.any(lower[1:] <= upper[:-1]):
        raise ConfigError("risk_bands: bands overlap")
    x = risk_raw.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    idx = np.clip(np.searchsorted(lower, x, side="right") - 1, 0, len(b) - 1)
    ok = ~np.isnan(x) & (x >= lower[idx]) & (x <= upper[idx])
    if np.any(~np.isnan(x) & ~ok):
        bad = x[~np.isnan(x) & ~ok][0]
        raise ConfigError(f"risk_bands: no band holds the score {bad:g}")
    labels = np.where(ok, b["band"].to_numpy(dtype=object)[idx], None)
    return pd.Series(pd.array(labels, dtype="string"), index=risk_raw.index, name="band")


def score(
    assessment: CityAssessment,
    spaces: gpd.GeoDataFrame | None = None,
    *,
    bands: pd.DataFrame | None = None,
    rating_min: float | None = None,
    rating_max: float | None = None,
) -> gpd.GeoDataFrame:
    """The ``assessment`` layer of a city: one scored Point per (space, threat).

    Parameters
    ----------
    assessment
        The city's assessments (pre-filled and/or filled by assessors).
    spaces
        A layer with the spaces' geometry (``public_space`` or ``space_metric``, WGS84);
        by default each site's recorded ``location``. Its ``label`` column, when it has
        one, labels the spaces (else their name, else their uid).
    bands, rating_min, rating_max
        Reference values (``risk_bands``, ``risk_parameters``) by default.

    Returns
    -------
    GeoDataFrame
        Conformed to :data:`ASSESSMENT_LAYER`, indexed ``"{space_uid}|{threat}"``.

    Raises
    ------
    ValidationError
        If a site has no geometry (not in ``spaces`` and no ``location``).
    """
    frame = ratings_frame(assessment)
    raw = (frame["likelihood"].astype("Int64") * frame["consequence"].astype("Int64")).astype(
        "Int64"
    )
    frame["risk_raw"] = raw
    frame["risk_100"] = risk_100(
        frame["likelihood"], frame["consequence"], rating_min=rating_min, rating_max=rating_max
    ).astype("float64")
    frame["band"] = risk_band(raw, bands=bands)
    frame["risk_index"] = _risk_indices(assessment)
    frame["label"] = _labels(frame, spaces)
    frame["why"] = _short_why(frame)
    frame["assessed_on"] = frame["date"]
    frame["questionnaire_version"] = assessment.questionnaire_version
    frame["reference_version"] = assessment.reference_version or ""
    frame.index = pd.Index(frame["space_uid"] + "|" + frame["threat"], dtype="string", name="uid")
    geometry = _points(assessment, frame["space_uid"], spaces)
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, index=frame.index, crs=WGS84))
    return conform("assessment", gdf)


def _risk_indices(assessment: CityAssessment) -> np.ndarray:
    """The risk index of every scenario, in :func:`ratings_frame` order (NaN: none)."""
    values = [scenario_risk_index(sc)[0] for site in assessment.sites for sc in site.scenarios]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _labels(frame: pd.DataFrame, spaces: gpd.GeoDataFrame | None) -> pd.Series:
    """The spaces' ``label`` (from ``spaces``), else their name, else their uid."""
    name = frame["name"].astype("string").mask(frame["name"].astype("string") == "")
    label = name.fillna(frame["space_uid"].astype("string"))
    if spaces is not None and "label" in spaces.columns:
        given = spaces["label"].astype("string").reindex(frame["space_uid"].to_numpy())
        label = pd.Series(given.to_numpy(), index=frame.index, dtype="string").fillna(label)
    return label


def _short_why(frame: pd.DataFrame) -> pd.Series:
    """One line per row, e.g. ``VEHICLE_RAMMING: L 5 × C 5 = 25 → R_100 100.0 (very high)``."""
    lik = frame["likelihood"].astype("string").fillna("?")
    con = frame["consequence"].astype("string").fillna("?")
    head = frame["threat"].astype("string") + ": L " + lik + " × C " + con
    scored = frame["risk_100"].notna()
    r100 = frame["risk_100"].astype("float64").map("{:.1f}".format).astype("string")
    index = frame["risk_index"].map(lambda x: "" if pd.isna(x) else f", index {x:,.0f}")
    tail = (
        " = " + frame["risk_raw"].astype("string") + " → R_100 " + r100
        + " (" + frame["band"].astype("string") + index.astype("string") + ")"
    )  # fmt: skip
    return (head + tail).where(scored, head + " → not assessed")


def _points(
    assessment: CityAssessment, space_uid: pd.Series, spaces: gpd.GeoDataFrame | None
) -> np.ndarray:
    if spaces is not None:
        if spaces.crs is None or not spaces.crs.equals(WGS84):
            raise ValidationError(f"spaces: CRS must be {WGS84}, got {spaces.crs}")
        pts = spaces.geometry.representative_point()
        geoms = pts.reindex(space_uid.to_numpy()).to_numpy()
    else:
        loc = {
            s.space_uid: shapely.Point(*s.location)
            for s in assessment.sites
            if s.location is not None
        }
        geoms = np.array([loc.get(u) for u in space_uid], dtype=object)
    missing = shapely.is_missing(geoms)
    if missing.any():
        uid = space_uid.to_numpy()[missing][0]
        raise ValidationError(f"site {uid}: no geometry (not in the spaces layer, no location)")
    return np.asarray(geoms, dtype=object)


def site_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per space: the worst threat (max ``risk_100``) and the mean over assessed threats.

    Parameters
    ----------
    scores
        The ``assessment`` layer (or any frame with ``space_uid, name, threat, risk_100,
        band``).

    Returns
    -------
    DataFrame
        Indexed by ``space_uid``: ``name, label, worst_threat, max_risk_100, worst_band,
        risk_index, index_pct_in_threat, mean_risk_100, n_assessed, n_threats``: the worst
        threat has the highest ``R_100``, then the highest ``risk_index`` percentile within
        its threat type (the index has a unit per threat; computed here unless ``scores``
        has ``index_pct_in_threat``). Spaces with no assessed threat have NA scores.
    """
    frame = pd.DataFrame(scores.drop(columns="geometry", errors="ignore"))
    frame["risk_100"] = frame["risk_100"].astype("Float64")
    if "risk_index" not in frame:
        frame["risk_index"] = np.nan
    frame["risk_index"] = frame["risk_index"].astype("Float64")
    if "label" not in frame:
        frame["label"] = frame["name"]
    if "index_pct_in_threat" not in frame:  # the index has a unit per threat type
        pct = frame.groupby("threat")["risk_index"].rank(pct=True, method="max") * 100
        frame["index_pct_in_threat"] = pct.astype("Float64")
    tie = "index_pct_in_threat"
    ordered = frame.sort_values(["risk_100", tie], ascending=False, na_position="last")
    worst = ordered.groupby("space_uid", sort=False).head(1).set_index("space_uid")
    assessed = frame["risk_100"].notna()
    out = pd.DataFrame(
        {
            "name": worst["name"],
            "label": worst["label"].astype("string"),
            "worst_threat": worst["threat"].where(worst["risk_100"].notna()),
            "max_risk_100": worst["risk_100"],
            "worst_band": worst["band"],
            "risk_index": worst["risk_index"].where(worst["risk_100"].notna()),
            "index_pct_in_threat": worst[tie].astype("Float64").where(worst["risk_100"].notna()),
            "mean_risk_100": frame[assessed].groupby("space_uid")["risk_100"].mean(),
            "n_assessed": assessed.groupby(frame["space_uid"]).sum().astype("Int64"),
            "n_threats": frame.groupby("space_uid").size().astype("Int64"),
        }
    )
    out["worst_threat"] = out["worst_threat"].astype("string")
    out["mean_risk_100"] = out["mean_risk_100"].astype("Float64")
    out.index = out.index.astype("string").rename("space_uid")
    return out.sort_values(
        ["max_risk_100", tie, "mean_risk_100"], ascending=False, na_position="last"
    )


@dataclass
class Explanation:
    """Everything behind one score: ratings, evidence, overrides, formula and band."""

    space_uid: str
    name: str
    threat: str
    status: str
    ratings: dict[str, int | None]
    evidence: dict[str, dict[str, Any]]
    overrides: dict[str, list[dict[str, Any]]]
    risk_raw: int | None
    risk_100: float | None
    band: str | None
    formula: str
    band_rule: str
    questionnaire_version: str
    reference_version: str | None
    assessors: list[str] = field(default_factory=list)
    date: str | None = None
    risk_index: float | None = None
    index_rule: str = ""
    label: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for the service and the exports)."""
        return asdict(self)

    def text(self) -> str:
        """A few lines of plain text for a report or a tooltip."""
        place = self.label or self.name
        head = f"{place} ({self.space_uid})" if place else self.space_uid
        lines = [f"{head} – {self.threat}: {self.formula}"]
        if self.band:
            lines.append(f"band {self.band} ({self.band_rule})")
        if self.index_rule:
            lines.append(self.index_rule)
        for r in RATINGS:
            ev = self.evidence.get(r)
            if ev:
                lines.append(f"{r} = {ev['value']} pre-filled: {ev['rule']}")
                inputs = ev.get("inputs") or {}
                shown = ", ".join(
                    f"{k} = {_short(v)}" for k, v in inputs.items() if not isinstance(v, list)
                )
                if shown:
                    lines.append(f"    from {shown}")
            for o in self.overrides.get(r, []):
                change = (
                    f"set to {o['value']}"
                    if o["previous"] is None
                    else f"overridden {o['previous']} → {o['value']}"
                )
                lines.append(f"{r} {change} by {o['by']} on {o['at']}: {o['reason']}")
        return "\n".join(lines)


def _short(value: object) -> str:
    return f"{value:,.0f}" if isinstance(value, float) and abs(value) >= 100 else str(value)


def why(
    assessment: CityAssessment,
    space_uid: str,
    threat: str,
    *,
    bands: pd.DataFrame | None = None,
    rating_min: float | None = None,
    rating_max: float | None = None,
    label: str = "",
) -> Explanation:
    """Explain the score of ``threat`` at ``space_uid``: inputs, evidence, overrides, formula,
    and the ``risk_index`` that orders a band; ``label`` (``space_metric``) names the space.

    Raises
    ------
    ValidationError
        If the site or its scenario of ``threat`` does not exist.
    """
    site = assessment.site(space_uid)
    sc = site.scenario(threat)
    p = _params()
    lo = float(p["rating_min"]) if rating_min is None else rating_min
    hi = float(p["rating_max"]) if rating_max is None else rating_max
    ratings = {r: sc.rating(r).value for r in RATINGS}
    lik, con = ratings["likelihood"], ratings["consequence"]
    index, index_rule = scenario_risk_index(sc)
    b = reference.table("risk_bands") if bands is None else bands
    if lik is None or con is None:
        missing = " and ".join(
            n for n, v in (("likelihood", lik), ("consequence", con)) if v is None
        )
        raw, r100, band = None, None, None
        formula = (
            f"not assessed: {missing} missing (R_100 = 100 × (L·C − {lo:g}²)/({hi:g}² − {lo:g}²))"
        )
        band_rule = ""
        status = "not assessed"
    else:
        raw = lik * con
        r100 = float(risk_100(pd.Series([lik]), pd.Series([con]), rating_min=lo, rating_max=hi)[0])
        band = str(risk_band(pd.Series([raw]), bands=b)[0])
        row = b[b["band"] == band].iloc[0]
        formula = (
            f"R_100 = 100 × (L·C − {lo:g}²)/({hi:g}² − {lo:g}²) = 100 × ({lik}·{con} − {lo * lo:g})"
            f"/{hi * hi - lo * lo:g} = {r100:.1f}"
        )
        band_rule = (
            f"risk_bands: {row['lower_lc']} ≤ L·C = {raw} ≤ {row['upper_lc']} → {band}; "
            f"source: {row['source']}"
        )
        status = "scored"
    return Explanation(
        space_uid=space_uid,
        name=site.name,
        threat=threat,
        status=status,
        ratings=ratings,
        evidence={
            r: sc.rating(r).evidence.model_dump(mode="json")  # type: ignore[union-attr]
            for r in RATINGS
            if sc.rating(r).evidence is not None
        },
        overrides={
            r: [o.model_dump(mode="json") for o in sc.rating(r).overrides]
            for r in RATINGS
            if sc.rating(r).overrides
        },
        risk_raw=raw,
        risk_100=r100,
        band=band,
        formula=formula,
        band_rule=band_rule,
        questionnaire_version=assessment.questionnaire_version,
        reference_version=assessment.reference_version,
        assessors=list(sc.assessors),
        date=sc.date.isoformat() if sc.date else None,
        risk_index=index if status == "scored" else None,
        index_rule=index_rule if status == "scored" else "",
        label=label,
    )


def assessment_from_layer(layer: gpd.GeoDataFrame, *, city: str) -> CityAssessment:
    """The assessment a stored ``assessment`` layer was scored from (the inverse of :func:`score`).

    Every rating comes back with its value, evidence and override history (who, when,
    why, previous → new value), with the scenario's assessors and date, so that
    :func:`why` explains what is stored, overrides included. Site answers, measures,
    narratives and rationales are not in the layer (they stay in the assessors' file).

    Parameters
    ----------
    layer : GeoDataFrame
        The stored ``assessment`` layer of one city (conformed to :data:`ASSESSMENT_LAYER`).
    city : str
        The city's slug.

    Returns
    -------
    CityAssessment
        One site per ``space_uid`` (its location the layer's point), one scenario per row.

    Raises
    ------
    ValidationError
        If a row's evidence or overrides do not make a valid rating (naming the row).
    """
    frame = pd.DataFrame(layer)
    sites: dict[str, SiteAssessment] = {}
    for uid, row in frame.iterrows():
        space_uid = str(row["space_uid"])
        site = sites.get(space_uid)
        if site is None:
            point = row["geometry"]
            site = SiteAssessment(
                space_uid=space_uid,
                name=_text(row.get("name")),
                status="final" if _text(row.get("status")) == "final" else "draft",
                location=None if point is None else (float(point.x), float(point.y)),
            )
            sites[space_uid] = site
        site.scenarios.append(_scenario_from_layer_row(row, f"assessment layer, row {uid}"))
    versions = frame["questionnaire_version"] if len(frame) else pd.Series(["?"])
    references = frame["reference_version"].dropna() if len(frame) else pd.Series([], dtype=str)
    return CityAssessment(
        city=city,
        questionnaire_version=str(versions.iloc[0]),
        reference_version=str(references.iloc[0]) or None if len(references) else None,
        sites=list(sites.values()),
    )


def _scenario_from_layer_row(row: pd.Series, where: str) -> Scenario:
    evidence = _json(row.get("evidence"))
    overrides = _json(row.get("overrides"))
    ratings: dict[str, Rating] = {}
    for r in RATINGS:
        value = row.get(r)
        try:
            ratings[r] = Rating.model_validate(
                {
                    "value": None if pd.isna(value) else int(value),
                    "evidence": evidence.get(r),
                    "overrides": overrides.get(r, []),
                }
            )
        except pydantic.ValidationError as exc:
            raise ValidationError(f"{where}, {r}: {_pydantic_problems(exc)}") from exc
    assessors = [a.strip() for a in _text(row.get("assessors")).split(";") if a.strip()]
    date = _text(row.get("assessed_on"))
    return Scenario.model_validate(
        {
            "threat": str(row["threat"]),
            "assessors": assessors,
            "date": dt.date.fromisoformat(date) if date else None,
            **ratings,
        }
    )


def _json(value: object) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    text = _text(value)
    parsed = json.loads(text) if text.strip() else {}
    return parsed if isinstance(parsed, dict) else {}


def _text(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)
