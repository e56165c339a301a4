"""A fresh pre-fill merged into the assessors' work, and atomic writes of their files.

At git HEAD ``geo_protect.assess.files.merge_prefill`` did not exist (the main job simply
overwrote the file with the pre-fill), and ``write_assessment`` / the site reports wrote
straight into the target file, so a crash mid-write left a truncated file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from geo_protect.assess.evidence import prefill
from geo_protect.assess.files import merge_prefill, read_assessment, write_assessment
from geo_protect.assess.model import Measure, Rating
from geo_protect.assess.questionnaire import CityAssessment, override
from tests import assessment_cases as cases

DAY = dt.date(2026, 11, 20)


def _worked_on() -> CityAssessment:
    """The hand-built draft after a field visit: two overrides, answers, a measure."""
    a = override(
        cases.draft(), "way/1", "VEHICLE_RAMMING", "vulnerability", 1,
        by="I. Popescu", reason="rising bollards installed 2026", at=DAY,
    )  # fmt: skip
    a = override(
        a, "way/2", "FIREARMS", "consequence", 4,
        by="M. Ionescu", reason="weekly market doubles the crowd", at=DAY,
    )  # fmt: skip
    site = a.site("way/1")
    site.site["use"] = "markets and concerts"
    site.measures.append(Measure(category="emplaced", kind="planter", description="big pots"))
    sc = site.scenario("VEHICLE_RAMMING")
    sc.rationale = "bollards on the two street entries"
    sc.assessors = ["I. Popescu"]
    # way/3 has no capacity evidence: the assessors entered a consequence directly
    c3 = a.site("way/3").scenario("IED")
    c3.consequence = Rating(value=2)
    return a


def _fresh(speed: float = 20.0, uids: list[str] | None = None) -> CityAssessment:
    """A new pre-fill: the worst approach speed of way/1 changed, maybe fewer spaces."""
    spaces = cases.spaces()
    metric = cases.space_metric()
    metric.loc["way/1", "worst_speed_kmh"] = speed
    if uids is not None:
        spaces = spaces.loc[uids]
        metric = metric.loc[uids]
    return prefill(
        spaces,
        city="brasov",
        crs=cases.CRS,
        space_metric=metric,
        pois=cases.pois(),
        barriers=cases.barriers(),
        surveillance=cases.surveillance(),
        reference_version="test",
    )


def test_merge_keeps_every_override_and_answer_and_takes_fresh_evidence() -> None:
    existing, fresh = _worked_on(), _fresh(speed=20.0)
    merged, report = merge_prefill(existing, fresh)

    ram = merged.site("way/1").scenario("VEHICLE_RAMMING")
    new_ram = fresh.site("way/1").scenario("VEHICLE_RAMMING")
    # the assessor's value stands, with its history, over the *new* evidence
    assert ram.vulnerability.value == 1
    assert [o.by for o in ram.vulnerability.overrides] == ["I. Popescu"]
    assert ram.vulnerability.evidence == new_ram.vulnerability.evidence
    assert ram.vulnerability.evidence.inputs["worst_speed_kmh"] == 20.0  # type: ignore[union-attr]
    # the likelihood follows the assessor's V: round_half_up((A + 1) / 2)
    a = ram.attractiveness.value
    assert a is not None and ram.likelihood.value == int((a + 1) / 2 + 0.5)
    assert ram.rationale == "bollards on the two street entries"
    assert ram.assessors == ["I. Popescu"]
    # nobody overrode the vehicle-borne IED: it takes the new pre-filled vulnerability
    vbied = merged.site("way/1").scenario("VBIED")
    assert vbied.vulnerability == fresh.site("way/1").scenario("VBIED").vulnerability
    # answers, measures and directly entered ratings are kept
    site = merged.site("way/1")
    assert site.site["use"] == "markets and concerts"
    assert site.site["type"] == "square"
    assert [m.kind for m in site.measures if m.source == "assessor"] == ["planter"]
    assert {m.uid for m in site.measures if m.source == "osm"} == {"node/9"}
    assert merged.site("way/3").scenario("IED").consequence.value == 2
    assert merged.site("way/2").scenario("FIREARMS").consequence.value == 4

    assert report.overrides == 2
    # use answer, rationale, assessors, the directly entered consequence
    assert report.answers == 4
    assert report.measures == 1
    assert report.gone_kept == [] and report.added == []
    line = report.summary("maps/assessments/brasov.yaml")
    assert line.startswith("kept 2 overrides, 4 answers and 1 measure from maps/assessments")


def test_spaces_gone_from_the_data_keep_their_work_in_the_file(tmp_path: Path) -> None:
    existing = _worked_on()
    merged, report = merge_prefill(existing, _fresh(uids=["way/1"]))
    # way/2 has an override: kept and reported; way/3 its directly entered consequence
    assert report.gone_kept == ["way/2", "way/3"]
    assert merged.site("way/2").scenario("FIREARMS").consequence.overrides[0].by == "M. Ionescu"
    assert "no longer in the data" in report.summary("x.yaml")
    # the merged file validates and reads back with the assessors' work
    back = read_assessment(write_assessment(merged, tmp_path / "brasov.yaml"))
    assert back == merged

    # a space that nobody touched and is no longer in the data is dropped (pure pre-fill)
    _, plain = merge_prefill(cases.draft(), _fresh(uids=["way/1", "way/2"]))
    assert plain.gone_dropped == ["way/3"] and plain.gone_kept == []


def test_merge_of_an_untouched_draft_is_the_fresh_prefill() -> None:
    fresh = _fresh(speed=20.0)
    merged, report = merge_prefill(cases.draft(), fresh)
    assert merged == fresh
    assert (report.overrides, report.answers, report.measures) == (0, 0, 0)
    assert (
        report.summary("x.yaml") == "no assessors' work in x.yaml yet: refreshed from the evidence"
    )


def _crash_half_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make DataFrame.to_csv write half of its output, then fail (a crash mid-write)."""
    real = pd.DataFrame.to_csv

    def half(self: pd.DataFrame, path: Any = None, **kwargs: Any) -> None:
        text = real(self, None, **kwargs)
        Path(path).write_text(text[: len(text) // 2], encoding="utf-8")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half)


def test_a_crash_mid_write_leaves_the_old_assessment_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_assessment(_worked_on(), tmp_path / "brasov.csv")
    before = path.read_bytes()
    _crash_half_way(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write_assessment(cases.draft(), path)
    assert path.read_bytes() == before  # at HEAD: the first half of the new file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["brasov.csv"]  # no temp left


def test_a_crash_mid_report_leaves_the_old_site_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geo_protect import pipeline
    from geo_protect.assess.scores import score
    from geo_protect.cities import get_city
    from geo_protect.outputs import site_reports

    city = get_city("brasov")
    assessment = cases.draft()
    scores = score(assessment, cases.spaces())
    _, reports = pipeline.write_assessment_files(city, assessment, scores, tmp_path)
    before = {p: p.read_bytes() for p in reports}
    real = site_reports.site_report

    def crash(*args: Any, **kwargs: Any) -> Path:
        path = real(*args, **kwargs)
        path.write_text("<html><body>half", encoding="utf-8")
        raise OSError("killed")

    monkeypatch.setattr(site_reports, "site_report", crash)
    with pytest.raises(OSError, match="killed"):
        pipeline.write_assessment_files(city, _worked_on(), scores, tmp_path)
    assert {p: p.read_bytes() for p in reports} == before  # at HEAD: a truncated report
    assert sorted(p.name for p in (tmp_path / "sites").iterdir()) == ["brasov"]
