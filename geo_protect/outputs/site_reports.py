"""Printable HTML report per assessed site (for the assessors; holds vulnerability data)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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

    Returns
    -------
    Path
        ``path``, written (its folder created if needed).
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
        )
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


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

    Returns
    -------
    list of Path
        The reports written, in the order of ``assessment.sites``.
    """
    q = questionnaire or load_questionnaire()
    return [
        site_report(
            assessment,
            s.space_uid,
            scores,
            Path(out_dir)
            / f"{assessment.city}_{s.space_uid.replace('/', '-').replace('|', '-')}.html",
            city_label=city_label,
            questionnaire=q,
        )
        for s in assessment.sites
    ]
