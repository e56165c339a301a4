"""Cross-city comparison: rankings, normalisation within threat type, no-data cities, report."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from geo_protect.assess.evidence import prefill
from geo_protect.assess.files import write_assessment
from geo_protect.assess.questionnaire import CityAssessment
from geo_protect.assess.scores import score
from geo_protect.citydata import IngestReport
from geo_protect.outputs.comparison import (
    CityResults,
    Comparison,
    city_results,
    compare,
    results_from_files,
    results_from_store,
)
from geo_protect.store.geopackage import GeoPackageStore
from tests import assessment_cases as cases


def _city(
    city: str, metric: pd.DataFrame, dx: float, standoff: pd.DataFrame | None = None
) -> CityAssessment:
    return prefill(
        cases.spaces(dx),
        city=city,
        crs=cases.CRS,
        space_metric=metric,
        pois=cases.pois(dx),
        reference_version="test",
        standoff=standoff,
    )


def _brasov_standoff() -> pd.DataFrame:
    """VBIED stand-off of Brașov's spaces (N3, mandatory evacuation 478.5 m): an N3 drives
    into way/1 (ratio 0 → V 5; 16 000 people → C 5, as ramming); it stops 10 m from way/2,
    which no vehicle enters (10 / 478.5 = 0.02 → V 4, where ramming gives 1; 300 people
    → C 2): A 1, V 4 → L 3, C 2 → 100·(6 − 1)/24 = 20.8 (ramming: 4.2). way/3: no reach."""
    return pd.DataFrame(
        {
            "space_uid": ["way/1", "way/2"],
            "vehicle": ["N3", "N3"],
            "reach": ["inside", "street"],
            "closest_m": [0.0, 10.0],
            "mandatory_m": [478.5, 478.5],
            "persons_mandatory": [16000.0, 300.0],
            "persons_preferred": [20000.0, 20000.0],
        }
    )


def _vilnius_metric() -> pd.DataFrame:
    """V1: V 3, A 3 → L 3, C 3 → 100·(9 − 1)/24 = 33.3; V2: V 4, A 1 → L 3, C 4 →
    100·(12 − 1)/24 = 45.8; V3: 0."""
    metric = cases.space_metric()
    metric["worst_speed_kmh"] = pd.array([30.0, 40.0, None], dtype="Float64")
    metric["n_vehicle_permeable"] = pd.array([1, 1, 0], dtype="Int64")
    metric["capacity_persons"] = pd.array([1000.0, 3000.0, 100.0], dtype="Float64")
    return metric


@pytest.fixture(scope="module")
def assessments() -> dict[str, CityAssessment]:
    return {
        "brasov": _city("brasov", cases.space_metric(), 0.0, _brasov_standoff()),
        "vilnius": _city("vilnius", _vilnius_metric(), 5000.0),
    }


@pytest.fixture(scope="module")
def comparison(
    assessments: dict[str, CityAssessment], tmp_path_factory: pytest.TempPathFactory
) -> Comparison:
    results: dict[str, CityResults | None] = {
        "brasov": city_results("brasov", assessments["brasov"], label="Brașov"),
        "larissa": None,
        "vilnius": city_results("vilnius", assessments["vilnius"], label="Vilnius"),
        "malaga": CityResults.no_data("malaga", "no public spaces in the extract", label="Málaga"),
    }
    return compare(results, tmp_path_factory.mktemp("cmp"), generated=dt.date(2026, 11, 26))


def test_per_threat_ranks_and_percentiles(comparison: Comparison) -> None:
    h = comparison.hotspots
    vr = h[h["scope"] == "VEHICLE_RAMMING"]
    got = list(
        zip(
            vr["city"],
            vr["space_uid"],
            vr["rank"],
            vr["percentile_in_threat"].round(6),
            strict=True,
        )
    )
    # Percentile within the threat: 100·(n − rank + 1)/n over the n = 5 scored spaces.
    order = [
        ("brasov", "way/1"),
        ("vilnius", "way/2"),
        ("vilnius", "way/1"),
        ("brasov", "way/2"),
        ("vilnius", "way/3"),
    ]
    n = len(order)
    assert got == [
        (city, uid, rank, round(100 * (n - rank + 1) / n, 6))
        for rank, (city, uid) in enumerate(order, start=1)
    ]
    # R_100 = 100·(L·C − 1)/24 on the 1–5 scale, with the (L, C) each space is pre-filled
    # with: Brașov way/1 (4, 5), Vilnius way/2 (3, 4), way/1 (3, 3) (see _vilnius_metric),
    # Brașov way/2 (1, 2), Vilnius way/3 (1, 1).
    lc = [(4, 5), (3, 4), (3, 3), (1, 2), (1, 1)]
    assert vr["risk_100"].tolist() == pytest.approx([100 * (L * C - 1) / 24 for L, C in lc])
    assert set(h["scope"]) == {"OVERALL", "VEHICLE_RAMMING", "VBIED", "ALL"}
    # VBIED is scored from the stand-off, not the approach speed (see _brasov_standoff)
    vb = h[h["scope"] == "VBIED"].set_index("space_uid")["risk_100"]
    assert vb.to_dict() == pytest.approx({"way/1": 100 * 19 / 24, "way/2": 100 * 5 / 24})
    assert vr.set_index(["city", "space_uid"]).loc[("brasov", "way/2"), "risk_100"] == (
        pytest.approx(100 * 1 / 24)
    )


def test_overall_ranking_and_no_data(comparison: Comparison) -> None:
    o = comparison.overall
    assert list(zip(o["city"], o["space_uid"], o["rank"], strict=True)) == [
        ("brasov", "way/1", 1),
        ("vilnius", "way/2", 2),
        ("vilnius", "way/1", 3),
        ("brasov", "way/2", 4),
        ("vilnius", "way/3", 5),
        ("brasov", "way/3", pd.NA),  # nothing assessed: unranked, not zero
    ]
    cov = comparison.coverage.set_index("city")
    assert cov.loc["larissa", "status"] == "no data: no results supplied"
    assert cov.loc["malaga", "status"] == "no data: no public spaces in the extract"
    assert cov.loc["brasov", "n_scored"] == 4 and cov.loc["brasov", "n_threats_scored"] == 2
    nd = comparison.hotspots[comparison.hotspots["scope"] == "ALL"]
    assert nd["city"].tolist() == ["larissa", "malaga"] and nd["risk_100"].isna().all()
    m = comparison.matrix
    # Brașov's worst VEHICLE_RAMMING space: L 4, C 5 → 100·(L·C − 1)/24
    assert m.loc["Brașov", "VEHICLE_RAMMING"] == pytest.approx(100 * (4 * 5 - 1) / 24) and pd.isna(
        m.loc["Brașov", "UAV"]
    )
    assert m.loc["Málaga"].isna().all()


def test_files_and_self_contained_report(comparison: Comparison) -> None:
    f = comparison.files
    csv = pd.read_csv(f["csv"])
    assert len(csv) == len(comparison.hotspots)
    assert csv.loc[csv["city"] == "larissa", "risk_100"].isna().all()  # never written as 0
    assert f["heatmap_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for key in ("heatmap_svg", "hotspots_svg"):
        assert ET.parse(f[key]).getroot().tag.endswith("svg")
    html = f["html"].read_text(encoding="utf-8")
    assert html.count("<svg") == 2
    for external in ("<script", "<link", 'src="http', "url(http", "@import"):
        assert external not in html
    assert "no data: no results supplied" in html and "Málaga" in html
    assert "Percentile within VEHICLE_RAMMING" in html and "Generated 2026-11-26" in html


def test_results_from_files(assessments: dict[str, CityAssessment], tmp_path: Path) -> None:
    write_assessment(assessments["brasov"], tmp_path / "brasov.yaml")
    write_assessment(assessments["vilnius"], tmp_path / "vilnius.csv")
    results = results_from_files(
        ["brasov", "vilnius", "larissa"], tmp_path, labels={"larissa": "Λάρισα"}
    )
    assert results["brasov"].has_data and results["vilnius"].has_data
    # Vilnius way/2: L 3, C 4 → 100·(L·C − 1)/24
    assert results["vilnius"].scores["risk_100"].max() == pytest.approx(100 * (3 * 4 - 1) / 24)
    assert not results["larissa"].has_data
    assert results["larissa"].reason.startswith("no assessment file larissa.yaml/.json/.csv")


def test_all_cities_without_data(tmp_path: Path) -> None:
    out = compare({"larissa": None}, tmp_path)
    assert out.overall.empty and out.hotspots["status"].tolist() == ["no data: no results supplied"]
    assert "No city has assessed scenarios yet." in out.files["html"].read_text(encoding="utf-8")


def test_results_from_a_geopackage_store(
    assessments: dict[str, CityAssessment], tmp_path: Path
) -> None:
    """The assessment layer survives the real GeoPackage store and compares the same."""
    store = GeoPackageStore(tmp_path / "store", reference_version="test")
    scores = score(assessments["brasov"])
    store.replace_city("brasov", {"assessment": scores}, IngestReport())
    store.replace_city("vilnius", {}, IngestReport())
    results = results_from_store(store, ["brasov", "vilnius", "larissa"])
    back = results["brasov"].scores
    assert back.index.equals(scores.index.sort_values())
    assert back["risk_100"].sum() == pytest.approx(scores["risk_100"].sum())
    assert (
        back.loc["way/1|VEHICLE_RAMMING", "evidence"]
        == scores.loc["way/1|VEHICLE_RAMMING", "evidence"]
    )
    assert (
        results["vilnius"].reason
        == "no assessment layer stored (pre-fill and score the city first)"
    )
    assert results["larissa"].reason == "city not ingested in the store"
