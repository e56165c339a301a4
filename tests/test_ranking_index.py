"""The continuous risk index orders a band; occupancy by use; the assessors' peak answer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_protect.analysis.crowd import expected_occupancy
from geo_protect.assess.consequence import apply_peak_answers
from geo_protect.assess.evidence import prefill
from geo_protect.assess.questionnaire import CityAssessment, override
from geo_protect.assess.scores import score, why
from geo_protect.outputs.comparison import CityResults, compare, rank_hotspots

CRS = "EPSG:32635"
X0, Y0 = 409_000.0, 5_054_000.0


def _spaces() -> gpd.GeoDataFrame:
    """Two 100 m squares 50 m apart with a church halfway (25 m from each: POI score 3 → A 2)."""
    return gpd.GeoDataFrame(
        {"name": ["Piața A", ""], "kind": ["square", "park"]},
        geometry=[shapely.box(X0, Y0, X0 + 100, Y0 + 100),
                  shapely.box(X0 + 150, Y0, X0 + 250, Y0 + 100)],
        index=pd.Index(["way/1", "way/2"], dtype="string", name="uid"),
        crs=CRS,
    ).to_crs("EPSG:4326")  # fmt: skip


def _pois() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"kind": ["worship"], "name": ["Biserica"]},
        geometry=[shapely.Point(X0 + 125, Y0 + 50)],
        index=pd.Index(["node/1"], dtype="string", name="uid"),
        crs=CRS,
    ).to_crs("EPSG:4326")


def _metric() -> pd.DataFrame:
    """Both: 52 km/h through a permeable entry (V 5), > 5,000 people (C 5) → L round(3.5) = 4,
    R_100 = 100 × (4·5 − 1)/24 = 79.2 for both. Index: 6,000 × 1.5 MJ = 9,000 for way/1 and
    9,000 × 0.8 MJ = 7,200 for way/2: way/1 first although way/2 holds more people."""
    return pd.DataFrame(
        {
            "worst_speed_kmh": [52.0, 52.0],
            "n_vehicle_permeable": [1, 1],
            "worst_energy_kj": [1500.0, 800.0],
            "expected_peak_persons": [6000.0, 9000.0],
            "capacity_persons": [20000.0, 20000.0],
        },
        index=pd.Index(["way/1", "way/2"], dtype="string", name="uid"),
    )


@pytest.fixture()
def assessment() -> CityAssessment:
    return prefill(
        _spaces(), city="x", crs=CRS, space_metric=_metric(), pois=_pois(), reference_version="t"
    )


def _labelled() -> gpd.GeoDataFrame:
    return _spaces().assign(label=["Piața A", "park by Strada X"])


def test_two_spaces_of_one_band_are_ordered_by_the_index(assessment: CityAssessment) -> None:
    scores = score(assessment, _labelled())
    ram = scores[scores["threat"] == "VEHICLE_RAMMING"].set_index("space_uid")
    assert ram["risk_100"].round(2).tolist() == [79.17, 79.17]
    assert ram["risk_index"].tolist() == pytest.approx([9000.0, 7200.0])
    ranking = rank_hotspots({"x": CityResults("x", scores)}, ["VEHICLE_RAMMING"])
    overall = ranking.overall.set_index("space_uid")
    assert overall.loc["way/1", "rank"] == 1 and overall.loc["way/2", "rank"] == 2
    assert overall.loc["way/2", "label"] == "park by Strada X"  # the label, next to the uid
    per = ranking.per_threat[ranking.per_threat["threat"] == "VEHICLE_RAMMING"]
    assert per["space_uid"].tolist() == ["way/1", "way/2"] and per["rank"].tolist() == [1, 2]
    assert "index 9,000" in ram.loc["way/1", "why"]


def test_the_why_writes_the_index_out(assessment: CityAssessment) -> None:
    text = why(assessment, "way/2", "VEHICLE_RAMMING", label="park by Strada X").text()
    assert text.startswith("park by Strada X (way/2) – VEHICLE_RAMMING")
    assert "risk index = people exposed 9,000 × most energetic approach 0.8 MJ = 7,200" in text


def test_the_assessors_peak_answer_replaces_the_computed_occupancy(
    assessment: CityAssessment,
) -> None:
    assessment.site("way/2").site["peak_occupancy"] = 150
    answered = apply_peak_answers(assessment)
    sc = answered.site("way/2").scenario("VEHICLE_RAMMING")
    # 0 ≤ 150 < 200 → consequence 1; L 4 × C 1 = 4 → R_100 = 100 × 3/24 = 12.5
    assert sc.consequence.value == 1
    row = score(answered, _spaces()).loc["way/2|VEHICLE_RAMMING"]
    assert row["risk_100"] == pytest.approx(12.5)
    assert row["risk_index"] == pytest.approx(150 * 0.8)
    text = why(answered, "way/2", "VEHICLE_RAMMING").text()
    assert "assessors' estimated peak number of people (site answer peak_occupancy) 150" in text
    assert "replaces the computed 9,000" in text
    # the site without an answer is unchanged; the input is not modified
    assert answered.site("way/1") == assessment.site("way/1")
    assert assessment.site("way/2").scenario("VEHICLE_RAMMING").consequence.value == 5


def test_an_override_of_the_consequence_stands_over_the_peak_answer(
    assessment: CityAssessment,
) -> None:
    changed = override(
        assessment, "way/2", "VEHICLE_RAMMING", "consequence", 3,
        by="A. Assessor", reason="market days only", at=dt.date(2026, 12, 1),
    )  # fmt: skip
    changed.site("way/2").site["peak_occupancy"] = 150
    sc = apply_peak_answers(changed).site("way/2").scenario("VEHICLE_RAMMING")
    assert sc.consequence.value == 3
    assert sc.consequence.evidence is not None and sc.consequence.evidence.value == 1


def test_occupancy_by_use_closed_forms() -> None:
    kinds = pd.Series(["park", "square", "square", "unknown_kind"])
    area = pd.Series([20_000.0, 1_000.0, 1_000.0, 100.0])
    poi = pd.Series([12.0, 0.0, 25.0, 7.0])
    cap = pd.Series([np.nan, 2_000.0, 600.0, 1e6])
    out = expected_occupancy(kinds, area, poi, cap)["expected_peak_persons"]
    # park: (5,000 × 0.45 + 15,000 × 0.03) × 1.25 (score 10–20) = (2,250 + 450) × 1.25 = 3,375
    # square, no POI: 1,000 × 0.7 × 0.5 = 350; square in a centre: 1,000 × 0.7 × 1.5 = 1,050,
    # capped at its safe capacity 600; an unknown kind takes the * row: 100 × 0.45 × 1 = 45
    assert out.tolist() == pytest.approx([3375.0, 350.0, 600.0, 45.0])


def test_brasov_centre_metric_has_labels_and_occupancy_below_capacity(
    centre_analysis: dict[str, gpd.GeoDataFrame],
) -> None:
    m = centre_analysis["space_metric"]
    assert m["label"].notna().all()
    assert not m["label"].str.contains(r"^(?:way|relation|node|corridor)/", regex=True).any()
    named = m["name"].notna() & (m["name"] != "")
    assert (m.loc[named, "label"] == m.loc[named, "name"]).all()
    ok = m["capacity_persons"].notna()
    assert (m.loc[ok, "expected_peak_persons"] <= m.loc[ok, "capacity_persons"] + 1e-9).all()


def test_the_report_shows_label_uid_and_index(assessment: CityAssessment, tmp_path: Path) -> None:
    scores = score(assessment, _labelled())
    out = compare({"x": CityResults("x", scores, label="X")}, tmp_path, threats=["VEHICLE_RAMMING"])
    html = out.files["html"].read_text(encoding="utf-8")
    assert "park by Strada X <small>(way/2)</small>" in html
    assert ">9,000<" in html and ">7,200<" in html  # 6,000 × 1.5 MJ and 9,000 × 0.8 MJ
    csv = pd.read_csv(out.files["csv"])
    assert {"label", "risk_index"} <= set(csv.columns)
