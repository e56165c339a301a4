"""Merge a fresh pre-fill into the assessors' file without losing their work.

The main job re-runs the pre-fill on every run; the file the field teams fill in must
keep everything they did. :func:`merge_prefill` takes the assessment read from their file
and the fresh pre-fill and returns the merged assessment and a :class:`MergeReport`:

* kept from the assessors: every override (with its history), every rating they entered
  directly, every site answer, the site status, their measures (and their edits of OSM
  measures), and the scenario narrative, rationale, assessors and date;
* taken from the fresh pre-fill: the space's name and location, every rating nobody
  overrode (new value, new evidence), the derived likelihood (from the merged
  attractiveness and vulnerability, unless overridden), the OSM measures found now;
* spaces no longer in the data are reported; those holding assessors' work stay in the
  file, the others (pure pre-fill) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from geo_protect.assess.model import (
    PREFILLED_ANSWERS,
    RATINGS,
    CityAssessment,
    Measure,
    Rating,
    Scenario,
    SiteAssessment,
)

__all__ = ["MergeReport", "merge_prefill"]

_FIELDS = ("narrative", "rationale", "assessors", "date")


@dataclass
class MergeReport:
    """What :func:`merge_prefill` kept from the assessors' file.

    Attributes
    ----------
    overrides : int
        Override records kept (every entry of every rating's history).
    answers : int
        Assessors' answers kept: site answers that differ from the pre-fill, ratings
        entered directly, filled narrative / rationale / assessors / date fields and
        ``final`` statuses.
    measures : int
        Measures added or edited by the assessors.
    added : list of str
        Spaces new in the data (pre-filled only).
    gone_kept : list of str
        Spaces no longer in the data whose assessors' work stays in the file.
    gone_dropped : list of str
        Spaces no longer in the data without assessors' work (dropped).
    """

    overrides: int = 0
    answers: int = 0
    measures: int = 0
    added: list[str] = field(default_factory=list)
    gone_kept: list[str] = field(default_factory=list)
    gone_dropped: list[str] = field(default_factory=list)

    def summary(self, source: str) -> str:
        """One line for the run's output, e.g. ``kept 3 overrides and 2 answers from x.yaml``."""
        parts = [
            _count(self.overrides, "override"),
            _count(self.answers, "answer"),
        ]
        if self.measures:
            parts.append(_count(self.measures, "measure"))
        if self.overrides or self.answers or self.measures:
            line = f"kept {', '.join(parts[:-1])} and {parts[-1]} from {source}"
        else:
            line = f"no assessors' work in {source} yet: refreshed from the evidence"
        if self.gone_kept:
            line += (
                f"; {_count(len(self.gone_kept), 'space')} no longer in the data, "
                f"kept in the file: {', '.join(self.gone_kept)}"
            )
        if self.gone_dropped:
            line += (
                f"; dropped {_count(len(self.gone_dropped), 'unassessed space')} "
                f"no longer in the data: {', '.join(self.gone_dropped)}"
            )
        return line


def merge_prefill(
    existing: CityAssessment, fresh: CityAssessment
) -> tuple[CityAssessment, MergeReport]:
    """Merge a fresh pre-fill into an assessment that assessors have worked on.

    Parameters
    ----------
    existing : CityAssessment
        The assessment read (and validated) from the assessors' file.
    fresh : CityAssessment
        The pre-fill from the current data (:func:`geo_protect.assess.evidence.prefill`).

    Returns
    -------
    tuple of (CityAssessment, MergeReport)
        The merged assessment (fresh site order, then the vanished sites kept) and what
        was kept. The questionnaire and reference versions are the fresh ones.
    """
    report = MergeReport()
    old = {s.space_uid: s for s in existing.sites}
    sites: list[SiteAssessment] = []
    for site in fresh.sites:
        before = old.get(site.space_uid)
        if before is None:
            report.added.append(site.space_uid)
            sites.append(site)
        else:
            sites.append(_merge_site(before, site, report))
    current = {s.space_uid for s in fresh.sites}
    for site in existing.sites:
        if site.space_uid in current:
            continue
        if _has_work(site):
            report.gone_kept.append(site.space_uid)
            _count_site_work(site, report)
            sites.append(site)
        else:
            report.gone_dropped.append(site.space_uid)
    merged = fresh.model_copy(update={"sites": sites})
    return merged, report


# --------------------------------------------------------------------------- one site


def _merge_site(
    before: SiteAssessment, fresh: SiteAssessment, report: MergeReport
) -> SiteAssessment:
    answers = dict(fresh.site)
    for qid, answer in before.site.items():
        if _blank(answer):
            continue
        if answers.get(qid) != answer:
            report.answers += 1
        answers[qid] = answer
    if before.status == "final":
        report.answers += 1
    old = {s.threat: s for s in before.scenarios}
    scenarios = [
        _merge_scenario(old[sc.threat], sc, report) if sc.threat in old else sc
        for sc in fresh.scenarios
    ]
    return fresh.model_copy(
        update={
            "status": before.status,
            "site": answers,
            "measures": _merge_measures(before.measures, fresh.measures, report),
            "scenarios": scenarios,
        }
    )


def _merge_measures(
    before: list[Measure], fresh: list[Measure], report: MergeReport
) -> list[Measure]:
    """OSM measures found now (with the assessors' edits of them), then the assessors' own."""
    edited = {(m.layer, m.uid): m for m in before if m.source == "osm"}
    out: list[Measure] = []
    for m in fresh:
        mine = edited.get((m.layer, m.uid))
        if mine is not None and mine != m:
            report.measures += 1
            out.append(mine)
        else:
            out.append(m)
    found = {(m.layer, m.uid) for m in fresh}
    for m in before:
        if m.source == "assessor" or (not m.active and (m.layer, m.uid) not in found):
            report.measures += 1
            out.append(m)
    return out


def _merge_scenario(before: Scenario, fresh: Scenario, report: MergeReport) -> Scenario:
    update: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(before, name)
        if not _blank(value):
            report.answers += 1
            update[name] = value
    for name in RATINGS:
        update[name] = _merge_rating(before.rating(name), fresh.rating(name), report)
    lik: Rating = update["likelihood"]
    if not lik.overrides and not _entered(lik):
        update["likelihood"] = Rating()  # derived below from the merged A and V
    return fresh.model_copy(update=update).with_derived_likelihood()


def _merge_rating(before: Rating, fresh: Rating, report: MergeReport) -> Rating:
    if before.overrides:
        report.overrides += len(before.overrides)
        return Rating(
            value=before.overrides[-1].value, evidence=fresh.evidence, overrides=before.overrides
        )
    if _entered(before):
        report.answers += 1
        return before  # entered directly by the assessors: their value stands
    return fresh


# --------------------------------------------------------------------------- helpers


def _entered(rating: Rating) -> bool:
    """A value the assessors entered directly (no evidence, no override)."""
    return rating.value is not None and rating.evidence is None and not rating.overrides


def _has_work(site: SiteAssessment) -> bool:
    probe = MergeReport()
    _count_site_work(site, probe)
    return bool(probe.overrides or probe.answers or probe.measures)


def _count_site_work(site: SiteAssessment, report: MergeReport) -> None:
    """Count the assessors' work in a site that has no fresh pre-fill to compare with."""
    report.answers += sum(
        1 for q, a in site.site.items() if q not in PREFILLED_ANSWERS and not _blank(a)
    )
    report.answers += site.status == "final"
    report.measures += sum(1 for m in site.measures if m.source == "assessor" or not m.active)
    for sc in site.scenarios:
        report.answers += sum(1 for name in _FIELDS if not _blank(getattr(sc, name)))
        for name in RATINGS:
            r = sc.rating(name)
            report.overrides += len(r.overrides)
            report.answers += _entered(r)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
