"""Printable HTML report per assessed site (for the assessors; holds vulnerability data)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geo_protect import reference
from geo_protect.assess.questionnaire import (
    RATINGS,
    CityAssessment,
    Questionnaire,
    Scenario,
    SiteAssessment,
    load_questionnaire,
)
from geo_protect.assess.scores import site_summary, why
from geo_protect.errors import ValidationError
from geo_protect.outputs.site_plan import PlanLayers, plan_layers, site_plan
from geo_protect.outputs.templates import environment

__all__ = ["site_report", "site_reports"]


def site_report(
    assessment: CityAssessment,
    space_uid: str,
    scores: pd.DataFrame,
    path: Path,
    *,
    city_label: str = "",
    questionnaire: Questionnaire | None = None,
    generated: dt.date | None = None,
    layers: Mapping[str, gpd.GeoDataFrame] | PlanLayers | None = None,
    crs: str | None = None,
) -> Path:
    """Write the printable HTML assessment report of one space.

    Parameters
    ----------
    assessment : CityAssessment
        The city's assessments.
    space_uid : str
        The space to report.
    scores : DataFrame
        The city's ``assessment`` layer (:func:`geo_protect.assess.scores.score`).
    path : Path
        The HTML file to write.
    city_label : str
        Display name of the city (``assessment.city`` when empty).
    questionnaire : Questionnaire, optional
        The questionnaire (for question texts); the default one when not given.
    generated : datetime.date, optional
        The date printed (today by default).
    layers : mapping of str to GeoDataFrame, or PlanLayers, optional
        The city's layers, for the site plan (:func:`~geo_protect.outputs.site_plan.site_plan`);
        no plan without them, or when the space is not in their ``public_space`` layer.
    crs : str, optional
        The city's metric CRS (needed with ``layers``).

    Returns
    -------
    Path
        ``path``, written (its folder created if needed).

    Raises
    ------
    ValidationError
        When ``layers`` are given without ``crs``.
    """
    q = questionnaire or load_questionnaire()
    site = assessment.site(space_uid)
    mine = scores[scores["space_uid"] == space_uid]
    summary = site_summary(mine).iloc[0].to_dict() if len(mine) else {}
    questions = [
        {"text": qq.text, "answer": site.site.get(qq.id), "required": qq.required}
        for qq in q.site_questions
    ]
    scenarios = _scenarios(assessment, space_uid, site, q)
    bands = reference.table("risk_bands")
    place = site.name or str(summary.get("label") or "") or space_uid
    plan = _plan(space_uid, layers, crs, place)
    html = (
        environment()
        .get_template("site_report.html.j2")
        .render(
            city=city_label or assessment.city,
            site=site,
            summary=summary,
            questions=questions,
            measures=[m.model_dump() for m in site.measures],
            scenarios=scenarios,
            colours=dict(zip(bands["band"], bands["colour"], strict=True)),
            questionnaire_version=assessment.questionnaire_version,
            reference_version=assessment.reference_version or "",
            generated=(generated or dt.date.today()).isoformat(),
            plan=plan,
        )
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def _plan(
    space_uid: str,
    layers: Mapping[str, gpd.GeoDataFrame] | PlanLayers | None,
    crs: str | None,
    place: str,
) -> dict[str, str] | None:
    """The site plan of a report (its SVG and data date), or None without layers."""
    if layers is None:
        return None
    if crs is None:
        raise ValidationError("site report: a site plan needs the city's metric CRS (crs=)")
    plan = layers if isinstance(layers, PlanLayers) else plan_layers(layers, crs=crs)
    spaces = plan["public_space"].frame
    if space_uid not in spaces.index:
        return None
    date = spaces.at[space_uid, "data_date"] if "data_date" in spaces else None
    return {
        "svg": site_plan(space_uid, plan, crs=crs, title=f"Site plan – {place}"),
        "crs": crs,
        "data_date": date if isinstance(date, str) else "unknown",
    }


def _scenarios(
    assessment: CityAssessment, space_uid: str, site: SiteAssessment, q: Questionnaire
) -> list[dict[str, Any]]:
    """What the report shows of each threat scenario of a site: its story and ratings."""
    labels = {t.code: t.label for t in q.threats}
    scale = q.scale_of("likelihood")
    return [_scenario(assessment, space_uid, sc, labels, scale.labels) for sc in site.scenarios]


def _scenario(
    assessment: CityAssessment,
    space_uid: str,
    sc: Scenario,
    labels: Mapping[str, str],
    scale_labels: Mapping[int, str],
) -> dict[str, Any]:
    """One scenario: threat, narrative, assessors and each rating with its evidence."""
    ex = why(assessment, space_uid, sc.threat)
    return {
        "threat": sc.threat,
        "label": labels.get(sc.threat, sc.threat),
        "narrative": sc.narrative,
        "rationale": sc.rationale,
        "assessors": ", ".join(sc.assessors),
        "date": sc.date.isoformat() if sc.date else "",
        "ratings": [
            {
                "name": r,
                "value": ex.ratings[r],
                "label": _label(scale_labels, ex.ratings[r]),
                "evidence": ex.evidence.get(r),
                "overrides": ex.overrides.get(r, []),
            }
            for r in RATINGS
        ],
        "explanation": ex,
    }


def _label(labels: Mapping[int, str], value: int | None) -> str:
    return "" if value is None else labels.get(value, "")


def site_reports(
    assessment: CityAssessment,
    scores: pd.DataFrame,
    out_dir: Path,
    *,
    city_label: str = "",
    questionnaire: Questionnaire | None = None,
    layers: Mapping[str, gpd.GeoDataFrame] | None = None,
    crs: str | None = None,
) -> list[Path]:
    """Write :func:`site_report` for every site, named ``<city>_<uid>.html`` (``/`` → ``-``).

    Parameters
    ----------
    assessment : CityAssessment
        The city's assessments.
    scores : DataFrame
        The city's ``assessment`` layer (:func:`geo_protect.assess.scores.score`).
    out_dir : Path
        Folder of the reports.
    city_label : str
        Display name of the city (``assessment.city`` when empty).
    questionnaire : Questionnaire, optional
        The questionnaire (for question texts); the default one when not given.
    layers : mapping of str to GeoDataFrame, optional
        The city's layers: each report then shows its site plan (the layers are projected
        and indexed once, :func:`~geo_protect.outputs.site_plan.plan_layers`).
    crs : str, optional
        The city's metric CRS (needed with ``layers``).

    Returns
    -------
    list of Path
        The reports written, in the order of ``assessment.sites``.
    """
    q = questionnaire or load_questionnaire()
    if layers is not None and crs is None:
        raise ValidationError("site reports: site plans need the city's metric CRS (crs=)")
    plans = None if layers is None or crs is None else plan_layers(layers, crs=crs)
    return [
        site_report(
            assessment,
            s.space_uid,
            scores,
            Path(out_dir)
            / f"{assessment.city}_{s.space_uid.replace('/', '-').replace('|', '-')}.html",
            city_label=city_label,
            questionnaire=q,
            layers=plans,
            crs=crs,
        )
        for s in assessment.sites
    ]
