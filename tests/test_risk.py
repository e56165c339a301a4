"""Risk scores, bands, site roll-ups, the live crowd modifier and explanations."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_protect import ConfigError, ValidationError
from geo_protect.assess.evidence import prefill
from geo_protect.assess.questionnaire import CityAssessment, override
from geo_protect.assess.scores import (
    risk_100,
    risk_band,
    score,
    site_summary,
    why,
)
from geo_protect.cities import City
from geo_protect.citydata import CityData
from geo_protect.live.risk import crowd_factor, live_risk
from geo_protect.reference import table
from geo_protect.schema import LAYERS
from tests import assessment_cases as cases

DAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def draft() -> CityAssessment:
    return cases.draft(with_surveillance=False)


def test_risk_100_closed_form() -> None:
    lik, con = np.meshgrid(np.arange(1, 6), np.arange(1, 6))
    got = risk_100(pd.Series(lik.ravel()), pd.Series(con.ravel()))
    expected = 100 * (lik.ravel() * con.ravel() - 1) / 24
    np.testing.assert_allclose(got.to_numpy(dtype=float), expected)
    assert round(float(risk_100(pd.Series([3]), pd.Series([4]))[0]), 4) == 45.8333
    assert risk_100(pd.Series([None], dtype="Int64"), pd.Series([5]))[0] is pd.NA
    # a 4x4 matrix (ProtectUK style): 100 (L·C − 1)/15
    assert float(risk_100(pd.Series([2]), pd.Series([2]), rating_max=4)[0]) == 20.0


def test_risk_band_boundaries_and_bad_table() -> None:
    raw = pd.Series([1, 4, 5, 9, 10, 16, 17, 25, None], dtype="Int64")
    assert risk_band(raw).tolist() == [
        "low", "low", "medium", "medium", "high", "high", "very high", "very high", pd.NA,
    ]  # fmt: skip
    bands = table("risk_bands")
    bands.loc[1, "lower_lc"] = 4
    with pytest.raises(ConfigError, match="overlap"):
        risk_band(raw, bands=bands)


def test_score_layer(draft: CityAssessment) -> None:
    scores = score(draft, cases.spaces())
    assert "assessment" in LAYERS and list(scores.columns[:-1]) == list(
        LAYERS["assessment"].columns
    )
    assert len(scores) == 30 and scores.crs.to_epsg() == 4326
    a = scores.loc["way/1|VEHICLE_RAMMING"]
    assert (a["likelihood"], a["consequence"], a["risk_raw"]) == (4, 5, 20)
    assert a["risk_100"] == pytest.approx(100 * 19 / 24) and a["band"] == "very high"
    assert a["why"] == "VEHICLE_RAMMING: L 4 × C 5 = 20 → R_100 79.2 (very high)"
    b = scores.loc["way/2|VEHICLE_RAMMING"]  # A 1, V 1 (no open entry) → L 1; 500 → C 2
    assert b["risk_raw"] == 2 and b["risk_100"] == pytest.approx(100 / 24) and b["band"] == "low"
    # VBIED is scored from the stand-off layer (tests/test_standoff.py); none here
    assert scores.loc[["way/1|VBIED", "way/2|VBIED"], "risk_100"].isna().all()
    not_assessed = scores.loc["way/1|FIREARMS"]
    assert pd.isna(not_assessed["risk_100"]) and pd.isna(not_assessed["band"])  # never 0
    assert not_assessed["why"] == "FIREARMS: L ? × C 5 → not assessed"
    assert scores["risk_100"].notna().sum() == 2
    inside = shapely.contains(
        cases.spaces().geometry.reindex(scores["space_uid"]).to_numpy(), scores.geometry.to_numpy()
    )
    assert inside.all()
    recorded = score(draft).geometry  # the locations recorded in the assessment agree
    assert recorded.geom_equals_exact(scores.geometry, tolerance=1e-6).all()


def test_site_summary_worst_and_mean(draft: CityAssessment) -> None:
    edited = override(
        draft, "way/1", "FIREARMS", "vulnerability", 2, by="A", reason="patrols", at=DAY
    )  # L = round_half_up((3 + 2) / 2) = 3, C = 5 → 15 → 58.33
    summary = site_summary(score(edited))
    a = summary.loc["way/1"]
    assert a["worst_threat"] == "VEHICLE_RAMMING"
    assert a["max_risk_100"] == pytest.approx(100 * 19 / 24)
    # ramming and firearms (VBIED needs the stand-off layer, not given here)
    assert a["mean_risk_100"] == pytest.approx((100 * 19 / 24 + 100 * 14 / 24) / 2)
    assert (a["n_assessed"], a["n_threats"]) == (2, 10)
    c = summary.loc["way/3"]
    assert pd.isna(c["max_risk_100"]) and pd.isna(c["worst_threat"]) and c["n_assessed"] == 0
    assert list(summary.index) == ["way/1", "way/2", "way/3"]


def test_crowd_factor_and_live_risk() -> None:
    assert crowd_factor(1.0, 2.0) == 0.5
    assert crowd_factor(2.5, 2.0) == 1.25
    assert crowd_factor(9.0, 2.0) == 1.5
    s = crowd_factor(
        pd.Series([1.0, 3.0, np.nan], index=list("abc")), pd.Series(2.0, index=list("abc"))
    )
    assert s.index.tolist() == ["a", "b", "c"] and s.iloc[1] == 1.5 and np.isnan(s.iloc[2])
    np.testing.assert_allclose(crowd_factor(np.array([0.2, 2.0]), np.array([2.0, 2.0])), [0.5, 1.0])
    assert crowd_factor(5.0, 2.0, factor_max=2.0) == 2.0
    assert live_risk(50.0, 3.0, 2.0) == 75.0
    with pytest.raises(ValidationError, match="density_design"):
        crowd_factor(1.0, 0.0)


def test_why_explains_inputs_evidence_and_overrides(draft: CityAssessment) -> None:
    edited = override(
        draft,
        "way/1",
        "VEHICLE_RAMMING",
        "consequence",
        4,
        by="I. Ionescu",
        reason="event cap",
        at=DAY,
    )
    ex = why(edited, "way/1", "VEHICLE_RAMMING")
    assert ex.ratings == {
        "attractiveness": 3,
        "vulnerability": 5,
        "likelihood": 4,
        "consequence": 4,
    }
    assert (ex.risk_raw, ex.band) == (16, "high")
    assert ex.risk_100 == pytest.approx(100 * 15 / 24)
    assert ex.formula.endswith("= 100 × (4·4 − 1)/24 = 62.5")
    assert ex.overrides["consequence"][0]["by"] == "I. Ionescu"
    assert ex.evidence["vulnerability"]["inputs"]["worst_speed_kmh"] == 52.0
    text = ex.text()
    assert "consequence overridden 5 → 4 by I. Ionescu on 2026-11-20: event cap" in text
    assert "10 ≤ L·C = 16 ≤ 16 → high" in ex.band_rule
    none = why(draft, "way/3", "VEHICLE_RAMMING")
    assert none.status == "not assessed" and none.risk_100 is None
    assert "likelihood and consequence missing" in none.formula
    with pytest.raises(ValidationError, match="no assessment of site 'way/99'"):
        why(draft, "way/99", "UAV")


def test_brasov_centre_scores_follow_the_closed_form(
    centre_city: City, centre_data: CityData, centre_analysis: dict[str, gpd.GeoDataFrame]
) -> None:
    """The whole chain on the real clip: ingest → analysis layers → pre-fill → scores.

    No totals copied from a run: 49 spaces × 10 threat types are scenarios, and exactly the
    two threats with evidence (vehicle ramming and VBIED) are scored for each space; every
    score is checked against the closed form R_100 = 100·(L·C − 1)/24 and the band against
    ``risk_bands.csv`` row by row, and the pre-filled ratings stay on the 1–5 scale.
    """
    data = centre_data
    draft = prefill(
        data["public_space"],
        city="brasov",
        crs=centre_city.crs,
        space_metric=centre_analysis["space_metric"],
        pois=data["poi"],
        barriers=data["barrier"],
        surveillance=data["surveillance"],
        standoff=centre_analysis["standoff"],
    )
    scores = score(draft, data["public_space"])
    n_spaces = len(data["public_space"])
    assert len(scores) == n_spaces * 10
    scored = scores[scores["risk_100"].notna()]
    assert set(scored["threat"]) == {"VEHICLE_RAMMING", "VBIED"}
    assert len(scored) == 2 * n_spaces
    lc = scored["likelihood"].astype(int) * scored["consequence"].astype(int)
    assert np.allclose(scored["risk_100"].astype(float), 100 * (lc - 1) / 24)
    bands = table("risk_bands")
    for raw, band in zip(lc, scored["band"], strict=True):
        row = bands[(bands["lower_lc"] <= raw) & (raw <= bands["upper_lc"])]
        assert row["band"].tolist() == [band]
    vr = scores[scores["threat"] == "VEHICLE_RAMMING"]
    for rating in ("attractiveness", "consequence", "vulnerability"):
        assert vr[rating].between(1, 5).all()
    sfatului = scores.loc["relation/9620387|VEHICLE_RAMMING"]
    # the ranking index: expected peak people x energy (MJ) of the worst approach
    metric = centre_analysis["space_metric"].loc["relation/9620387"]
    index = metric["expected_peak_persons"] * metric["worst_energy_kj"] / 1000
    assert sfatului["why"] == (
        f"VEHICLE_RAMMING: L 5 × C 5 = 25 → R_100 100.0 (very high, index {index:,.0f})"
    )
    assert sum(len(s.measures) for s in draft.sites) == 60
