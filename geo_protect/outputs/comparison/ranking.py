"""Cross-city comparison of assessed risk: hotspot rankings, charts and an HTML report.

How scores are compared (brief §1.5, Efus cross-city practice):

* Every city uses the same questionnaire, threat types and 1–5 scales, so ``R_100`` is
  on one scale everywhere.
* **Per threat type** the (space, threat) pairs of all cities with data are ranked by
  ``R_100``; ``percentile_in_threat`` is the share of pairs *of that threat type* with a
  score at or below this one (``rank(pct=True, method="max") × 100``). Normalisation never
  mixes threat types: a 90th percentile for UAV means "worse than 90 % of the assessed UAV
  scenarios", not anything about vehicle ramming.
* **Within a band** the scores of the coarse 5×5 matrix tie often; the continuous
  ``risk_index`` of the same evidence (people exposed × MJ of the most energetic
  hostile-vehicle approach, :func:`geo_protect.assess.consequence.scenario_risk_index`)
  orders tied scores: ranks are by ``R_100``, then ``risk_index``. Spaces tie only when
  both are equal (the same evidence), and the table shows both.
* **Overall** each space is ranked by its worst threat (``max_t R_100``, then the
  percentile of its ``risk_index`` within that threat type, ``index_pct_in_threat``: the
  index has a unit per threat type), then by the mean over its assessed threats (then the
  mean of its index percentiles over them, ``mean_index_pct``); the
  number of threats assessed is shown next to it, because a space with two assessed
  threats is not directly comparable with one with ten.
* Every space is shown by its ``label`` (its name, else ``park by Strada X``, see
  :mod:`geo_protect.analysis.labels`) next to its OSM id (``space_uid``).
* A city without data (no results, no assessment file, nothing assessed) appears as
  ``no data`` with the reason — never as zero risk. Not-assessed scenarios are NA.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_protect.assess.files import read_assessment
from geo_protect.assess.questionnaire import CityAssessment, Questionnaire, load_questionnaire
from geo_protect.assess.scores import score, site_summary
from geo_protect.store.base import Store

__all__ = [
    "ASSESSMENT_SUFFIXES",
    "CityResults",
    "Ranking",
    "city_results",
    "find_assessment_file",
    "rank_hotspots",
    "results_from_files",
    "results_from_store",
]

#: File suffixes :func:`results_from_files` looks for, in order.
ASSESSMENT_SUFFIXES = (".yaml", ".yml", ".json", ".csv")

_NO_RESULTS = "no results supplied"


@dataclass(frozen=True)
class CityResults:
    """The scored ``assessment`` layer of one city, or why there is none.

    Attributes
    ----------
    city
        City slug.
    scores
        The ``assessment`` layer (:func:`geo_protect.assess.scores.score`); may be empty.
    label
        Display name (the slug by default).
    reason
        Why the city has no (or partial) data, shown in the report.
    """

    city: str
    scores: pd.DataFrame
    label: str = ""
    reason: str = ""

    @classmethod
    def no_data(cls, city: str, reason: str, *, label: str = "") -> CityResults:
        """Results of a city without data, with the reason shown in the report."""
        return cls(city=city, scores=pd.DataFrame(), label=label, reason=reason)

    @property
    def has_data(self) -> bool:
        """Whether at least one scenario was scored."""
        return "risk_100" in self.scores and bool(self.scores["risk_100"].notna().any())


def city_results(
    city: str,
    assessment: CityAssessment,
    spaces: gpd.GeoDataFrame | None = None,
    *,
    label: str = "",
) -> CityResults:
    """Score a city's assessments into :class:`CityResults` (see :func:`.scores.score`).

    Parameters
    ----------
    city : str
        The city's slug.
    assessment : CityAssessment
        Its assessments.
    spaces : GeoDataFrame, optional
        Its ``public_space`` layer (for the names of the spaces).
    label : str
        Display name of the city (the slug when empty).

    Returns
    -------
    CityResults
        The scores, or :meth:`CityResults.no_data` when there are none.
    """
    scores = score(assessment, spaces)
    reason = "" if scores["risk_100"].notna().any() else "no scenario assessed yet"
    return CityResults(city=city, scores=scores, label=label, reason=reason)


def results_from_files(
    cities: Iterable[str],
    directory: Path,
    *,
    labels: Mapping[str, str] | None = None,
    questionnaire: Questionnaire | None = None,
) -> dict[str, CityResults]:
    """Read ``<directory>/<city>.yaml`` (or ``.yml``, ``.json``, ``.csv``) per city and score it.

    Cities without a file get :meth:`CityResults.no_data` saying which file is missing.

    Parameters
    ----------
    cities : Iterable of str
        City slugs.
    directory : Path
        Folder of the assessment files.
    labels : Mapping of str to str, optional
        Display name per city (the slug by default).
    questionnaire : Questionnaire, optional
        The questionnaire the files answer; the default one when not given.

    Returns
    -------
    dict of str to CityResults
        Per city, in the order of ``cities``.

    Raises
    ------
    ValidationError
        If a file exists but does not validate (fix it rather than drop the city).
    """
    q = questionnaire or load_questionnaire()
    labels = labels or {}
    out: dict[str, CityResults] = {}
    for city in cities:
        label = labels.get(city, city)
        path = find_assessment_file(directory, city)
        if path is None:
            out[city] = CityResults.no_data(
                city, f"no assessment file {city}.yaml/.json/.csv in {directory}", label=label
            )
            continue
        out[city] = city_results(city, read_assessment(path, questionnaire=q), label=label)
    return out


def find_assessment_file(directory: Path, city: str) -> Path | None:
    """``<directory>/<city>.yaml`` (or ``.yml``, ``.json``, ``.csv``), if one exists.

    Parameters
    ----------
    directory : Path
        Folder of the assessment files.
    city : str
        The city's slug.

    Returns
    -------
    Path or None
        The first file found, else None.
    """
    candidates = (Path(directory) / f"{city}{suffix}" for suffix in ASSESSMENT_SUFFIXES)
    return next((p for p in candidates if p.exists()), None)


def results_from_store(
    store: Store, cities: Iterable[str], *, labels: Mapping[str, str] | None = None
) -> dict[str, CityResults]:
    """The stored ``assessment`` layer of each city (``no data`` where it is missing or empty).

    Parameters
    ----------
    store : Store
        The store to read.
    cities : Iterable of str
        City slugs.
    labels : Mapping of str to str, optional
        Display name per city (the slug by default).

    Returns
    -------
    dict of str to CityResults
        Per city, in the order of ``cities``.
    """
    labels = labels or {}
    stored = set(store.cities())
    out: dict[str, CityResults] = {}
    for city in cities:
        label = labels.get(city, city)
        if city not in stored:
            out[city] = CityResults.no_data(city, "city not ingested in the store", label=label)
        elif "assessment" not in store.layers(city):
            out[city] = CityResults.no_data(
                city, "no assessment layer stored (pre-fill and score the city first)", label=label
            )
        else:
            scores = _with_labels(store, city, store.read_layer(city, "assessment"))
            reason = "" if scores["risk_100"].notna().any() else "no scenario assessed yet"
            out[city] = CityResults(city=city, scores=scores, label=label, reason=reason)
    return out


def _with_labels(store: Store, city: str, scores: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Scores whose missing labels are taken from the stored ``space_metric`` layer."""
    if "label" in scores and scores["label"].notna().all():
        return scores
    if "space_metric" not in store.layers(city):
        return scores
    labels = store.read_layer(city, "space_metric")["label"].astype("string")
    given = labels.reindex(scores["space_uid"].to_numpy()).to_numpy()
    current = scores["label"] if "label" in scores else pd.Series(pd.NA, index=scores.index)
    out = scores.copy()
    out["label"] = current.astype("string").fillna(pd.Series(given, index=scores.index))
    return out


@dataclass(frozen=True)
class Ranking:
    """The cross-city tables, before any chart or report is drawn.

    Attributes
    ----------
    hotspots
        Per-threat and overall rankings, plus one ``no data`` row per city without data.
    overall
        One row per space of the cities with data, ranked by worst threat.
    per_threat
        One row per assessed (space, threat), ranked within its threat type.
    coverage
        One row per city: status (``data`` or ``no data: reason``) and counts.
    matrix
        City × threat maximum ``R_100`` (NaN where not assessed or no data).
    """

    hotspots: pd.DataFrame
    overall: pd.DataFrame
    per_threat: pd.DataFrame
    coverage: pd.DataFrame
    matrix: pd.DataFrame


def rank_hotspots(results: Mapping[str, CityResults | None], threats: list[str]) -> Ranking:
    """Rank every assessed space of every city, per threat type and overall.

    Parameters
    ----------
    results : Mapping[str, CityResults | None]
        City slug → its results (``None`` = no results for that city).
    threats : list[str]
        Threat codes, in the order of the report.

    Returns
    -------
    Ranking
        The tables; see the module docstring for the method.

    Examples
    --------
    >>> r = rank_hotspots({"x": CityResults.no_data("x", "no spaces")}, ["VEHICLE_RAMMING"])
    >>> r.coverage["status"].tolist()
    ['no data: no spaces']
    """
    coverage = _coverage(results)
    long = _long(results)
    per_threat = _per_threat(long, threats)
    overall = _overall(long)
    hotspots = _hotspots(per_threat, overall, coverage)
    matrix = _matrix(long, coverage, threats)
    return Ranking(hotspots, overall, per_threat, coverage, matrix)


# --------------------------------------------------------------------------- tables


def _coverage(results: Mapping[str, CityResults | None]) -> pd.DataFrame:
    rows = []
    for city, res in results.items():
        if res is None or not res.has_data:
            reason = _NO_RESULTS if res is None else (res.reason or "no scenario assessed")
            rows.append(
                {
                    "city": city,
                    "label": (res.label if res else "") or city,
                    "status": f"no data: {reason}",
                    "has_data": False,
                    "n_spaces": pd.NA,
                    "n_scored": pd.NA,
                    "n_threats_scored": pd.NA,
                }
            )
            continue
        s = res.scores
        scored = s["risk_100"].notna()
        rows.append(
            {
                "city": city,
                "label": res.label or city,
                "status": "data" + (f" ({res.reason})" if res.reason else ""),
                "has_data": True,
                "n_spaces": int(s["space_uid"].nunique()),
                "n_scored": int(scored.sum()),
                "n_threats_scored": int(s.loc[scored, "threat"].nunique()),
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=["city", "label", "status", "has_data", "n_spaces", "n_scored", "n_threats_scored"],
    )
    for c in ("n_spaces", "n_scored", "n_threats_scored"):
        frame[c] = frame[c].astype("Int64")
    return frame


def _long(results: Mapping[str, CityResults | None]) -> pd.DataFrame:
    cols = ["space_uid", "name", "label", "threat", "likelihood", "consequence", "risk_100",
            "band", "risk_index"]  # fmt: skip
    parts = []
    for city, res in results.items():
        if res is None or not res.has_data:
            continue
        part = pd.DataFrame(res.scores).reindex(columns=cols).reset_index(drop=True)
        part["label"] = part["label"].astype("string").fillna(part["name"].astype("string"))
        part["label"] = part["label"].fillna(part["space_uid"].astype("string"))
        part.insert(0, "city_label", res.label or city)
        part.insert(0, "city", city)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["city", "city_label", *cols])
    frame = pd.concat(parts, ignore_index=True)
    frame["risk_100"] = frame["risk_100"].astype("Float64")
    frame["risk_index"] = frame["risk_index"].astype("Float64")
    by = frame.groupby("threat")["risk_index"]  # the index's unit is the threat's own
    frame["index_pct_in_threat"] = (by.rank(pct=True, method="max") * 100).astype("Float64")
    return frame


def _competition_rank(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Competition ranks ("1, 2, 2, 4") of rows already sorted by ``keys`` (descending)."""
    key = pd.Series(
        list(zip(*(frame[k].astype("Float64").fillna(-1.0) for k in keys), strict=True)),
        index=frame.index,
    ).factorize()[0]
    position = pd.Series(np.arange(1, len(frame) + 1), index=frame.index)
    return position.groupby(key).transform("min").astype("Int64")


def _per_threat(long: pd.DataFrame, threats: list[str]) -> pd.DataFrame:
    scored = long[long["risk_100"].notna()].copy()
    by = scored.groupby("threat")["risk_100"]
    scored["percentile_in_threat"] = (by.rank(pct=True, method="max") * 100).astype("Float64")
    order = {t: i for i, t in enumerate(threats)}
    scored["_order"] = scored["threat"].map(order).fillna(len(order))
    scored = scored.sort_values(
        ["_order", "risk_100", "risk_index", "city", "space_uid"],
        ascending=[True, False, False, True, True],
        na_position="last",
        kind="stable",
    )
    parts = [_competition_rank(g, ["risk_100", "risk_index"]) for _, g in scored.groupby("_order")]
    scored["rank"] = pd.concat(parts) if parts else pd.Series(dtype="Int64")
    return scored.drop(columns="_order")


def _overall(long: pd.DataFrame) -> pd.DataFrame:
    cols = ["city", "city_label", "space_uid", "name", "label", "worst_threat",
            "max_risk_100", "worst_band", "risk_index", "index_pct_in_threat", "mean_risk_100",
            "mean_index_pct", "n_assessed", "n_threats", "rank"]  # fmt: skip
    parts = []
    for (city, label), g in long.groupby(["city", "city_label"], sort=False):
        summary = site_summary(g).reset_index()
        summary.insert(0, "city_label", label)
        summary.insert(0, "city", city)
        parts.append(summary)
    if not parts:
        return pd.DataFrame(columns=cols)
    frame = pd.concat(parts, ignore_index=True)
    scored = long[long["risk_100"].notna()]  # last tie-break: the index over every threat
    mean_pct = scored.groupby(["city", "space_uid"])["index_pct_in_threat"].mean()
    key = pd.MultiIndex.from_arrays([frame["city"], frame["space_uid"]])
    frame["mean_index_pct"] = mean_pct.reindex(key).to_numpy()
    keys = ["max_risk_100", "index_pct_in_threat", "mean_risk_100", "mean_index_pct"]
    frame = frame.sort_values(
        [*keys, "city", "space_uid"],
        ascending=[False, False, False, False, True, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    # competition ranking ("1, 2, 2, 4"), as per threat: ties share the best rank
    frame["rank"] = _competition_rank(frame, keys)
    frame.loc[frame["max_risk_100"].isna(), "rank"] = pd.NA
    return frame[cols]


def _hotspots(
    per_threat: pd.DataFrame, overall: pd.DataFrame, coverage: pd.DataFrame
) -> pd.DataFrame:
    cols = ["scope", "rank", "city", "city_label", "space_uid", "name", "label", "threat",
            "risk_100", "band", "risk_index", "percentile_in_threat", "mean_risk_100",
            "n_assessed", "status"]  # fmt: skip
    a = per_threat.assign(scope=per_threat["threat"], status="data")
    ranked = overall[overall["rank"].notna()]
    o = pd.DataFrame(
        {
            "scope": "OVERALL",
            "rank": ranked["rank"],
            "city": ranked["city"],
            "city_label": ranked["city_label"],
            "space_uid": ranked["space_uid"],
            "name": ranked["name"],
            "label": ranked["label"],
            "threat": ranked["worst_threat"],
            "risk_100": ranked["max_risk_100"],
            "band": ranked["worst_band"],
            "risk_index": ranked["risk_index"],
            "mean_risk_100": ranked["mean_risk_100"],
            "n_assessed": ranked["n_assessed"],
            "status": "data",
        }
    )
    nd = coverage[~coverage["has_data"]]
    n = pd.DataFrame(
        {"scope": "ALL", "city": nd["city"], "city_label": nd["label"], "status": nd["status"]}
    )
    parts = [p.reindex(columns=cols) for p in (o, a, n) if not p.empty]
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    for c in ("rank", "n_assessed"):
        out[c] = out[c].astype("Int64")
    for c in ("risk_100", "risk_index", "percentile_in_threat", "mean_risk_100"):
        out[c] = out[c].astype("Float64")
    return out


def _matrix(long: pd.DataFrame, coverage: pd.DataFrame, threats: list[str]) -> pd.DataFrame:
    labels = coverage.set_index("city")["label"]
    m = long.pivot_table(index="city", columns="threat", values="risk_100", aggfunc="max")
    m = m.reindex(index=coverage["city"], columns=threats).astype(float)
    m.index = pd.Index([labels[c] for c in m.index], name="city")
    return m
